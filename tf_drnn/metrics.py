"""BSS Eval v3 scores (mir_eval's definitions), NSDR and length-weighted global metrics (GNSDR, GSIR, GSAR).

Conventions of Huang et al. (2014): NSDR = SDR(estimate, reference) - SDR(mixture, reference);
the G-metrics are means over clips weighted by clip length in samples.

A clip BSS Eval cannot score (a silent source, a silent estimate, fewer samples than its
distortion filter) is kept as a skipped ClipScore with the reason, and left out of the G-metrics.
"""
import dataclasses
import hashlib

import numpy as np

SOURCES = ("vocals", "accompaniment")
# BSS Eval v3 fits 512-tap distortion filters: a shorter clip has fewer samples than unknowns.
MIN_SCORED_SAMPLES = 512


@dataclasses.dataclass
class ClipScore:
  """BSS Eval v3 scores of one clip, in dB, per source (vocals, accompaniment)."""
  name: str
  num_samples: int
  sdr: tuple
  sir: tuple
  sar: tuple
  mixture_sdr: tuple
  skipped: str = None  # Why the clip was not scored (then every score is NaN).

  @property
  def nsdr(self):
    return tuple(e - m for e, m in zip(self.sdr, self.mixture_sdr))

  def as_dict(self):
    row = {"name": self.name, "num_samples": self.num_samples}
    if self.skipped:
      return {**row, "skipped": self.skipped}
    for i, source in enumerate(SOURCES):
      row[source] = {"SDR": self.sdr[i], "SIR": self.sir[i], "SAR": self.sar[i],
                     "NSDR": self.nsdr[i], "mixture_SDR": self.mixture_sdr[i]}
    return row


def skipped_clip(name, num_samples, reason):
  """A ClipScore for a clip that was not scored, with the reason."""
  nan = (float("nan"),) * len(SOURCES)
  return ClipScore(name, int(num_samples), nan, nan, nan, nan, skipped=reason)


def unscorable(sources, what="reference"):
  """Why BSS Eval cannot score these (vocals, accompaniment) signals [samples], or None."""
  length = len(sources[0])
  if length < MIN_SCORED_SAMPLES:
    return f"too short to score ({length} samples; BSS Eval v3 needs at least {MIN_SCORED_SAMPLES})"
  for name, signal in zip(SOURCES, sources):
    if not np.any(signal):
      return f"silent {name} {what} (all samples zero): BSS Eval cannot score it"
  return None


def bss_eval(references, estimates):
  """BSS Eval v3 without permutation. references, estimates: [sources, samples] -> (sdr, sir, sar).

  mir_eval.separation.bss_eval_sources' definitions and filters (tf_drnn.bss_eval.bss_eval_v3_sources:
  the references' Gram matrix once for every source; tests/test_metrics.py checks it against mir_eval)."""
  from tf_drnn.bss_eval import bss_eval_v3_sources
  return bss_eval_v3_sources(np.asarray(references, np.float64), np.asarray(estimates, np.float64))


def score_clip(name, vocals, accompaniment, vocals_estimate, accompaniment_estimate, mixture=None):
  """Scores one clip's estimates against its references; all float [samples], equal length."""
  references = np.stack([vocals, accompaniment])
  if mixture is None:
    mixture = vocals + accompaniment
  sdr, sir, sar = bss_eval(references, np.stack([vocals_estimate, accompaniment_estimate]))
  as_tuple = lambda a: tuple(float(v) for v in a)
  return ClipScore(name, int(len(vocals)), as_tuple(sdr), as_tuple(sir), as_tuple(sar),
                   unprocessed_sdr(references, mixture))


_UNPROCESSED_SDR = {}  # content digest of (references, mixture) -> the mixture's SDR per source


def unprocessed_sdr(references, mixture):
  """SDR of the mixture itself as every source's estimate (NSDR's baseline), per source, dB.

  references: [sources, samples]; mixture: [samples]. It depends on the clip alone, so it is
  computed once per process and content: training scores the same dev clips at every evaluation.
  """
  digest = hashlib.sha1()
  for array in (np.asarray(references), np.asarray(mixture)):
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  key = digest.hexdigest()
  if key not in _UNPROCESSED_SDR:
    sdr, _, _ = bss_eval(references, np.stack([mixture] * len(references)))
    _UNPROCESSED_SDR[key] = tuple(float(v) for v in sdr)
  return _UNPROCESSED_SDR[key]


def global_metrics(scores):
  """Length-weighted means over the scored clips: {source: {GNSDR, GSIR, GSAR, GSDR}} in dB (NaN if none)."""
  scores = [s for s in scores if not s.skipped]
  if not scores:
    return {source: dict.fromkeys(("GNSDR", "GSIR", "GSAR", "GSDR"), float("nan")) for source in SOURCES}
  weights = np.asarray([s.num_samples for s in scores], np.float64)
  weights = weights / weights.sum()
  result = {}
  for i, source in enumerate(SOURCES):
    mean = lambda values: float(np.dot(weights, [v[i] for v in values]))  # noqa: B023
    result[source] = {"GNSDR": mean([s.nsdr for s in scores]), "GSIR": mean([s.sir for s in scores]),
                      "GSAR": mean([s.sar for s in scores]), "GSDR": mean([s.sdr for s in scores])}
  return result
