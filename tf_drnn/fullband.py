"""Full-band separation at any sample rate: the model's stems plus the band it cannot see.

The model runs at ``config.sample_rate`` (16 kHz). For an input x at another rate R:

* x_low = up(down(x)) is the band the model sees (soxr HQ to the model's rate and back), and
  vocals_low = up(the model's vocals), exactly as before this module existed;
* x_high = x - x_low is everything else: the resampler's roll-off band (about 7.3-8 kHz) and
  all above the model's Nyquist. It is split on a full-rate STFT aligned with the model's
  frames (hop_R = round(hop * R / model_rate), n_fft_R = 2 hop_R, sine window): full-rate
  frame j takes the vocal mask of the model frame nearest in time, interpolated in frequency
  below the reliable cutoff (:func:`reliable_cutoff_hz`) and extended above it by a rule
  (:data:`HIGH_BAND_RULES`, :func:`band_mask_value`);
* vocals = vocals_low + istft_R(mask * stft_R(x_high)) and accompaniment = x - vocals, so the
  two stems add up to the input at every rate.

At the model's rate x_high = 0 and the model's stems are returned unchanged.
Everything runs block by block (:class:`FullBandRunner`), so memory stays bounded.
"""
import numpy as np

from tf_drnn.audio import fit_length
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.spectral import sine_window

# How the vocal mask continues above the reliable cutoff (measured: docs/experiments.md).
HIGH_BAND_RULES = {
    "accompaniment": "everything above the cutoff goes to the accompaniment (vocal mask 0)",
    "hold": "the energy-weighted vocal mask of the last HOLD_HZ below the cutoff, held",
    "average": "the energy-weighted mean vocal mask of the octave below the cutoff "
               "(Spleeter's mask_extension: average)",
}
DEFAULT_HIGH_BAND = "hold"  # best of the three on the validation songs (docs/experiments.md)
# Below this share of the lower Nyquist (the model's or the input's) the model saw the band at
# full level: soxr HQ's pass band ends near 0.91 of it (7.3 kHz at 16 kHz).
RELIABLE_FRACTION = 0.875
HOLD_HZ = 500.0  # width of the band whose mask "hold" holds
_FRAMES_PER_BATCH = 128  # full-rate frames transformed at once, at most (and tf_drnn.audio.BLOCK_VALUES of samples)


def check_rule(rule):
  from tf_drnn.errors import UserError
  if rule not in HIGH_BAND_RULES:
    raise UserError(f"unknown high-band rule {rule!r}: choose one of {', '.join(HIGH_BAND_RULES)}")
  return rule


def reliable_cutoff_hz(rate, config=DEFAULT_AUDIO_CONFIG):
  """Hz below which the model's mask is used as is, for an input at `rate` Hz."""
  return RELIABLE_FRACTION * min(rate, config.sample_rate) / 2


def full_rate_hop(rate, config=DEFAULT_AUDIO_CONFIG):
  """The full-rate STFT hop at `rate` Hz: the model's hop in time, rounded to samples."""
  return max(1, int(round(config.hop_length * rate / config.sample_rate)))


def model_frames(full_rate_frames, rate, config=DEFAULT_AUDIO_CONFIG):
  """Index of the model frame nearest in time to each full-rate frame index (int array).

  Both STFTs centre frame t on sample t * hop of their own rate (tf_drnn.spectral).
  """
  hop = full_rate_hop(rate, config)
  seconds = np.asarray(full_rate_frames, np.float64) * hop / rate
  return np.floor(seconds * config.sample_rate / config.hop_length + 0.5).astype(np.int64)


def band_mask_value(mask, magnitude, cutoff_hz, rule, config=DEFAULT_AUDIO_CONFIG):
  """The vocal mask above `cutoff_hz` by `rule`, computed from the model bins below it.

  mask, magnitude: [frames, bins] model-rate vocal mask and mixture magnitude -> [frames] in [0, 1].
  "hold" and "average" weight each bin by its energy |X|^2 (a silent band: the plain mean).
  """
  check_rule(rule)
  mask = np.clip(np.asarray(mask, np.float64), 0.0, 1.0)
  if rule == "accompaniment":
    return np.zeros(len(mask))
  frequencies = np.arange(mask.shape[-1]) * config.sample_rate / config.n_fft
  low = cutoff_hz - HOLD_HZ if rule == "hold" else cutoff_hz / 2
  band = (frequencies >= low) & (frequencies < cutoff_hz)
  values, weights = mask[:, band], np.asarray(magnitude, np.float64)[:, band] ** 2
  total = weights.sum(axis=1)
  weighted = (values * weights).sum(axis=1) / np.maximum(total, 1e-300)
  return np.where(total > 0, weighted, values.mean(axis=1))


def extend_mask(mask, magnitude, cutoff_hz, rule, config=DEFAULT_AUDIO_CONFIG):
  """The model-rate vocal mask [frames, bins] with every bin at or above `cutoff_hz` set by `rule`."""
  frequencies = np.arange(mask.shape[-1]) * config.sample_rate / config.n_fft
  extended = np.array(mask, np.float64)
  extended[:, frequencies >= cutoff_hz] = band_mask_value(mask, magnitude, cutoff_hz, rule, config)[:, None]
  return extended


def full_rate_masks(mask, magnitude, rate, rule, binary=False, config=DEFAULT_AUDIO_CONFIG):
  """Model-rate vocal masks [frames, bins] -> masks [frames, hop_R + 1] of the full-rate STFT at `rate`.

  Below the reliable cutoff: the model's mask interpolated in frequency; above: the rule's value.
  A binary mask stays binary (>= 0.5).
  """
  hop = full_rate_hop(rate, config)
  frequencies = np.arange(hop + 1) * rate / (2 * hop)
  cutoff = reliable_cutoff_hz(rate, config)
  below = frequencies < cutoff
  position = frequencies[below] * config.n_fft / config.sample_rate
  index = np.minimum(np.floor(position).astype(np.int64), mask.shape[-1] - 2)
  fraction = position - index
  mask = np.clip(np.asarray(mask, np.float64), 0.0, 1.0)
  result = np.empty((len(mask), hop + 1))
  result[:, below] = mask[:, index] * (1 - fraction) + mask[:, index + 1] * fraction
  result[:, ~below] = band_mask_value(mask, magnitude, cutoff, rule, config)[:, None]
  return (result >= 0.5).astype(np.float64) if binary else result


class HighBandSplitter:
  """Splits x_high [samples, channels] at `rate` with the model's masks on a full-rate STFT.

  push(x_high) and push_masks(mask, magnitude) (model frames 0, 1, ... in order) in any
  interleaving; pull() returns the vocals of x_high for every sample whose two full-rate
  frames are ready; pull(total=n) at the end pads with zeros and returns up to sample n.
  Full-rate frame j covers samples [(j - 1) hop, (j + 1) hop), as in tf_drnn.spectral.
  """

  def __init__(self, rate, channels, rule, binary=False, config=DEFAULT_AUDIO_CONFIG):
    self.rate, self.channels, self.rule, self.binary, self.config = rate, channels, check_rule(rule), binary, config
    self.hop = full_rate_hop(rate, config)
    from tf_drnn.audio import BLOCK_VALUES
    self.frames_per_batch = int(np.clip(BLOCK_VALUES // (2 * self.hop * channels), 1, _FRAMES_PER_BATCH))
    self.window = sine_window(2 * self.hop, np.float64)
    self.signal = np.zeros((self.hop, channels))  # x_high from sample signal_start on
    self.signal_start = -self.hop
    self.received = 0  # x_high samples pushed
    self.masks = np.zeros((0, self.hop + 1))  # full-rate masks of model frames masks_start, ...
    self.masks_start = 0
    self.next_frame = 0
    self.tail = np.zeros((self.hop, channels))  # second half of the last inverse frame
    self.emitted = -self.hop  # output sample the next overlap-added block starts at

  def push(self, x_high):
    self.signal = np.concatenate([self.signal, np.asarray(x_high, np.float64)])
    self.received += len(x_high)

  def push_masks(self, mask, magnitude):
    if len(mask):
      self.masks = np.concatenate(
          [self.masks, full_rate_masks(mask, magnitude, self.rate, self.rule, self.binary, self.config)])

  def pull(self, total=None):
    """Vocals of x_high [m, channels] float32 from the last sample pulled on; total: the end."""
    hop = self.hop
    if total is not None:  # Flush: frames up to the one centred at or after the last sample.
      last_frame = -(-total // hop)
      needed = (last_frame + 1) * hop - (self.signal_start + len(self.signal))
      self.signal = np.concatenate([self.signal, np.zeros((max(needed, 0), self.channels))])
      end = last_frame + 1
    else:
      end = self.received // hop  # frames j with (j + 1) hop <= received
      masks_end = self.masks_start + len(self.masks)
      ready = model_frames(np.arange(self.next_frame, max(end, self.next_frame)), self.rate, self.config)
      end = self.next_frame + int(np.sum(ready < masks_end))
    outputs = []
    while self.next_frame < end:
      stop = min(end, self.next_frame + self.frames_per_batch)
      outputs.append(self._frames(self.next_frame, stop))
      self.next_frame = stop
    out = np.concatenate(outputs) if outputs else np.zeros((0, self.channels))
    if self.emitted < 0:  # The first block is the padding before sample 0.
      drop = min(-self.emitted, len(out))
      out, self.emitted = out[drop:], self.emitted + drop
    if total is not None:
      out = out[:max(total - self.emitted, 0)]
    self.emitted += len(out)
    return out.astype(np.float32)

  def _frames(self, start, stop):
    """Overlap-added vocals of frames [start, stop): samples [(start - 1) hop, (stop - 1) hop)."""
    hop, n_fft = self.hop, 2 * self.hop
    offset = (start - 1) * hop - self.signal_start
    index = offset + np.arange(n_fft)[None, :] + hop * np.arange(stop - start)[:, None]
    frames = self.signal[index] * self.window[None, :, None]  # [k, n_fft, channels]
    rows = model_frames(np.arange(start, stop), self.rate, self.config) - self.masks_start
    if len(self.masks):
      masks = self.masks[np.clip(rows, 0, len(self.masks) - 1)]
    else:
      masks = np.zeros((stop - start, hop + 1))
    spectrum = np.fft.rfft(frames, axis=1) * masks[:, :, None]
    time_frames = np.fft.irfft(spectrum, n=n_fft, axis=1) * self.window[None, :, None]
    previous = np.concatenate([self.tail[None], time_frames[:-1, hop:]])
    blocks = time_frames[:, :hop] + previous  # [k, hop, channels]
    self.tail = time_frames[-1, hop:]
    # Keep what the next frame (stop) needs: samples from (stop - 1) hop on, and its mask on.
    keep = (stop - 1) * hop - self.signal_start
    self.signal, self.signal_start = self.signal[keep:], (stop - 1) * hop
    first_row = int(model_frames([stop], self.rate, self.config)[0]) - self.masks_start
    drop = min(max(first_row, 0), max(len(self.masks) - 1, 0))
    self.masks, self.masks_start = self.masks[drop:], self.masks_start + drop
    return blocks.reshape(-1, self.channels)


class FullBandRunner:
  """Separates samples [n, channels] at `rate` Hz block by block into full-band stems.

  process(block) and finish() return (vocals, accompaniment) [m, channels] float32; over a
  whole input they return exactly as many samples as went in, aligned with it, and
  vocals + accompaniment = the input. At the model's rate: the model's stems unchanged.
  """

  def __init__(self, separator, rate, channels):
    import soxr
    from tf_drnn.blocks import BlockRunner
    self.channels = channels
    model_rate = separator.config.sample_rate
    self.native = rate == model_rate
    self.runner = BlockRunner(separator, channels, with_masks=not self.native,
                              block_samples=model_block(separator, rate, channels))
    if self.native:
      return
    options = dict(dtype="float32", quality="HQ")
    self.to_model = soxr.ResampleStream(rate, model_rate, channels, **options)
    self.up_low = soxr.ResampleStream(model_rate, rate, channels, **options)
    self.up_vocals = soxr.ResampleStream(model_rate, rate, channels, **options)
    self.splitter = HighBandSplitter(rate, channels, separator.high_band, separator.binary_mask, separator.config)
    self.consumed = 0  # input samples in
    self.emitted = 0  # output samples out
    self.low_done = 0  # samples of x_low received (x_high known up to there)
    empty = np.zeros((0, channels), np.float32)
    self.input, self.vocals_low, self.vocals_high = empty, empty, empty  # each from `emitted` on

  def process(self, block):
    block = np.asarray(block, np.float32).reshape(len(block), self.channels)
    if self.native:
      return _join(self.runner.process(block), self.channels)
    self.consumed += len(block)
    self.input = np.concatenate([self.input, block])
    return self._advance(self.to_model.resample_chunk(block), last=False)

  def finish(self):
    if self.native:
      return _join(self.runner.finish(), self.channels)
    tail = self.to_model.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
    return self._advance(tail, last=True)

  def _advance(self, at_model_rate, last):
    outputs = self.runner.process(at_model_rate) if len(at_model_rate) else []
    if last:
      outputs += self.runner.finish()
    vocals_16k = _join(outputs, self.channels)[0]
    self.splitter.push_masks(*self.runner.take_masks())
    low = self.up_low.resample_chunk(at_model_rate, last=last)
    vocals_low = self.up_vocals.resample_chunk(vocals_16k, last=last)
    if last:  # The resamplers' totals can miss the input's length by a sample or two.
      low = fit_length(low, self.consumed - self.low_done)
      vocals_low = fit_length(vocals_low, self.consumed - self.emitted - len(self.vocals_low))
    low = low[:self.consumed - self.low_done]
    start = self.low_done - self.emitted
    self.splitter.push(self.input[start:start + len(low)] - low)
    self.low_done += len(low)
    vocals_high = self.splitter.pull(total=self.consumed if last else None)
    self.vocals_low = np.concatenate([self.vocals_low, vocals_low])
    self.vocals_high = np.concatenate([self.vocals_high, vocals_high])
    ready = min(len(self.vocals_low), len(self.vocals_high))
    vocals = self.vocals_low[:ready] + self.vocals_high[:ready]
    accompaniment = self.input[:ready] - vocals
    self.input, self.vocals_low, self.vocals_high = (
        self.input[ready:], self.vocals_low[ready:], self.vocals_high[ready:])
    self.emitted += ready
    return vocals, accompaniment


def model_block(separator, rate, channels):
  """Model-rate samples per model call for an input of `rate` Hz and `channels`: the separator's block,
  or fewer hops where that much audio at the input's rate and channel count would pass
  tf_drnn.audio.BLOCK_VALUES (everything between two calls is buffered at the full rate)."""
  from tf_drnn.audio import BLOCK_VALUES
  hop, model_rate = separator.config.hop_length, separator.config.sample_rate
  values_per_hop = channels * hop * max(rate, model_rate) / model_rate
  hops = int(np.clip(BLOCK_VALUES // values_per_hop, 1, separator.block_samples // hop))
  return hops * hop


def _join(outputs, channels):
  """BlockRunner outputs [(vocals, accompaniment), ...] -> (vocals, accompaniment) [samples, channels]."""
  if not outputs:
    empty = np.zeros((0, channels), np.float32)
    return empty, empty
  return tuple(np.concatenate([o[i] for o in outputs]) for i in range(2))
