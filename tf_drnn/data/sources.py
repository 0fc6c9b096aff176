"""Training sources in memory, without TensorFlow: loading, speed perturbation, the shift grid
and the feature statistics. Used by the example generator (`pipeline`) and the trainer.
"""
import numpy as np

from tf_drnn import spectral
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.data.base import unit_energy_mix
from tf_drnn.levels import TRAINING_LEVEL_DBFS, db_to_gain, scale_to_dbfs


def voice_db_range_from(values):
  """(lo, hi) dB from a --voice_db_range value ("LO,HI", two numbers, or empty: off -> ()).

  Raises UserError unless both are finite numbers with lo <= hi.
  """
  from tf_drnn.errors import UserError
  if isinstance(values, str):
    values = [v for v in values.split(",") if v.strip()]
  values = list(values or ())
  if not values:
    return ()
  shown = ",".join(str(v) for v in values)
  try:
    numbers = tuple(float(v) for v in values)
  except (TypeError, ValueError):
    numbers = ()
  if len(numbers) != 2 or not all(np.isfinite(numbers)):
    raise UserError(f"--voice_db_range={shown}: expected two finite numbers LO,HI in dB (e.g. -10,5)")
  if numbers[0] > numbers[1]:
    raise UserError(f"--voice_db_range={shown}: LO must not exceed HI")
  return numbers


def voice_gain(draw, voice_db_range):
  """Gain on a unit-RMS voice for a voice-to-accompaniment ratio drawn uniformly in dB.

  draw: uniform in [0, 1) (a NumPy or TensorFlow scalar: both pipelines use this one formula);
  voice_db_range: (lo, hi) dB. The ratio is lo + (hi - lo) draw; the gain 10^(ratio / 20).
  """
  lo, hi = (float(v) for v in voice_db_range)
  return db_to_gain(lo + (hi - lo) * draw)


def load_sources(tracks):
  """Loads every track: list of (vocals, accompaniment) float32 arrays, unit RMS each."""
  sources = []
  for track in tracks:
    vocals, accompaniment = track.sources()
    _, vocals, accompaniment = unit_energy_mix(vocals, accompaniment)
    sources.append((vocals, accompaniment))
  return sources


def speed_perturbed(sources, factors, config=DEFAULT_AUDIO_CONFIG):
  """Sources played `factor` times faster (pitch and tempo both scaled; factor 1.06 ~ +1 semitone).

  Voice and accompaniment of a clip are resampled together (length / factor, band-limited),
  then rescaled to unit RMS. Returns the original sources followed by one perturbed copy of
  every clip per factor: a training set with more voices (shifted pitch and formants) and keys.
  """
  import librosa
  perturbed = list(sources)
  for factor in factors:
    if factor <= 0:
      raise ValueError(f"speed factor must be positive, got {factor}")
    target_rate = config.sample_rate / factor
    for vocals, accompaniment in sources:
      resampled = librosa.resample(np.stack([vocals, accompaniment]), orig_sr=config.sample_rate,
                                   target_sr=target_rate, axis=-1)
      _, vocals_fast, accompaniment_fast = unit_energy_mix(resampled[0], resampled[1])
      perturbed.append((vocals_fast, accompaniment_fast))
  return perturbed


def shift_pairs(lengths, circular_shift):
  """All (clip index, shift) pairs: shifts 0, step, 2 step, ... below each clip's length."""
  pairs = []
  for index, length in enumerate(lengths):
    shifts = range(0, length, circular_shift) if circular_shift > 0 else [0]
    pairs.extend((index, shift) for shift in shifts)
  return np.asarray(pairs, np.int64).reshape(-1, 2)


def statistics_magnitudes(sources, config=DEFAULT_AUDIO_CONFIG, max_frames=20000):
  """Mixture magnitudes [frames, bins] of the unshifted training mixtures at the training level."""
  frames = []
  total = 0
  for vocals, accompaniment in sources:
    magnitude = np.abs(spectral.stft_numpy(scale_to_dbfs(vocals + accompaniment, TRAINING_LEVEL_DBFS), config))
    frames.append(magnitude)
    total += len(magnitude)
    if total >= max_frames:
      break
  return np.concatenate(frames)[:max_frames]
