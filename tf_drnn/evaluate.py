"""Scores a separator on a dataset split: per-clip BSS Eval v3 and G-metrics.

The same code ranks checkpoints during training (dev split) and backs `tf-drnn-evaluate`.
"""
import numpy as np

from tf_drnn import metrics
from tf_drnn.data.base import unit_energy_mix


def mixtures(tracks):
  """Yields (name, mixture, vocals, accompaniment): the paper's 0 dB mixtures, unshifted."""
  for track in tracks:
    vocals, accompaniment = track.sources()
    mixture, vocals, accompaniment = unit_energy_mix(vocals, accompaniment)
    yield track.name, mixture, vocals, accompaniment


def evaluate_tracks(separate, tracks, gain=1.0, progress=False):
  """Separates and scores every track.

  Args:
    separate: Callable mixture [samples] -> (vocals, accompaniment) estimates [samples].
    tracks: Iterable of :class:`tf_drnn.data.base.Track`.
    gain: Level applied to the mixture before separation (estimates are divided by it),
      to check that quiet inputs separate as well as loud ones.
    progress: Show a progress bar.

  Returns:
    (list of ClipScore, global metrics dict).
  """
  tracks = list(tracks)
  iterator = mixtures(tracks)
  if progress:
    from tqdm import tqdm
    iterator = tqdm(iterator, total=len(tracks), desc="clips", unit="clip")
  scores = []
  for name, mixture, vocals, accompaniment in iterator:
    vocals_estimate, accompaniment_estimate = separate(mixture * gain)
    scores.append(metrics.score_clip(name, vocals, accompaniment,
                                     np.asarray(vocals_estimate) / gain,
                                     np.asarray(accompaniment_estimate) / gain, mixture))
  return scores, metrics.global_metrics(scores)
