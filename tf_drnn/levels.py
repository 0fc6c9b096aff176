"""Signal levels in dB: the one place that turns decibels into gains.

TRAINING_LEVEL_DBFS is the RMS every training mixture is scaled to (the features are level-
invariant, so any input level separates alike; export calibrates int8 at this level).
"""
import numpy as np

TRAINING_LEVEL_DBFS = -20.0


def db_to_gain(db):
  """Amplitude gain of `db` decibels, 10^(db / 20) (NumPy or TensorFlow scalars and arrays)."""
  return 10.0 ** (db / 20.0)


def rms(signal):
  """Root mean square of a NumPy array (float64 accumulation), over all its samples."""
  return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))


def scale_to_dbfs(signal, level_db=TRAINING_LEVEL_DBFS):
  """`signal` scaled so that its RMS is `level_db` dBFS (a silent signal stays silent); float32."""
  level = rms(signal)
  if level == 0:
    return np.asarray(signal, np.float32)
  return (np.asarray(signal) / (level / db_to_gain(level_db))).astype(np.float32)  # 0 dB: signal / rms
