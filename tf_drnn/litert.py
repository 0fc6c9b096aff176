"""Runs exported .tflite files with LiteRT (ai-edge-litert), the way an app streams them; no
TensorFlow needed.

    separate = tflite_separate_fn("m.tflite")          # reads m.json, the sidecar
    vocals, accompaniment = separate(mixture)          # mono float32 at 16 kHz, aligned to the input

    Separator("m.tflite").separate(song, 44100)        # full band, any rate and channels

:class:`LiteRTPcmStream` keeps :class:`tf_drnn.streaming.PcmStream`'s contract (PCM blocks in,
stems, masks and magnitudes out, `latency_samples` late) around the file's `separate_frame`
signature, so the Separator's block runner and full-band splitter run a .tflite file as they
run a Keras model.
"""
import json
import os

import numpy as np

from tf_drnn.errors import UserError

MASK_EPSILON = 1e-12  # as tf_drnn.model.masks_from_magnitudes


def make_interpreter(path, threads=1, xnnpack=True):
  """A LiteRT Interpreter for `path`; xnnpack=False disables the default (XNNPACK) delegate."""
  from ai_edge_litert.interpreter import Interpreter, OpResolverType
  resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  return Interpreter(model_path=str(path), num_threads=int(threads), experimental_op_resolver_type=resolver)


def sidecar_path(tflite_path):
  """FILE.tflite -> FILE.json, the sidecar tf-drnn-export writes beside it."""
  return os.path.splitext(os.fspath(tflite_path))[0] + ".json"


def read_sidecar(path):
  """The sidecar dict of FILE.tflite (FILE.json); a UserError naming the file when it is missing."""
  sidecar = sidecar_path(path)
  try:
    with open(sidecar) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{sidecar}: no such file (the sidecar tf-drnn-export writes beside {path})") from None
  except json.JSONDecodeError as error:
    raise UserError(f"{sidecar}: not valid JSON ({error})") from None


def stream_pcm(runner, mixture, hop, latency_samples):
  """Feeds a mono waveform [samples] hop by hop through a `separate_pcm` runner from zero state,
  flushing with `latency_samples` zeros; returns (vocals, accompaniment) [samples], aligned."""
  state = np.zeros(runner.get_input_details()["state"]["shape"], np.float32)
  padded = np.zeros(-(-(len(mixture) + latency_samples) // hop) * hop, np.float32)
  padded[:len(mixture)] = mixture
  vocals, accompaniment = [], []
  for block in padded.reshape(-1, 1, hop):
    outputs = runner(pcm=block, state=state)
    state = outputs["next_state"]
    vocals.append(outputs["vocals"][0])
    accompaniment.append(outputs["accompaniment"][0])
  cut = slice(latency_samples, latency_samples + len(mixture))
  return np.concatenate(vocals)[cut], np.concatenate(accompaniment)[cut]


def tflite_separate_fn(path, threads=1, xnnpack=True):
  """mixture [samples] -> (vocals, accompaniment) through the file's `separate_pcm` signature."""
  sidecar = read_sidecar(path)
  runner = make_interpreter(path, threads, xnnpack).get_signature_runner("separate_pcm")
  hop, latency = int(sidecar["hop_length"]), int(sidecar["latency_samples"])
  return lambda mixture: stream_pcm(runner, mixture, hop, latency)


def sidecar_audio_config(sidecar):
  """The AudioConfig a .tflite file was exported with (its sidecar's audio settings)."""
  from tf_drnn.config import AudioConfig
  return AudioConfig(int(sidecar["sample_rate"]), int(sidecar["n_fft"]), int(sidecar["hop_length"]),
                     sidecar.get("window", "sine"))


class LiteRTPcmStream:
  """PCM blocks through a .tflite file's `separate_frame` signature, frame by frame (NumPy STFT).

  call(pcm [channels, n * hop], state) -> (vocals [channels, n * hop], accompaniment, next_state,
  vocal_mask [n, bins], magnitude [n, bins]): the contract of
  :meth:`tf_drnn.streaming.PcmStream.separate_with_masks`, `latency_samples` = (1 + delay) hop
  late; the mask is computed on the channel mean and applied to every channel. The state is a
  dict of arrays (input tail, look-ahead spectra, the model's state, overlap-add tails).
  """

  def __init__(self, path, channels=1, binary_mask=False, threads=1):
    from tf_drnn import spectral
    sidecar = read_sidecar(path)
    self.config = sidecar_audio_config(sidecar)
    self.channels, self.binary_mask = int(channels), binary_mask
    self.hop, self.n_fft = self.config.hop_length, self.config.n_fft
    self.num_bins = self.config.num_bins
    self.delay = int(sidecar["frame_delay"])
    self.latency_samples = spectral.stream_latency_samples(self.config, self.delay)
    self.tail_samples = spectral.stream_tail_samples(self.config, self.delay)
    self.model_state_size = int(sidecar["state_size"]["separate_frame"])
    self.subtracts_accompaniment = binary_mask or sidecar["model"].get("output_format", "masked") == "masked"
    self.runner = make_interpreter(path, threads).get_signature_runner("separate_frame")
    self.analysis_window = spectral.analysis_window(self.config)
    self.synthesis_window = spectral.synthesis_window(self.config)

  def initial_state(self):
    c = self.channels
    return {"input": np.zeros((c, self.tail_samples), np.float32),
            "lookahead": np.zeros((c, self.delay, self.num_bins), np.complex64),
            "model": np.zeros((1, self.model_state_size), np.float32),
            "overlap": np.zeros((2, c, self.hop), np.float32)}

  def __call__(self, pcm, state):
    hop, n_fft, delay = self.hop, self.n_fft, self.delay
    steps = pcm.shape[-1] // hop
    signal = np.concatenate([state["input"], np.asarray(pcm, np.float32)], axis=-1)
    starts = delay * hop + hop * np.arange(steps)
    frames = signal[:, starts[:, None] + np.arange(n_fft)] * self.analysis_window  # [c, steps, n_fft]
    spectrum = np.concatenate([state["lookahead"], np.fft.rfft(frames).astype(np.complex64)], axis=1)
    magnitude = np.abs(spectrum.mean(axis=0)).astype(np.float32)  # [delay + steps, bins]
    sources, model_state = self._model(magnitude[delay:], state["model"])
    masks = self._masks(sources, magnitude[:steps])  # [steps, 2, bins]
    stems = 1 if self.subtracts_accompaniment else 2
    masked = masks[None, :, :stems].transpose(2, 0, 1, 3) * spectrum[None, :, :steps]
    time_frames = np.fft.irfft(masked, n=n_fft)[..., -2 * hop:].astype(np.float32) * self.synthesis_window
    # time_frames [stems, c, steps, 2 hop]: each frame's synthesis part.
    tails = np.concatenate([state["overlap"][:stems, :, None], time_frames[..., hop:]], axis=2)
    output = (time_frames[..., :hop] + tails[:, :, :steps]).reshape(stems, self.channels, steps * hop)
    vocals = output[0]
    first = n_fft - 2 * hop  # The input, latency_samples late (tf_drnn.streaming.PcmStream).
    accompaniment = signal[:, first:first + steps * hop] - vocals if stems == 1 else output[1]
    overlap = np.zeros_like(state["overlap"])
    overlap[:stems] = tails[:, :, steps]
    next_state = {"input": signal[:, -self.tail_samples:], "lookahead": spectrum[:, steps:],
                  "model": model_state, "overlap": overlap}
    return vocals, accompaniment, next_state, masks[:, 0], magnitude[:steps]

  def _model(self, magnitude, model_state):
    """Source magnitudes [frames, 2, bins] of each magnitude frame [frames, bins], frame by frame."""
    sources = np.empty((len(magnitude), 2, self.num_bins), np.float32)
    for t, frame in enumerate(magnitude):
      out = self.runner(magnitude=frame[None], state=model_state)
      sources[t, 0], sources[t, 1] = out["vocals"][0], out["accompaniment"][0]
      model_state = out["next_state"]
    return sources, model_state

  def _masks(self, sources, magnitude):
    """tf_drnn.model.masks_from_magnitudes in NumPy (separate_frame gives both sources' magnitudes)."""
    masks = sources / (magnitude[:, None] + MASK_EPSILON)
    if self.binary_mask:
      vocals_win = (masks[:, 0] >= masks[:, 1]).astype(np.float32)
      masks = np.stack([vocals_win, 1.0 - vocals_win], axis=1)
    return masks
