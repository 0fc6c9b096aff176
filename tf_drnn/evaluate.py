"""Scores a separator on a dataset split: per-clip BSS Eval v3 and G-metrics; `tf-drnn-evaluate`.

The same code ranks checkpoints during training (dev split, :func:`evaluate_tracks`) and backs
the `tf-drnn-evaluate` command, which scores a trained model or a reference method
(:mod:`tf_drnn.baselines`: the mixture itself, RPCA, oracle masks, the paper authors' own
separations) on the paper's 0 dB mixtures and writes per-clip scores and global metrics
(JSON, plus a Markdown table beside it).

    tf-drnn-evaluate --data_dir=MIR-1K --split=test --model=runs/drnn2 --output=results.json
    tf-drnn-evaluate --data_dir=MIR-1K --method=oracle_irm --workers=4
    tf-drnn-evaluate --data_dir=MIR-1K --method=authors        # the 6 clips they released

Separation with TensorFlow stays in the main process; BSS Eval (the slow part) runs in
`--workers` processes. NumPy-only methods (mixture, rpca, oracles, authors) separate in the
workers too.
"""
import functools
import json
import os
import sys
import time

import numpy as np

from tf_drnn import metrics
from tf_drnn.atomic import write_text
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.data.base import Track
from tf_drnn.errors import UserError
from tf_drnn.levels import db_to_gain

from tf_drnn.scoring import (AuthorsEstimator, BlindEstimator, OracleEstimator,  # noqa: F401  (the command's parts)
                             available_cpus, evaluate_tracks, markdown_path, mixtures, score_estimates,
                             spread_evenly)

METHODS = ("model", "tflite", "mixture", "rpca", "oracle_irm", "oracle_ibm", "authors")
AUTHORS_CLIPS = "authors"  # --clips=authors: the clips the paper's authors released separations of.
# --voice_db and --gain_db, dB. Each source is at unit RMS before them, so the louder one ends up
# gain_db + max(voice_db, 0) dB over unit RMS; MAX_LEVEL_DB keeps its peaks well under the
# separator's limit (tf_drnn.audio.MAX_PEAK, +60 dB).
VOICE_DB_LIMIT = 30.0  # |--voice_db|
MIN_GAIN_DB = -60.0
MAX_LEVEL_DB = 30.0  # --gain_db + max(--voice_db, 0), and so --gain_db itself



# --- the command -------------------------------------------------------------------------------

def model_separate_fn(model_path):
  """mixture [samples] -> (vocals, accompaniment) with a trained model (None: the bundled one)."""
  from tf_drnn import Separator
  separator = Separator(model_path)
  rate = separator.config.sample_rate  # the model's own rate: no resampling

  def separate(mixture):
    out = separator.separate(mixture, rate)
    return out["vocals"], out["accompaniment"]
  return separate


def check_levels(gain_db, voice_db):
  """Raises UserError unless --gain_db and --voice_db (dB) are finite and within the stated ranges:
  |voice_db| <= VOICE_DB_LIMIT, gain_db >= MIN_GAIN_DB, gain_db + max(voice_db, 0) <= MAX_LEVEL_DB."""
  for name, value in (("voice_db", voice_db), ("gain_db", gain_db)):
    if not np.isfinite(value):
      raise UserError(f"--{name} must be a finite number of dB, got {value}")
  if abs(voice_db) > VOICE_DB_LIMIT:
    raise UserError(f"--voice_db={voice_db:g} is outside the supported {-VOICE_DB_LIMIT:g} ... "
                    f"+{VOICE_DB_LIMIT:g} dB (voice-to-accompaniment ratio)")
  if not MIN_GAIN_DB <= gain_db <= MAX_LEVEL_DB:
    raise UserError(f"--gain_db={gain_db:g} is outside the supported {MIN_GAIN_DB:g} ... +{MAX_LEVEL_DB:g} dB")
  if gain_db + max(voice_db, 0.0) > MAX_LEVEL_DB:
    raise UserError(f"--gain_db={gain_db:g} with --voice_db={voice_db:g} puts the voice "
                    f"{gain_db + voice_db:+g} dB over unit RMS: keep --gain_db + --voice_db at or under "
                    f"+{MAX_LEVEL_DB:g} dB")


def make_estimator(method, model_path=None, authors_dir=None, authors_mask="softmask", rpca_hop=0):
  """(estimator, runs_in_workers) for a --method."""
  from tf_drnn import baselines
  if method == "model":
    return BlindEstimator(model_separate_fn(model_path)), False
  if method == "tflite":
    from tf_drnn.litert import tflite_separate_fn
    return BlindEstimator(tflite_separate_fn(model_path)), False
  if method == "mixture":
    return BlindEstimator(baselines.mixture_separator), True
  if method == "rpca":
    return BlindEstimator(functools.partial(baselines.rpca_separator, hop_length=rpca_hop or None)), True
  if method in ("oracle_irm", "oracle_ibm"):
    return OracleEstimator(method.split("_", 1)[1]), True
  if method == "authors":
    baselines.AuthorsResults(authors_dir, authors_mask)  # Fails early on a bad directory.
    return AuthorsEstimator(os.fspath(authors_dir), authors_mask), True
  raise UserError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")


def select_tracks(dataset, split=None, clips=None, max_clips=0, only=None):
  """Tracks to score: named `clips` (any split) or a whole `split`, optionally within `only`.

  `max_clips` > 0 keeps that many, spread evenly over the sorted list (every singer stays in).
  """
  all_names = [name for s in dataset.SPLITS for name in dataset.clip_names(s)]
  if clips:
    unknown = [c for c in clips if c not in all_names]
    if unknown:
      raise UserError(f"unknown clip(s) {', '.join(unknown)} in {dataset.wav_dir}")
    names = list(dict.fromkeys(clips))
  else:
    names = dataset.clip_names(split)
  if only is not None:
    names = [n for n in names if n in only]
  if not names:
    where = f" in split {split!r}" if not clips else ""
    among = f" among the {len(only)} with the authors' separations ({', '.join(only)})" if only is not None else ""
    raise UserError(f"no clips selected{where}{among}")
  names = spread_evenly(names, max_clips)
  return [Track(n, functools.partial(dataset.load_clip, n)) for n in names]


def report(scores, result, info):
  """The JSON document: run info, global metrics, per-clip scores and the skipped clips.

  num_clips, total_samples and the G-metrics cover the scored clips; `skipped_clips` lists the
  others with the reason. G-metrics of no scored clip are null.
  """
  scored = [s for s in scores if not s.skipped]
  total = sum(s.num_samples for s in scored)
  rate = info.get("sample_rate", DEFAULT_AUDIO_CONFIG.sample_rate)
  result = {source: {k: (None if v != v else v) for k, v in values.items()} for source, values in result.items()}
  return {**info, "num_clips": len(scored), "total_samples": total, "total_seconds": total / rate,
          "global": result, "clips": [s.as_dict() for s in scored],
          "skipped_clips": [s.as_dict() for s in scores if s.skipped]}


def markdown_table(document):
  """The Markdown summary of a :func:`report` document."""
  g = document["global"]
  lines = [f"# tf-drnn-evaluate: {document['method']}", ""]
  what = [f"method `{document['method']}`"]
  if document.get("model"):
    what.append(f"model `{document['model']}`")
  what.append(f"clips: {document['selection']}")
  if document.get("rpca"):
    what.append(f"RPCA STFT: {document['rpca']['stft']}")
  if document.get("gain_db"):
    what.append(f"mixtures at {document['gain_db']:+g} dB")
  lines.append(", ".join(what) + ".")
  voice_db = document.get("voice_db", 0.0)
  ratio = f"voice {voice_db:+g} dB over the accompaniment" if voice_db else "0 dB mixtures"
  lines += ["", f"{document['num_clips']} clips, {document['total_seconds']:.1f} s in total. "
            f"BSS Eval v3 (mir_eval), {ratio}; G-metrics are clip-length-weighted means, dB "
            "(GNSDR = GSDR minus the mixture's own SDR).", ""]
  skipped = document.get("skipped_clips", [])
  if skipped:
    lines += [f"{len(skipped)} clip(s) skipped, not in the scores: "
              + "; ".join(f"{row['name']}: {row['skipped']}" for row in skipped) + ".", ""]
  number = lambda v: "—" if v is None else f"{v:.2f}"
  lines += ["| source | GNSDR | GSIR | GSAR | GSDR |", "|---|---:|---:|---:|---:|"]
  for source in metrics.SOURCES:
    m = g[source]
    lines.append(f"| {source} | {number(m['GNSDR'])} | {number(m['GSIR'])} | {number(m['GSAR'])} | "
                 f"{number(m['GSDR'])} |")
  lines += ["", "## Per clip", "", "| clip | seconds | vocal NSDR | vocal SIR | vocal SAR | "
            "accomp. NSDR | accomp. SIR | accomp. SAR |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
  rate = document.get("sample_rate", DEFAULT_AUDIO_CONFIG.sample_rate)
  for row in document["clips"]:
    v, a = row["vocals"], row["accompaniment"]
    lines.append(f"| {row['name']} | {row['num_samples'] / rate:.2f} | {v['NSDR']:.2f} | {v['SIR']:.2f} | "
                 f"{v['SAR']:.2f} | {a['NSDR']:.2f} | {a['SIR']:.2f} | {a['SAR']:.2f} |")
  return "\n".join(lines) + "\n"


def evaluate_command(data_dir, method="model", model=None, split="test", clips=(), gain_db=0.0,
                     max_clips=0, workers=0, output="results.json", authors_dir=None,
                     authors_mask="softmask", dev_clips=None, progress=True, split_given=True, rpca_hop=0,
                     voice_db=0.0):
  """Everything `tf-drnn-evaluate` does; returns the JSON document it wrote."""
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG
  from tf_drnn.data.mir1k import DEFAULT_DEV_CLIPS, MIR1K
  if not data_dir:
    raise UserError("--data_dir is required (the MIR-1K folder holding Wavfile/)")
  if method not in METHODS:
    raise UserError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
  if model and method not in ("model", "tflite"):
    raise UserError(f"--model applies to --method=model or tflite only, not {method}")
  if method == "tflite":
    if not model or not os.path.isfile(model):
      raise UserError(f"{model or '--model'}: --method=tflite needs --model=FILE.tflite (an existing file "
                      "written by tf-drnn-export, with its sidecar)")
  check_levels(gain_db, voice_db)
  if gain_db != 0 and method == "authors":
    raise UserError("--gain_db does not apply to --method=authors (stored separations of 0 dB mixtures)")
  if voice_db != 0 and method == "authors":
    raise UserError("--voice_db does not apply to --method=authors (stored separations of 0 dB mixtures)")
  if rpca_hop and method != "rpca":
    raise UserError(f"--rpca_hop applies to --method=rpca only, not {method}")
  if rpca_hop < 0 or (rpca_hop and DEFAULT_AUDIO_CONFIG.n_fft % rpca_hop):
    raise UserError(f"--rpca_hop must divide the window length {DEFAULT_AUDIO_CONFIG.n_fft}, got {rpca_hop}")
  if max_clips < 0:
    raise UserError("--max_clips must be >= 0")
  if not output:
    raise UserError("--output is required")
  from tf_drnn.atomic import check_output_file
  check_output_file(output)  # Before the evaluation, not after it.
  check_output_file(markdown_path(output))
  dataset = MIR1K(data_dir, dev_clips=dev_clips or DEFAULT_DEV_CLIPS)
  clips = list(clips or ())
  authors = None
  if method == "authors" or AUTHORS_CLIPS in clips:
    from tf_drnn.baselines import AuthorsResults
    authors_dir = authors_dir or os.path.join(os.fspath(data_dir), "authors_demo_results")
    authors = AuthorsResults(authors_dir, authors_mask)
  if AUTHORS_CLIPS in clips:
    clips = [c for c in clips if c != AUTHORS_CLIPS] + list(authors.clips)
  only = None
  if method == "authors":
    only = authors.clips
    if not clips and not split_given:
      clips = list(authors.clips)  # Their clips span the dev and test splits.
  tracks = select_tracks(dataset, split, clips, max_clips, only)
  selection = (f"{', '.join(t.name for t in tracks)}" if clips else f"split {split}") + (
      f" (max_clips {max_clips})" if max_clips else "")
  estimator, in_workers = make_estimator(method, model, authors_dir, authors_mask, rpca_hop)
  started = time.time()
  scores, result = score_estimates(estimator, tracks, gain=db_to_gain(gain_db), progress=progress,
                                   workers=workers, separate_in_workers=in_workers, voice_db=voice_db)
  info = {
      "method": method,
      "model": (os.path.abspath(model) if model else "bundled") if method in ("model", "tflite") else None,
      "data_dir": os.path.abspath(data_dir), "split": None if clips else split,
      "selection": selection, "max_clips": max_clips, "gain_db": gain_db, "voice_db": voice_db,
      "sample_rate": DEFAULT_AUDIO_CONFIG.sample_rate, "audio_config": DEFAULT_AUDIO_CONFIG.as_dict(),
      "mixing": (f"{voice_db:+g} dB: vocals and accompaniment each scaled to unit RMS, the vocals then "
                 f"by {voice_db:+g} dB, summed, unshifted" if voice_db else
                 "0 dB: vocals and accompaniment each scaled to unit RMS, summed, unshifted"),
      "metrics": "BSS Eval v3 (mir_eval.separation.bss_eval_sources, no permutation); "
                 "NSDR = SDR(estimate) - SDR(mixture); G-metrics weighted by clip length",
      "elapsed_seconds": time.time() - started,
  }
  if method == "rpca":
    hop = rpca_hop or DEFAULT_AUDIO_CONFIG.hop_length
    info["rpca"] = {"k": 1.0, "lambda": "k / sqrt(max(bins, frames))", "mask": "binary |S| > 1 * |L|",
                    "stft": f"sine window {DEFAULT_AUDIO_CONFIG.n_fft}, hop {hop}"
                            + ("" if not rpca_hop else " (SciPy STFT)")}
  if method == "authors":
    info["authors"] = {"directory": os.path.abspath(authors.directory), "mask": authors_mask,
                       "length": "estimates zero-padded at the end (or trimmed) to the clip length"}
  document = report(scores, result, info)
  write_text(output, json.dumps(document, indent=2) + "\n")
  write_text(markdown_path(output), markdown_table(document))
  return document


def define_flags():
  from absl import flags
  from tf_drnn.models import bundled_names_help
  flags.DEFINE_string("model", None, "Trained model: a .keras file or a training model_dir holding "
                      f"model.keras, or a bundled model's name ({bundled_names_help()}); with --method=tflite, "
                      "a .tflite file from tf-drnn-export, streamed hop by hop through its separate_pcm signature "
                      "under LiteRT.")
  flags.DEFINE_string("data_dir", None, "MIR-1K root (the folder holding Wavfile/), or the --dataset's folder.")
  from tf_drnn.data import DATASETS
  flags.DEFINE_enum("dataset", "mir1k", list(DATASETS), "Dataset layout. mir1k: 0 dB remixes at 16 kHz, "
                    "BSS Eval v3. musdb18hq, stems: each song as released, at its own rate and channels, "
                    "BSS Eval v4 in 1-s windows (museval) and whole-song G-metrics (tf_drnn.evaluate_multitrack).")
  flags.DEFINE_enum("split", "test", ["train", "dev", "test"], "Dataset split to score.")
  flags.DEFINE_list("clips", [], "Score these clips (any split) instead of --split; "
                    f"'{AUTHORS_CLIPS}' = the clips the paper's authors released separations of.")
  flags.DEFINE_enum("method", "model", METHODS,
                    "model: a trained DRNN; mixture: the mixture as both estimates (NSDR 0); "
                    "rpca: robust PCA (Huang et al. 2012); oracle_irm / oracle_ibm: ideal ratio / binary "
                    "mask from the true sources; authors: the ISMIR 2014 authors' own separations "
                    "(their clips only).")
  flags.DEFINE_float("gain_db", 0.0, "Level change applied to each 0 dB mixture before separation "
                     "(estimates are scaled back), e.g. -40 to check that quiet input separates the same. "
                     f"{MIN_GAIN_DB:g} ... +{MAX_LEVEL_DB:g} dB, and --gain_db + --voice_db at most "
                     f"+{MAX_LEVEL_DB:g} dB. MIR-1K only.")
  flags.DEFINE_float("voice_db", 0.0, "Voice-to-accompaniment ratio of the test mixtures in dB (both "
                     "at unit RMS first, then the voice scaled; e.g. -5, 0, +5). NSDR is relative to that "
                     f"mixture; --gain_db then scales the whole mixture. At most {VOICE_DB_LIMIT:g} dB either "
                     "way. MIR-1K only (multitrack songs are scored as mixed).")
  flags.DEFINE_integer("max_clips", 0, "Score at most this many clips, spread evenly over the list (0: all).")
  flags.DEFINE_integer("workers", 0, "Processes computing BSS Eval (0: one per CPU but one; 1: no "
                       "subprocesses). Model separation stays in the main process.")
  flags.DEFINE_string("output", "results.json", "Per-clip and global scores (JSON); a Markdown table "
                      "goes beside it (same name, .md).")
  flags.DEFINE_string("authors_dir", None, "The authors' separations (default: DATA_DIR/authors_demo_results).")
  flags.DEFINE_enum("authors_mask", "softmask", ["softmask", "bmask", "nomask"],
                    "Which of the authors' outputs to score.")
  flags.DEFINE_list("dev_clips", ["abjones_5_08", "abjones_5_09", "amy_9_08", "amy_9_09"],
                    "Training-singer clips (or song prefixes) that form the dev split.")
  flags.DEFINE_integer("rpca_hop", 0, "STFT hop for --method=rpca (0: the project's STFT, hop "
                       "n_fft / 2 = 512; 256: the framing of Huang et al. 2012).")
  flags.DEFINE_bool("progress", True, "Show a progress bar.")
  from tf_drnn.fullband import HIGH_BAND_RULES
  flags.DEFINE_enum("high_band", None, list(HIGH_BAND_RULES), "Multitrack datasets, --method=model: how the band "
                    "above the model's 8 kHz is split (default: tf-drnn-separate's default rule).")
  flags.DEFINE_bool("mono", False, "Multitrack datasets: separate and score each song's mono downmix, whole-song "
                    "scores by BSS Eval v3 (the produced-music figures of the README: mean vocal SDR over songs).")


def main(argv):
  from absl import flags
  from tf_drnn.cli_util import run_guarded
  del argv  # run_app refuses stray arguments
  f = flags.FLAGS
  if f.dataset != "mir1k":
    return _main_multitrack(f)
  if f.mono or f.high_band:
    run_guarded(lambda: _refuse_multitrack_only("mono" if f.mono else "high_band"))
  document = run_guarded(lambda: evaluate_command(
      f.data_dir, method=f.method, model=f.model, split=f.split, clips=f.clips, gain_db=f.gain_db,
      max_clips=f.max_clips, workers=f.workers, output=f.output, authors_dir=f.authors_dir,
      authors_mask=f.authors_mask, dev_clips=tuple(f.dev_clips), progress=f.progress,
      split_given=f["split"].present, rpca_hop=f.rpca_hop, voice_db=f.voice_db))
  for row in document["skipped_clips"]:
    print(f"note: {row['name']} skipped: {row['skipped']}", file=sys.stderr)
  summary = {source: {k: None if v is None else round(v, 2) for k, v in values.items()}
             for source, values in document["global"].items()}
  print(json.dumps({"method": document["method"], "num_clips": document["num_clips"], "global": summary}))
  print(f"wrote {f.output} and {markdown_path(f.output)}", file=sys.stderr)


def _refuse_multitrack_only(flag):
  raise UserError(f"--{flag} applies to --dataset=musdb18hq or stems (MIR-1K clips are mono, at the model's rate)")


def _main_multitrack(f):
  """main for --dataset=musdb18hq|stems (tf_drnn.evaluate_multitrack)."""
  from tf_drnn.cli_util import run_guarded
  from tf_drnn.evaluate_multitrack import evaluate_multitrack_command
  mir1k_only = [name for name in ("gain_db", "voice_db", "authors_dir", "authors_mask", "rpca_hop")
                if f[name].present]
  document = run_guarded(lambda: evaluate_multitrack_command(
      f.dataset, f.data_dir, method=f.method, model=f.model, split=f.split, clips=f.clips,
      max_clips=f.max_clips, output=f.output, dev_clips=tuple(f.dev_clips) if f["dev_clips"].present else None,
      progress=f.progress, mir1k_only=mir1k_only, mono=f.mono, high_band=f.high_band))
  print(json.dumps({"method": document["method"], "dataset": f.dataset, "num_tracks": document["num_tracks"],
                    "museval": document["museval"], "global": document["global"]}))
  print(f"wrote {f.output} and {markdown_path(f.output)}", file=sys.stderr)


def run():
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main)


if __name__ == "__main__":
  run()
