"""Audio file I/O: read, downmix, resample, check and write atomically.

Waveforms are float32 NumPy arrays in [-1, 1]: shape [samples] (mono) or
[samples, channels]. Every problem with a file raises :class:`AudioFileError`
whose message names the file and the problem in one line.
"""
import os

import numpy as np

from tf_drnn.errors import AudioFileError


def read_audio(path, sample_rate=None, mono=False):
  """Reads an audio file.

  Args:
    path: Any format soundfile reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1);
      others fall back to librosa/audioread.
    sample_rate: Resample to this rate (Hz); None keeps the file's rate.
    mono: Average the channels into one.

  Returns:
    (waveform, sample_rate): float32 [samples] if mono else [samples, channels].
  """
  path = os.fspath(path)
  check_readable(path)
  import soundfile
  try:
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
  except Exception as sf_error:  # libsndfile cannot read it: try librosa's decoders.
    try:
      import warnings
      import librosa
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, rate = librosa.load(path, sr=None, mono=False)
      data = np.atleast_2d(data).T.astype(np.float32)
    except Exception:
      raise AudioFileError(path, f"corrupt or unsupported audio ({_first_line(sf_error)})") from None
  if data.shape[0] == 0:
    raise AudioFileError(path, "zero-length audio (no samples)")
  if not np.all(np.isfinite(data)):
    raise AudioFileError(path, "contains NaN or infinite samples")
  if mono:
    data = data.mean(axis=1)
  if sample_rate is not None and rate != sample_rate:
    data = resample(data, rate, sample_rate)
    rate = sample_rate
  return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def check_readable(path):
  """Raises AudioFileError for a path that is missing, a directory or an empty file."""
  if not os.path.exists(path):
    raise AudioFileError(path, "no such file")
  if os.path.isdir(path):
    raise AudioFileError(path, "is a directory, not an audio file")
  if os.path.getsize(path) == 0:
    raise AudioFileError(path, "empty file (0 bytes)")


def resample(waveform, from_rate, to_rate):
  """Resamples along axis 0 (samples) with soxr's high-quality filter."""
  if from_rate == to_rate:
    return waveform
  import librosa
  return librosa.resample(np.asarray(waveform, np.float32), orig_sr=from_rate, target_sr=to_rate,
                          res_type="soxr_hq", axis=0).astype(np.float32)


def fit_length(signal, num_samples):
  """Trims `signal` [samples, ...] to `num_samples`, or zero-pads its end up to it."""
  signal = np.asarray(signal, np.float32)
  if len(signal) >= num_samples:
    return signal[:num_samples]
  padding = np.zeros((num_samples - len(signal),) + signal.shape[1:], np.float32)
  return np.concatenate([signal, padding])


def check_not_silent(path, waveform, what="audio"):
  """Raises AudioFileError when the waveform is all zeros (nothing to separate)."""
  if not np.any(waveform):
    raise AudioFileError(path, f"silent {what} (all samples are zero)")


def write_audio(path, waveform, sample_rate, subtype=None):
  """Writes a waveform atomically (a temporary file beside `path`, then a rename)."""
  import soundfile
  from tf_drnn.atomic import atomic_output
  extension = os.path.splitext(os.fspath(path))[1].lstrip(".").upper() or "WAV"
  with atomic_output(path) as tmp:
    soundfile.write(tmp, waveform, sample_rate, subtype=subtype, format=extension)


def _first_line(error):
  text = str(error).strip().splitlines()
  return text[0] if text else type(error).__name__
