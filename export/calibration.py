"""int8 calibration: the inputs it streams (MIR-1K mixtures, or given magnitudes or audio), the
(signature, inputs) samples the converter calibrates on, and the equalization of a joint-mask
model's two heads that comes first.

Imports TensorFlow, Keras and LiteRT lazily, inside the functions that need them.
"""
import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.errors import UserError

DEFAULT_CALIBRATION_FRAMES = 2000


def calibration_audio_from_data_dir(data_dir, max_frames=DEFAULT_CALIBRATION_FRAMES, config=DEFAULT_AUDIO_CONFIG):
  """Mixtures of MIR-1K training clips (0 dB, unit-energy sources, scaled to the training level).

  Clips are taken evenly across the training split until about `max_frames` STFT frames.
  """
  from tf_drnn.data.base import unit_energy_mix
  from tf_drnn.data import load_dataset
  from tf_drnn.levels import TRAINING_LEVEL_DBFS, scale_to_dbfs
  from tf_drnn.spectral import num_frames
  tracks = load_dataset("mir1k", data_dir).tracks("train")
  if not tracks:
    raise UserError(f"{data_dir}: no MIR-1K training clips for calibration")
  mixtures, total = [], 0
  stride = max(1, len(tracks) // 16)
  order = list(range(0, len(tracks), stride)) + [i for i in range(len(tracks)) if i % stride]
  for index in order:
    vocals, accompaniment = tracks[index].sources()
    mixture = scale_to_dbfs(unit_energy_mix(vocals, accompaniment)[0], TRAINING_LEVEL_DBFS)
    mixtures.append(mixture)
    total += num_frames(len(mixture), config)
    if total >= max_frames:
      break
  return mixtures


def _random_phase_audio(magnitudes, config, seed=0):
  """A waveform whose spectrogram has roughly the given magnitudes (random phase)."""
  from tf_drnn.spectral import istft_numpy
  rng = np.random.default_rng(seed)
  phase = np.exp(2j * np.pi * rng.random(magnitudes.shape))
  hop = config.hop_length
  return istft_numpy((magnitudes * phase).astype(np.complex64), hop * (len(magnitudes) - 1), config)


def calibration_inputs(calibration_magnitudes, calibration_audio, config):
  """(magnitude sequences [[frames, bins], ...], mono waveforms [...]) from either kind of data."""
  from tf_drnn.spectral import stft_numpy
  if calibration_audio is not None:
    audio = [np.asarray(a, np.float32) for a in calibration_audio]
    magnitudes = [np.abs(stft_numpy(a, config)) for a in audio]
  else:
    magnitudes = calibration_magnitudes
    if isinstance(magnitudes, np.ndarray) and magnitudes.ndim == 2:
      magnitudes = [magnitudes]
    magnitudes = [np.asarray(m, np.float32) for m in magnitudes]
    audio = [_random_phase_audio(m, config, seed=i) for i, m in enumerate(magnitudes)]
  for m in magnitudes:
    if m.ndim != 2 or m.shape[-1] != config.num_bins:
      raise ValueError(f"calibration magnitudes must be [frames, {config.num_bins}], got {m.shape}")
  return magnitudes, audio


def _calibration_samples(float_model, magnitude_sequences, audio_sequences, config, max_steps):
  """(signature, inputs) pairs: each sequence streamed from zero state through the float model."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=bytes(float_model))
  samples = []
  for key, sequences, block in (("separate_frame", magnitude_sequences, None),
                                ("separate_pcm", audio_sequences, config.hop_length)):
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    name = "magnitude" if block is None else "pcm"
    state = None
    steps = 0
    for sequence in sequences:
      sequence = np.asarray(sequence, np.float32)
      if block is not None:  # Whole hops, then one hop of silence to flush.
        padded = np.zeros(-(-len(sequence) // block) * block + block, np.float32)
        padded[:len(sequence)] = sequence
        sequence = padded.reshape(-1, block)
      state = np.zeros(details["state"]["shape"], np.float32)
      for step in sequence:
        if steps >= max_steps:
          break
        inputs = {name: step[None], "state": state}
        samples.append((key, inputs))
        state = runner(**inputs)["next_state"]
        steps += 1
  return samples


def prepare_calibration(float_model, magnitudes, audio, config, max_steps):
  """(the calibration samples of both signatures, the sidecar's count of each) for the float
  .tflite bytes `float_model`."""
  samples = _calibration_samples(float_model, magnitudes, audio, config, max_steps)
  return samples, {"frames": sum(1 for key, _ in samples if key == "separate_frame"),
                   "pcm_blocks": sum(1 for key, _ in samples if key == "separate_pcm")}


def equalize_head_ranges(model, magnitudes):
  """A copy of a joint-mask model whose heads peak alike in every frequency bin.

  The joint mask |a1| / (|a1| + |a2|) is unchanged when both heads' bin j is multiplied by
  the same c_j > 0 (up to its 1e-8 epsilon), but int8 gives each head's output one scale for
  all bins: bins that peak lower than the loudest get fewer levels. Here c_j = median peak /
  peak_j, the peak being max(|a1_j|, |a2_j|) over `magnitudes` (a list of [frames, bins]).
  Returns (model, applied): other output formats come back unchanged (applied False).
  """
  import keras
  from tf_drnn.model import ModelParts
  if ModelParts(model).sources.output_format != "masked":
    return model, False
  copy = keras.models.clone_model(model)
  copy.set_weights(model.get_weights())
  heads = ModelParts(copy).heads
  probe = keras.Model(copy.input, [head.output for head in heads])
  peak = np.zeros(int(model.input_shape[-1]), np.float64)
  for sequence in magnitudes:
    for head_output in probe(np.asarray(sequence, np.float32)[None]):
      peak = np.maximum(peak, np.abs(np.asarray(head_output)[0]).max(axis=0))
  scale = (np.median(peak) / np.maximum(peak, 1e-30 + 1e-6 * np.median(peak))).astype(np.float32)
  for head in heads:
    kernel, bias = head.get_weights()
    head.set_weights([kernel * scale[None], bias * scale])
  return copy, True
