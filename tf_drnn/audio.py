"""Audio file I/O: read, downmix, resample, check and write atomically.

Waveforms are float32 NumPy arrays in [-1, 1]: shape [samples] (mono) or
[samples, channels]. Every problem with a file raises :class:`AudioFileError`
whose message names the file and the problem in one line.
"""
import os

import numpy as np

from tf_drnn.errors import AudioFileError, first_line

# Inputs beyond these are refused before any work (docs/separation.md).
MAX_CHANNELS = 16  # memory grows with the channel count; 16 covers 7.1.4 and third-order ambisonics
MAX_PEAK = 1000.0  # |sample| above this (60 dB over full scale) is not a recording: refused, not rescaled
# Whole numbers of Hz only: outside this the resamplers loop forever (NaN), allocate gigabytes
# (1e9 Hz) or crawl (1 Hz). 1 kHz is below any telephone codec; 768 kHz is the top DAC rate.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000
# Samples x channels read and separated per block: memory per block is bounded whatever the rate
# and channel count (16 channels at 384 kHz read 10 s at a time peaked at 5.2 GB).
BLOCK_VALUES = 2 ** 20  # float32 values: 4 MiB per block (65 s of mono 16 kHz, 0.17 s of 16 x 384 kHz)


def block_frames(channels):
  """Frames (samples per channel) of one read/separate block of `channels` channels: BLOCK_VALUES / channels."""
  return max(1, BLOCK_VALUES // max(int(channels), 1))


def sample_rate_problem(rate):
  """Why `rate` (Hz) cannot be separated, or None: it must be a whole number (bool is not one)
  within MIN_SAMPLE_RATE ... MAX_SAMPLE_RATE."""
  import numbers
  span = f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
  if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
    return f"sample rate {rate!r} is not a number (an integer of {span})"
  if not np.isfinite(rate) or rate != int(rate):
    return f"sample rate {rate} Hz is not a whole number (an integer of {span})"
  if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
    return f"sample rate {int(rate)} Hz is outside the supported {span}"
  return None


def check_sample_rate(path, rate):
  """Raises AudioFileError naming `path` unless `rate` is supported (:func:`sample_rate_problem`); returns it as int."""
  problem = sample_rate_problem(rate)
  if problem:
    raise AudioFileError(path, problem)
  return int(rate)


def read_audio(path, sample_rate=None, mono=False):
  """Reads an audio file.

  Args:
    path: Any format soundfile reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1);
      others fall back to librosa/audioread (installed with tf-drnn[train]).
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
      import librosa
    except ImportError:  # A runtime install (no tf-drnn[train]): libsndfile's formats only.
      raise AudioFileError(path, f"corrupt or unsupported audio ({decoder_problem(sf_error)}; librosa's "
                           "decoders are not installed: pip install \"tf-drnn[train]\", or convert it to "
                           "WAV or FLAC)") from None
    try:
      import warnings
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, rate = librosa.load(path, sr=None, mono=False)
      data = np.atleast_2d(data).T.astype(np.float32)
    except Exception:
      raise AudioFileError(path, f"corrupt or unsupported audio ({decoder_problem(sf_error)})") from None
  check_sample_rate(path, rate)
  if data.shape[0] == 0:
    raise AudioFileError(path, "zero-length audio (no samples)")
  check_samples(path, data)
  if mono:
    data = data.mean(axis=1)
  if sample_rate is not None and rate != sample_rate:
    data = resample(data, rate, sample_rate)
    rate = sample_rate
  return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def check_readable(path):
  """Raises AudioFileError for a path that is missing, a directory, not a regular file (a named
  pipe, a device: refused without opening it, so nothing blocks), an empty file or one this
  process may not open (permission denied: said so, not taken for corrupt audio)."""
  import stat
  try:
    mode = os.stat(path).st_mode
  except FileNotFoundError:
    raise AudioFileError(path, "no such file") from None
  except OSError as error:
    raise AudioFileError(path, f"cannot read ({error.strerror})") from None
  if stat.S_ISDIR(mode):
    raise AudioFileError(path, "is a directory, not an audio file")
  if not stat.S_ISREG(mode):
    raise AudioFileError(path, "not a regular file (a named pipe, device or socket); pass an audio file")
  if os.path.getsize(path) == 0:
    raise AudioFileError(path, "empty file (0 bytes)")
  try:
    open(path, "rb").close()
  except OSError as error:
    raise AudioFileError(path, f"cannot read ({error.strerror})") from None


def check_samples(path, samples):
  """Raises AudioFileError for NaN or infinite samples, or absurd amplitudes (|x| > MAX_PEAK)."""
  if not np.all(np.isfinite(samples)):
    raise AudioFileError(path, "contains NaN or infinite samples")
  peak = float(np.max(np.abs(samples))) if samples.size else 0.0
  if peak > MAX_PEAK:
    raise AudioFileError(path, f"absurd amplitude: a sample of magnitude {peak:.3g}, over {MAX_PEAK:g} "
                         "(full scale is 1); not separated, rescale the file first")


def check_channels(path, channels):
  """Raises AudioFileError for a channel count outside 1 ... MAX_CHANNELS (checked from the header)."""
  if not 1 <= channels <= MAX_CHANNELS:
    raise AudioFileError(path, f"{channels} channels; at most {MAX_CHANNELS} are supported")


def truncation_warning(path, frames):
  """A WAV whose data chunk declares more frames than the file holds -> a one-line note, else None."""
  import struct
  try:
    with open(path, "rb") as f:
      header = f.read(12)
      if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
      block_align = None
      while True:
        chunk = f.read(8)
        if len(chunk) < 8:
          return None
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"fmt ":
          fmt = f.read(size)
          block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
          f.seek(size % 2, os.SEEK_CUR)
        elif kind == b"data":
          if not block_align or size in (0, 0xFFFFFFFF):  # Unknown (streamed) length.
            return None
          declared = size // block_align
          break
        else:
          f.seek(size + size % 2, os.SEEK_CUR)
  except OSError:
    return None
  if declared <= frames:
    return None
  return (f"{path}: truncated WAV: the header declares {declared} samples, the file holds {frames}; "
          f"separating those {frames}")


def decoder_problem(error):
  """The first line of a decoder's error; libsndfile's "File does not exist ... (possibly a pipe?)"
  for an existing regular file (checked first) means it could not decode it."""
  line = first_line(error, limit=None)
  return "no decoder recognises it" if "does not exist" in line else line


def resample(waveform, from_rate, to_rate):
  """Resamples along axis 0 (samples) with soxr's high-quality filter ("soxr_hq"), to
  ceil(samples * to_rate / from_rate) samples: what librosa.resample(res_type="soxr_hq", axis=0)
  gives, sample for sample, without needing librosa (a runtime install has soxr only)."""
  if from_rate == to_rate:
    return waveform
  import soxr
  waveform = np.asarray(waveform, np.float32)
  num_samples = int(np.ceil(waveform.shape[0] * (float(to_rate) / from_rate)))  # librosa's length
  columns = np.ascontiguousarray(waveform.reshape(waveform.shape[0], -1))  # soxr takes [samples, channels]
  resampled = np.asarray(soxr.resample(columns, from_rate, to_rate, quality="soxr_hq"), np.float32)
  return fit_length(resampled, num_samples).reshape((num_samples,) + waveform.shape[1:])


def fit_length(signal, num_samples):
  """Trims `signal` [samples, ...] to `num_samples`, or zero-pads its end up to it."""
  signal = np.asarray(signal, np.float32)
  if len(signal) >= num_samples:
    return signal[:num_samples]
  padding = np.zeros((num_samples - len(signal),) + signal.shape[1:], np.float32)
  return np.concatenate([signal, padding])


def silence_problem(waveform, what="audio"):
  """"silent audio (all samples are zero)" when the waveform is all zeros (nothing to separate), else None."""
  return None if np.any(waveform) else f"silent {what} (all samples are zero)"


def check_not_silent(path, waveform, what="audio"):
  """Raises AudioFileError naming `path` when the waveform is all zeros (:func:`silence_problem`)."""
  problem = silence_problem(waveform, what)
  if problem:
    raise AudioFileError(path, problem)


def write_audio(path, waveform, sample_rate, subtype=None):
  """Writes a waveform atomically (a temporary file beside `path`, then a rename)."""
  import soundfile
  from tf_drnn.atomic import atomic_output
  extension = os.path.splitext(os.fspath(path))[1].lstrip(".").upper() or "WAV"
  with atomic_output(path) as tmp:
    soundfile.write(tmp, waveform, sample_rate, subtype=subtype, format=extension)

