"""Scoring a separator on tracks: per-clip BSS Eval v3 and length-weighted G-metrics.

The same code ranks the dev model during training (:func:`evaluate_tracks`) and backs
`tf-drnn-evaluate` (:mod:`tf_drnn.evaluate`). Separation stays in the main process (it may hold a
model); BSS Eval (the slow part) runs in `workers` processes, and NumPy-only estimators separate
there too.
"""
import collections
import dataclasses
import os
import sys

import numpy as np

from tf_drnn import metrics
from tf_drnn.config import DEFAULT_AUDIO_CONFIG, AudioConfig
from tf_drnn.data.base import unit_energy_mix
from tf_drnn.errors import UserError

Clip = collections.namedtuple("Clip", "name mixture vocals accompaniment")


def mixtures(tracks, voice_db=0.0):
  """Yields (name, mixture, vocals, accompaniment): the paper's 0 dB mixtures, unshifted, or
  with the voice `voice_db` dB over the accompaniment (both at unit RMS first); voice_db None:
  the sources as they are mixed (a multitrack song's real mix, the sum of its stems)."""
  for track in tracks:
    vocals, accompaniment = track.sources()
    if voice_db is None:
      mixture = vocals + accompaniment
    else:
      mixture, vocals, accompaniment = unit_energy_mix(vocals, accompaniment, voice_db=voice_db)
    yield track.name, mixture, vocals, accompaniment


# --- estimators: (name, mixture, vocals, accompaniment) -> (vocals, accompaniment) estimates -----
# Picklable, so the NumPy-only ones can run inside worker processes.

@dataclasses.dataclass(frozen=True)
class BlindEstimator:
  """A separator that sees only the mixture: `separate(mixture) -> (vocals, accompaniment)`."""
  separate: object

  def __call__(self, name, mixture, vocals, accompaniment):
    return self.separate(mixture)


@dataclasses.dataclass(frozen=True)
class OracleEstimator:
  """Ideal mask ("irm" or "ibm") from the true sources (:func:`tf_drnn.baselines.oracle_separator`),
  under `config`'s STFT."""
  kind: str
  config: AudioConfig = DEFAULT_AUDIO_CONFIG

  def __call__(self, name, mixture, vocals, accompaniment):
    from tf_drnn.baselines import oracle_separator
    return oracle_separator(mixture, vocals, accompaniment, self.kind, self.config)


@dataclasses.dataclass(frozen=True)
class AuthorsEstimator:
  """The paper authors' stored separations, fitted to the clip's length (zero-padded at the end)."""
  directory: str
  mask: str = "softmask"

  def __call__(self, name, mixture, vocals, accompaniment):
    from tf_drnn.baselines import AuthorsResults
    return AuthorsResults(self.directory, self.mask).estimates(name, len(mixture))


def _estimate_and_score(estimator, clip, gain, estimates=None):
  """One clip: separate (unless `estimates` are given) at level `gain`, divide back, score.

  A clip that cannot be scored (metrics.unscorable: silent source or estimate, too short) comes
  back as a skipped ClipScore with the reason.
  """
  reason = metrics.unscorable((clip.vocals, clip.accompaniment))
  if reason:
    return metrics.skipped_clip(clip.name, len(clip.mixture), reason)
  if estimates is None:
    estimates = estimator(clip.name, clip.mixture * gain, clip.vocals * gain, clip.accompaniment * gain)
  vocals_estimate, accompaniment_estimate = (np.asarray(e, np.float32) / gain for e in estimates)
  for estimate in (vocals_estimate, accompaniment_estimate):
    if estimate.shape != clip.mixture.shape:
      raise ValueError(f"{clip.name}: estimate of shape {estimate.shape}, expected {clip.mixture.shape}")
  reason = metrics.unscorable((vocals_estimate, accompaniment_estimate), what="estimate")
  if reason:
    return metrics.skipped_clip(clip.name, len(clip.mixture), reason)
  return metrics.score_clip(clip.name, clip.vocals, clip.accompaniment, vocals_estimate,
                            accompaniment_estimate, clip.mixture)


def _limit_worker_threads():
  """Worker initializer: one BLAS thread per worker process (the workers are the parallelism)."""
  try:
    import threadpoolctl
    threadpoolctl.threadpool_limits(1)
  except ImportError:
    pass


def available_cpus():
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def score_estimates(estimator, tracks, gain=1.0, progress=False, workers=1, separate_in_workers=False,
                    voice_db=0.0):
  """Separates and scores every track, scoring in parallel processes.

  Args:
    estimator: Callable (name, mixture, vocals, accompaniment) -> (vocals, accompaniment)
      estimates [samples]. Blind separators ignore all but the mixture.
    tracks: Iterable of :class:`tf_drnn.data.base.Track`.
    gain: Level applied to mixture and references before separation (estimates are divided by it).
    progress: Show a progress bar (stderr).
    workers: Processes for BSS Eval; 1 scores in this process, 0 picks one per CPU but one.
    separate_in_workers: Run `estimator` in the workers as well (it must be picklable and
      must not use TensorFlow); otherwise it runs here, in the calling process.
    voice_db: Voice-to-accompaniment ratio of the mixtures, dB (:func:`mixtures`; None: as
      mixed); `gain` then applies to the whole mixture.

  Returns:
    (list of ClipScore in track order, global metrics dict).
  """
  tracks = list(tracks)
  if not tracks:
    raise UserError("no clips to evaluate")
  if workers <= 0:
    workers = max(1, available_cpus() - 1)
  workers = min(workers, len(tracks))
  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=len(tracks), desc="clips", unit="clip", file=sys.stderr)
  clips = (Clip(*row) for row in mixtures(tracks, voice_db))
  try:
    if workers == 1:
      scores = []
      for clip in clips:
        scores.append(_estimate_and_score(estimator, clip, gain))
        if bar is not None:
          bar.update(1)
    else:
      scores = _score_in_pool(estimator, clips, gain, workers, separate_in_workers, bar)
  finally:
    if bar is not None:
      bar.close()
  return scores, metrics.global_metrics(scores)


def _score_in_pool(estimator, clips, gain, workers, separate_in_workers, bar):
  """Scores `clips` in `workers` processes; clips that cannot be scored (metrics.unscorable) become
  skipped ClipScores here, so the estimator (unpicklable unless `separate_in_workers`) never travels."""
  import concurrent.futures
  import multiprocessing
  # spawn, not fork: the parent may hold TensorFlow's threads, which do not survive a fork.
  context = multiprocessing.get_context("spawn")
  results = {}
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                              initializer=_limit_worker_threads) as pool:
    pending = set()
    order = []
    for clip in clips:
      order.append(clip.name)
      if metrics.unscorable((clip.vocals, clip.accompaniment)):  # Skipped here: nothing to pickle.
        _record(_estimate_and_score(None, clip, gain), results, bar)
        continue
      if separate_in_workers:
        future = pool.submit(_estimate_and_score, estimator, clip, gain)
      else:
        estimates = estimator(clip.name, clip.mixture * gain, clip.vocals * gain, clip.accompaniment * gain)
        future = pool.submit(_estimate_and_score, None, clip, gain, tuple(np.asarray(e) for e in estimates))
      pending.add(future)
      if len(pending) >= 2 * workers:  # Bounded memory: at most 2 clips queued per worker.
        done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        _collect(done, results, bar)
    done, _ = concurrent.futures.wait(pending)
    _collect(done, results, bar)
  return [results[name] for name in order]


def _collect(done, results, bar):
  for future in done:
    _record(future.result(), results, bar)


def _record(score, results, bar):
  results[score.name] = score
  if bar is not None:
    bar.update(1)


def evaluate_tracks(separate, tracks, gain=1.0, progress=False, workers=1, voice_db=0.0):
  """Separates and scores every track.

  Args:
    separate: Callable mixture [samples] -> (vocals, accompaniment) estimates [samples].
    tracks: Iterable of :class:`tf_drnn.data.base.Track`.
    gain: Level applied to the mixture before separation (estimates are divided by it),
      to check that quiet inputs separate as well as loud ones.
    progress: Show a progress bar.
    workers: Processes scoring BSS Eval (separation stays in this process).
    voice_db: Voice-to-accompaniment ratio of the mixtures, dB (0: the paper's; None: as mixed).

  Returns:
    (list of ClipScore, global metrics dict).
  """
  return score_estimates(BlindEstimator(separate), tracks, gain, progress, workers, voice_db=voice_db)


def spread_evenly(items, count):
  """`count` > 0 of `items`, spread evenly over the list (first and last kept); all if count is 0."""
  if 0 < count < len(items):
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    return [items[i] for i in picks]
  return list(items)


def markdown_path(output):
  """results.json -> results.md: where the Markdown table of a JSON result goes."""
  return os.path.splitext(output)[0] + ".md"
