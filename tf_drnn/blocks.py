"""Samples through a stream in fixed blocks, the latency trimmed: the loop every separation runs
(a Keras model's :class:`tf_drnn.streaming.PcmStream` or a .tflite file's
:class:`tf_drnn.litert.LiteRTPcmStream`). NumPy only: no TensorFlow.
"""
import numpy as np


class BlockRunner:
  """Feeds samples at the model rate through a separator's stream in fixed blocks, trimming the latency.

  process(samples [n, channels]) and finish() return lists of (vocals, accompaniment)
  arrays [m, channels], aligned with the input (latency removed). with_masks: also keep
  each offline frame's vocal mask and mixture magnitude, in order, for take_masks().
  block_samples: model-rate samples per call (default: the separator's block).
  """

  def __init__(self, separator, channels, with_masks=False, block_samples=None):
    self.channels = channels
    self.with_masks = with_masks
    self.block = block_samples or separator.block_samples
    self.stream, self.step = separator.stream(channels, with_masks, self.block)
    self._masks, self._magnitudes = [], []
    self.preroll_frames = self.stream.delay  # mask rows before offline frame 0
    self.state = self.stream.initial_state()
    self.pending = np.zeros((0, channels), np.float32)
    self.to_skip = self.stream.latency_samples
    self.consumed = 0
    self.emitted = 0

  def take_masks(self):
    """(vocal mask, magnitude) [frames, bins] of the offline frames since the last call."""
    bins = self.stream.num_bins
    masks = np.concatenate(self._masks) if self._masks else np.zeros((0, bins), np.float32)
    magnitudes = np.concatenate(self._magnitudes) if self._magnitudes else np.zeros((0, bins), np.float32)
    self._masks, self._magnitudes = [], []
    return masks, magnitudes

  def _run(self, block):
    if self.with_masks:
      vocals, accompaniment, self.state, mask, magnitude = self.step(block.T, self.state)
      skip = min(self.preroll_frames, len(mask))
      self.preroll_frames -= skip
      self._masks.append(np.asarray(mask)[skip:])
      self._magnitudes.append(np.asarray(magnitude)[skip:])
    else:
      vocals, accompaniment, self.state = self.step(block.T, self.state)
    out = [np.asarray(vocals).T, np.asarray(accompaniment).T]
    skip = min(self.to_skip, len(out[0]))
    self.to_skip -= skip
    out = [o[skip:] for o in out]
    self.emitted += len(out[0])
    return tuple(out)

  def process(self, samples):
    self.consumed += len(samples)
    self.pending = np.concatenate([self.pending, samples.astype(np.float32)])
    outputs = []
    while len(self.pending) >= self.block:
      outputs.append(self._run(self.pending[:self.block]))
      self.pending = self.pending[self.block:]
    return outputs

  def finish(self):
    """Flushes: pads with zeros until every input sample has come out."""
    outputs = []
    flush = np.zeros((self.stream.latency_samples, self.channels), np.float32)
    self.pending = np.concatenate([self.pending, flush])
    while self.emitted < self.consumed:
      if len(self.pending) < self.block:
        self.pending = np.concatenate(
            [self.pending, np.zeros((self.block - len(self.pending), self.channels), np.float32)])
      outputs.append(self._run(self.pending[:self.block]))
      self.pending = self.pending[self.block:]
    excess = self.emitted - self.consumed
    if excess > 0 and outputs:
      last = outputs[-1]
      outputs[-1] = tuple(o[:len(o) - excess] for o in last)
      self.emitted -= excess
    return outputs
