"""Scores a separator on a multitrack collection at each song's own rate and channels.

`tf-drnn-evaluate --dataset=musdb18hq` (or `stems`) separates each song's released mixture
(`mixture.wav`, or the sum of its stems) as a user would, `Separator.separate(waveform, rate)`
at the file's rate and channels, and scores the estimates against the stems (accompaniment =
the sum of the non-vocal stems):

- the museval convention of MUSDB18 results (SiSEC 2018): BSS Eval v4 (:mod:`tf_drnn.bss_eval`,
  images metrics, 512-tap time-invariant filters), 1-second windows, a track's score the median
  over its windows (silent windows left out), the collection's the median over tracks;
- our G-metrics: each track scored as one window (BSS Eval v4 = v3 images on the whole track),
  NSDR = SDR(estimate) - SDR(mixture), means over tracks weighted by duration.

With `mono` (`--mono`) each song's mono downmix is separated and scored instead, and its
whole-track scores are BSS Eval v3 (`bss_eval_sources`, as for MIR-1K): the headline figure of
produced-music results here is the mean over songs of that vocal SDR (`mean_SDR`).

The MIR-1K path (:mod:`tf_drnn.evaluate`: 0 dB remixes at 16 kHz, BSS Eval v3) is unchanged.
"""
import os
import sys
import time
import warnings

import numpy as np

from tf_drnn.errors import UserError
from tf_drnn.metrics import SOURCES

METHODS = ("model", "mixture", "oracle_irm", "oracle_ibm")
METRICS = ("SDR", "SIR", "SAR", "ISR")
WINDOW_SECONDS = 1.0


def native_estimator(method, model=None, high_band=None):
  """(mixture, rate, vocals, accompaniment) [samples, channels] -> (vocals, accompaniment) estimates.

  high_band: the model's rule for the band above its Nyquist (tf_drnn.fullband; None: the default)."""
  if method == "model":
    from tf_drnn import Separator
    separator = Separator(model, high_band=high_band)
    return lambda mixture, rate, vocals, accompaniment: separator.separate_pair(mixture, rate)
  if method == "mixture":
    return lambda mixture, rate, vocals, accompaniment: (mixture.copy(), mixture.copy())
  if method in ("oracle_irm", "oracle_ibm"):
    from tf_drnn.baselines import oracle_separator

    def oracle(mixture, rate, vocals, accompaniment):  # Per channel, the project's STFT at the song's rate.
      pairs = [oracle_separator(mixture[:, c], vocals[:, c], accompaniment[:, c], method.split("_")[1])
               for c in range(mixture.shape[1])]
      return tuple(np.stack([p[i] for p in pairs], axis=1) for i in range(2))
    return oracle
  raise UserError(f"--method={method} does not apply to multitrack datasets: choose one of {', '.join(METHODS)}")


def _median(values):
  values = np.asarray(values, np.float64)
  values = values[~np.isnan(values)]
  return float(np.median(values)) if len(values) else float("nan")


def mixture_sdr(reference, mixture):
  """BSS Eval v4 images SDR of the mixture as the estimate: 10 log10(|s|^2 / |x - s|^2), dB."""
  from tf_drnn.bss_eval import _db
  reference, mixture = np.asarray(reference, np.float64), np.asarray(mixture, np.float64)
  return float(_db(np.sum(reference ** 2), np.sum((mixture - reference) ** 2)))


def score_track(name, mixture, vocals, accompaniment, estimates, rate, window_seconds=WINDOW_SECONDS,
                whole_v3=False):
  """One track's row: per source, medians over windows and whole-track scores (with NSDR).

  All signals float [samples, channels] at `rate`; estimates = (vocals, accompaniment).
  whole_v3: whole-track scores by BSS Eval v3 sources (mono signals; ISR is then NaN).
  """
  from tf_drnn.bss_eval import bss_eval_v4
  references = np.stack([vocals, accompaniment])
  estimated = np.stack([np.asarray(e, np.float32).reshape(references.shape[1:]) for e in estimates])
  window = int(round(window_seconds * rate))
  framewise, whole = bss_eval_v4(references, estimated, window, window, whole=True)
  if whole_v3:
    whole = _whole_v3(references, estimated, mixture)
  row = {"name": name, "num_samples": int(len(mixture)), "sample_rate": int(rate),
         "channels": int(mixture.shape[1]), "seconds": len(mixture) / rate}
  for i, source in enumerate(SOURCES):
    medians = {m: _median(framewise[k][i]) for k, m in enumerate(("SDR", "ISR", "SIR", "SAR"))}
    track = {m: float(whole[k][i]) for k, m in enumerate(("SDR", "ISR", "SIR", "SAR"))}
    track["mixture_SDR"] = whole[4][i] if whole_v3 else mixture_sdr(references[i], mixture)
    track["NSDR"] = track["SDR"] - track["mixture_SDR"]
    row[source] = {**{m: medians[m] for m in METRICS},
                   "windows": int(np.sum(~np.isnan(framewise[0][i]))), "track": track}
  return row


def _whole_v3(references, estimates, mixture):
  """(sdr, isr (NaN), sir, sar, mixture sdr), each [sources]: BSS Eval v3 sources of mono
  signals [sources, samples, 1] over the whole track; NaN where a reference or estimate is silent."""
  from tf_drnn import metrics
  references, estimates = references[..., 0], estimates[..., 0]
  nan = np.full(len(references), np.nan)
  if metrics.unscorable(tuple(references)) or metrics.unscorable(tuple(estimates), what="estimate"):
    return nan, nan, nan, nan, nan
  score = metrics.score_clip("", *references, *estimates, np.asarray(mixture)[:, 0])
  return tuple(np.asarray(v, np.float64) for v in (score.sdr, nan, score.sir, score.sar, score.mixture_sdr))


def scored_rows(rows):
  """The rows whose whole-track scores exist for every source (a silent or too short song has none)."""
  return [row for row in rows if all(np.isfinite(row[source]["track"]["SDR"]) for source in SOURCES)]


def aggregate(rows):
  """({source: museval medians over tracks}, {source: G-metrics, duration-weighted; mean_SDR and
  median_SDR: the mean and median over songs of whole-track SDR}), over the scored rows only."""
  scored = scored_rows(rows)
  weights = np.asarray([row["seconds"] for row in scored], np.float64)
  weights = weights / weights.sum() if len(scored) else weights
  museval, global_metrics = {}, {}
  for source in SOURCES:
    museval[source] = {m: _median([row[source][m] for row in rows]) for m in METRICS}
    track = {key: [row[source]["track"][key] for row in scored] for key in ("NSDR", "SIR", "SAR", "SDR")}
    mean = {key: float(np.dot(weights, values)) if scored else float("nan") for key, values in track.items()}
    global_metrics[source] = {"GNSDR": mean["NSDR"], "GSIR": mean["SIR"], "GSAR": mean["SAR"], "GSDR": mean["SDR"],
                              "mean_SDR": float(np.mean(track["SDR"])) if scored else float("nan"),
                              "median_SDR": _median(track["SDR"])}
  return museval, global_metrics


def select_songs(dataset, split, clips=(), max_clips=0):
  """The songs to score: named `clips` (any split) or a whole split; `max_clips` > 0 keeps that
  many, spread evenly over the sorted list."""
  if clips:
    songs = {s.name: s for split_name in dataset.SPLITS for s in dataset.songs(split_name)}
    unknown = [c for c in clips if c not in songs]
    if unknown:
      raise UserError(f"unknown song(s) {', '.join(map(repr, unknown))} in {dataset.root}")
    selected = [songs[c] for c in dict.fromkeys(clips)]
  else:
    selected = dataset.songs(split)
  if not selected:
    raise UserError(f"{dataset.root}: no songs to evaluate in split {split!r}")
  from tf_drnn.scoring import spread_evenly
  return spread_evenly(selected, max_clips)


def _model_name(model):
  """How a --model is recorded: a file's absolute path, a bundled model's name, "bundled" for the default."""
  if not model:
    return "bundled"
  return os.path.abspath(model) if os.path.exists(model) else model


def _clean(value):
  """NaN (a score without a non-silent window) -> None, null in the JSON file."""
  if isinstance(value, dict):
    return {k: _clean(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_clean(v) for v in value]
  return None if isinstance(value, float) and np.isnan(value) else value


def markdown_table(document):
  lines = [f"# tf-drnn-evaluate: {document['method']} on {document['dataset']}", ""]
  what = [f"method `{document['method']}`"] + ([f"model `{document['model']}`"] if document.get("model") else [])
  lines += [", ".join(what + [f"songs: {document['selection']}"]) + ".", "",
            f"{document['num_tracks']} songs, {document['total_seconds']:.1f} s, at their own rate"
            + (", mono downmix" if document.get("mono") else " and channels")
            + ". museval: BSS Eval v4, 1-s windows, median over windows, median over songs. G-metrics: whole-song "
            + ("BSS Eval v3" if document.get("mono") else "BSS Eval v4")
            + ", NSDR against the song's mixture, duration-weighted means; mean SDR: over songs; dB.", ""]
  lines += ["| source | SDR | SIR | SAR | ISR | GNSDR | GSIR | GSAR | GSDR | mean SDR |", "|---|" + "---:|" * 9]
  f = lambda v: "—" if v is None else f"{v:.2f}"
  for source in SOURCES:
    m, g = document["museval"][source], document["global"][source]
    lines.append(f"| {source} | " + " | ".join(f(m[k]) for k in METRICS) + " | "
                 + " | ".join(f(g[k]) for k in ("GNSDR", "GSIR", "GSAR", "GSDR", "mean_SDR")) + " |")
  lines += ["", "## Per song (medians over 1-s windows; NSDR of the whole song)", "",
            "| song | seconds | vocal SDR | vocal SIR | vocal SAR | vocal NSDR | accomp. SDR | accomp. NSDR |",
            "|---|" + "---:|" * 7]
  for row in document["tracks"]:
    v, a = row["vocals"], row["accompaniment"]
    lines.append(f"| {row['name']} | {row['seconds']:.1f} | {f(v['SDR'])} | {f(v['SIR'])} | {f(v['SAR'])} | "
                 f"{f(v['track']['NSDR'])} | {f(a['SDR'])} | {f(a['track']['NSDR'])} |")
  if document["skipped"]:
    lines += ["", "## Skipped songs", ""] + [f"- {s['folder']}: {s['problem']}" for s in document["skipped"]]
  return "\n".join(lines) + "\n"


def check_multitrack_options(o):
  """The multitrack rules of :func:`tf_drnn.evaluate.check_options` (o: EvaluateOptions)."""
  given = o.mir1k_only_given()
  if given:
    raise UserError(f"--{given[0]} applies to --dataset=mir1k only, not {o.dataset}")
  if not o.data_dir:
    raise UserError(f"--data_dir is required (the {o.dataset} collection's folder)")
  if o.method not in METHODS:
    raise UserError(f"--method={o.method} does not apply to --dataset={o.dataset}: choose one of "
                    f"{', '.join(METHODS)}")
  if o.model and o.method != "model":
    raise UserError(f"--model applies to --method=model only, not {o.method}")
  if o.high_band and o.method != "model":
    raise UserError(f"--high_band applies to --method=model only, not {o.method}")


def evaluate_songs(o):
  """Scores the songs of a multitrack collection (checked EvaluateOptions, dataset musdb18hq or
  stems); returns the report document. mono: each song's mono downmix (channel mean), whole-track
  scores by BSS Eval v3; high_band: --method=model's rule for the band above the model's Nyquist."""
  from tf_drnn.data import load_dataset
  dataset = load_dataset(o.dataset, o.data_dir, o.dev_clips)
  split = o.split or "test"
  songs = select_songs(dataset, split, list(o.clips or ()), o.max_clips)
  estimate = native_estimator(o.method, o.model, o.high_band)
  started = time.time()
  rows = _score_songs(dataset, songs, estimate, o.mono, o.progress)
  document = {
      "method": o.method, "model": _model_name(o.model) if o.method == "model" else None,
      "dataset": o.dataset, "data_dir": os.path.abspath(o.data_dir), "split": None if o.clips else split,
      "selection": ", ".join(s.name for s in songs) if o.clips else f"split {split}"
                   + (f" (max_clips {o.max_clips})" if o.max_clips else ""),
      "max_clips": o.max_clips, "mono": bool(o.mono), "high_band": o.high_band if o.method == "model" else None,
      "sample_rate": "native (each song's own rate" + (", mono downmix)" if o.mono else " and channels)"),
      "mixing": "each song's mixture as released (mixture file, else the sum of its stems)",
      "metrics": "museval: BSS Eval v4 images (512-tap time-invariant filters), 1-s windows, median over "
                 "windows per song, median over songs; global: G-metrics of whole-song "
                 + ("BSS Eval v3 sources" if o.mono else "BSS Eval v4 (= v3 images)")
                 + ", NSDR = SDR(estimate) - SDR(mixture), weighted by song duration; mean_SDR and "
                 "median_SDR: over songs, of whole-song SDR",
  }
  museval, global_metrics = aggregate(rows)
  document.update({
      "num_tracks": len(rows), "total_seconds": float(sum(r["seconds"] for r in rows)),
      "museval": museval, "global": global_metrics,
      "skipped": [{"folder": folder, "problem": problem} for folder, problem in dataset.skipped]
                 + [{"folder": row["name"], "problem": "not scored: a silent or too short source or estimate"}
                    for row in rows if row not in scored_rows(rows)],
      "tracks": rows, "elapsed_seconds": time.time() - started})
  return _clean(document)


def _score_songs(dataset, songs, estimate, mono, progress):
  """The scored row of each song (:func:`score_track`), with a progress bar on stderr."""
  rows = []
  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=len(songs), desc="songs", unit="song", file=sys.stderr)
  try:
    for song in songs:
      mixture, vocals, accompaniment, rate = dataset.track(song).native()
      if mono:
        mixture, vocals, accompaniment = (x.mean(axis=1, keepdims=True) for x in (mixture, vocals, accompaniment))
      estimates = estimate(mixture, rate, vocals, accompaniment)
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows.append(score_track(song.name, mixture, vocals, accompaniment, estimates, rate, whole_v3=mono))
      if bar is not None:
        bar.update(1)
  finally:
    if bar is not None:
      bar.close()
  return rows
