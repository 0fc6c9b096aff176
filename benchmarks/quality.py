"""Separation quality of each exported variant on real clips: vocal GNSDR (BSS Eval v3).

Each clip's 0 dB mixture (tf_drnn.scoring.mixtures) is streamed hop by hop through the
.tflite's `separate_pcm` under LiteRT, the first `latency_samples` of output are dropped,
and the stems are scored with tf_drnn.metrics against the clip's sources. The Keras model
(tf_drnn.Separator) on the same clips is the reference row.

The mixture's own SDR (the NSDR baseline) does not depend on the separator, so it is
computed once per clip and shared by every variant.
"""
import numpy as np

from tf_drnn import metrics


def load_clips(data_dir, count):
  """The first `count` public test clips as (name, mixture, vocals, accompaniment)."""
  from tf_drnn.data import load_dataset
  from tf_drnn.scoring import mixtures
  return list(mixtures(load_dataset("mir1k", data_dir).tracks("test")[:count]))


class Scorer:
  """Scores separations of a fixed list of clips (each clip's mixture SDR computed once: metrics.score_clip)."""

  def __init__(self, clips):
    self.clips = clips

  def score(self, separate):
    """Runs `separate(mixture) -> (vocals, accompaniment)` on every clip; returns ({G-metrics}, [clip rows])."""
    scores = []
    for name, mixture, vocals, accompaniment in self.clips:
      vocals_hat, accompaniment_hat = separate(mixture)
      vocals_hat = np.asarray(vocals_hat, np.float64)[:len(mixture)]
      accompaniment_hat = np.asarray(accompaniment_hat, np.float64)[:len(mixture)]
      if not (np.all(np.isfinite(vocals_hat)) and np.all(np.isfinite(accompaniment_hat))):
        raise RuntimeError(f"{name}: the separation is not finite")
      scores.append(metrics.score_clip(name, vocals, accompaniment, vocals_hat, accompaniment_hat, mixture))
    return metrics.global_metrics(scores), [s.as_dict() for s in scores]
