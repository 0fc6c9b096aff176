"""`tf-drnn-evaluate`: scores a separator on a dataset split, for every dataset layout.

One options object (:class:`EvaluateOptions`, the command's flags), one check of them
(:func:`check_options`), one report writer (:func:`write_report`: JSON, and a Markdown table
beside it). MIR-1K is scored here: per-clip BSS Eval v3 and G-metrics (the scoring that ranks
checkpoints during training, :func:`tf_drnn.scoring.evaluate_tracks`); the multitrack layouts
(musdb18hq, stems) in :mod:`tf_drnn.evaluate_multitrack`. On MIR-1K it scores a trained model
or a reference method (:mod:`tf_drnn.baselines`: the mixture itself, RPCA, oracle masks, the
paper authors' own separations) on the paper's 0 dB mixtures.

    tf-drnn-evaluate --data_dir=MIR-1K --split=test --model=runs/drnn2 --output=results.json
    tf-drnn-evaluate --data_dir=MIR-1K --method=oracle_irm --workers=4
    tf-drnn-evaluate --data_dir=MIR-1K --method=authors        # the 6 clips they released

Separation with TensorFlow stays in the main process; BSS Eval (the slow part) runs in
`--workers` processes. NumPy-only methods (mixture, rpca, oracles, authors) separate in the
workers too.
"""
import dataclasses
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
from tf_drnn.scoring import (AuthorsEstimator, BlindEstimator, OracleEstimator, markdown_path, score_estimates,
                             spread_evenly)

METHODS = ("model", "tflite", "mixture", "rpca", "oracle_irm", "oracle_ibm", "authors")
AUTHORS_CLIPS = "authors"  # --clips=authors: the clips the paper's authors released separations of.
# --voice_db and --gain_db, dB. Each source is at unit RMS before them, so the louder one ends up
# gain_db + max(voice_db, 0) dB over unit RMS; MAX_LEVEL_DB keeps its peaks well under the
# separator's limit (tf_drnn.audio.MAX_PEAK, +60 dB).
VOICE_DB_LIMIT = 30.0  # |--voice_db|
MIN_GAIN_DB = -60.0
MAX_LEVEL_DB = 30.0  # --gain_db + max(--voice_db, 0), and so --gain_db itself


# --- the options and the checks --------------------------------------------------------------

@dataclasses.dataclass
class EvaluateOptions:
  """Everything `tf-drnn-evaluate` does depends on; its flags map one to one onto these.

  split None: the test split, or with --method=authors the clips they released (both splits).
  dev_clips (): the dataset's own dev split. gain_db, voice_db, authors_dir, authors_mask and
  rpca_hop apply to MIR-1K only; mono and high_band to the multitrack datasets only.
  """
  data_dir: str
  dataset: str = "mir1k"
  method: str = "model"
  model: str = None
  split: str = None
  clips: tuple = ()
  max_clips: int = 0
  output: str = "results.json"
  dev_clips: tuple = ()
  progress: bool = True
  workers: int = 0
  gain_db: float = 0.0
  voice_db: float = 0.0
  authors_dir: str = None
  authors_mask: str = "softmask"
  rpca_hop: int = 0
  mono: bool = False
  high_band: str = None

  @classmethod
  def from_flags(cls, values):
    """The options of parsed absl flags (`values`: flags.FLAGS)."""
    fields = {f.name: values[f.name].value for f in dataclasses.fields(cls)}
    fields.update(split=values.split if values["split"].present else None, clips=tuple(values.clips),
                  dev_clips=tuple(values.dev_clips))
    return cls(**fields)

  @property
  def multitrack(self):
    return self.dataset != "mir1k"

  def mir1k_only_given(self):
    """The MIR-1K-only options set to something other than their defaults, by flag name."""
    defaults = EvaluateOptions(data_dir="")
    return [name for name in MIR1K_ONLY if getattr(self, name) != getattr(defaults, name)]


MIR1K_ONLY = ("gain_db", "voice_db", "authors_dir", "authors_mask", "rpca_hop")


def check_options(o):
  """Raises a UserError naming the first option that cannot work, before any data is read:
  what every dataset shares, then the MIR-1K or multitrack rules, then the output files."""
  from tf_drnn.atomic import check_output_file
  if o.multitrack:
    from tf_drnn.evaluate_multitrack import check_multitrack_options
    check_multitrack_options(o)
  else:
    _check_mir1k_options(o)
  if o.max_clips < 0:
    raise UserError("--max_clips must be >= 0")
  if not o.output:
    raise UserError("--output is required")
  check_output_file(o.output)  # Before the evaluation, not after it.
  check_output_file(markdown_path(o.output))


def _check_mir1k_options(o):
  if o.mono or o.high_band:
    raise UserError(f"--{'mono' if o.mono else 'high_band'} applies to --dataset=musdb18hq or stems (MIR-1K "
                    "clips are mono, at the model's rate)")
  if not o.data_dir:
    raise UserError("--data_dir is required (the MIR-1K folder holding Wavfile/)")
  if o.method not in METHODS:
    raise UserError(f"unknown method {o.method!r}: choose one of {', '.join(METHODS)}")
  if o.model and o.method not in ("model", "tflite"):
    raise UserError(f"--model applies to --method=model or tflite only, not {o.method}")
  if o.method == "tflite" and (not o.model or not os.path.isfile(o.model)):
    raise UserError(f"{o.model or '--model'}: --method=tflite needs --model=FILE.tflite (an existing file "
                    "written by tf-drnn-export, with its sidecar)")
  check_levels(o.gain_db, o.voice_db)
  for name in ("gain_db", "voice_db"):
    if getattr(o, name) != 0 and o.method == "authors":
      raise UserError(f"--{name} does not apply to --method=authors (stored separations of 0 dB mixtures)")
  if o.rpca_hop and o.method != "rpca":
    raise UserError(f"--rpca_hop applies to --method=rpca only, not {o.method}")
  if o.rpca_hop < 0 or (o.rpca_hop and DEFAULT_AUDIO_CONFIG.n_fft % o.rpca_hop):
    raise UserError(f"--rpca_hop must divide the window length {DEFAULT_AUDIO_CONFIG.n_fft}, got {o.rpca_hop}")


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


# --- the command -------------------------------------------------------------------------------

def evaluate_command(options):
  """Everything `tf-drnn-evaluate` does for :class:`EvaluateOptions`; returns the JSON document it
  wrote (and wrote its Markdown table beside it)."""
  check_options(options)
  if options.multitrack:
    from tf_drnn.evaluate_multitrack import evaluate_songs
    document = evaluate_songs(options)
  else:
    document = evaluate_clips(options)
  write_report(options.output, document)
  return document


def write_report(output, document):
  """The report: the JSON document at `output`, its Markdown table beside it (scoring.markdown_path)."""
  if "museval" in document:
    from tf_drnn.evaluate_multitrack import markdown_table as table
  else:
    table = markdown_table
  write_text(output, json.dumps(document, indent=2) + "\n")
  write_text(markdown_path(output), table(document))


def summary_line(document):
  """The one-line JSON summary the command prints on stdout."""
  if "museval" in document:
    return json.dumps({"method": document["method"], "dataset": document["dataset"],
                       "num_tracks": document["num_tracks"], "museval": document["museval"],
                       "global": document["global"]})
  rounded = {source: {k: None if v is None else round(v, 2) for k, v in values.items()}
             for source, values in document["global"].items()}
  return json.dumps({"method": document["method"], "num_clips": document["num_clips"], "global": rounded})


# --- MIR-1K: the paper's 0 dB remixes, BSS Eval v3 ---------------------------------------------

def make_estimator(method, model_path=None, authors_dir=None, authors_mask="softmask", rpca_hop=0):
  """(estimator, runs_in_workers) for a --method."""
  from tf_drnn import baselines
  if method == "model":
    from tf_drnn import Separator
    return BlindEstimator(Separator(model_path).separate_pair), False
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


def _authors_and_clips(o):
  """(the authors' results or None, the clips to score): --clips=authors and --method=authors
  name the clips the paper's authors released separations of."""
  clips = list(o.clips or ())
  if o.method != "authors" and AUTHORS_CLIPS not in clips:
    return None, clips
  from tf_drnn.baselines import AuthorsResults
  authors = AuthorsResults(o.authors_dir or os.path.join(os.fspath(o.data_dir), "authors_demo_results"),
                           o.authors_mask)
  if AUTHORS_CLIPS in clips:
    clips = [c for c in clips if c != AUTHORS_CLIPS] + list(authors.clips)
  if o.method == "authors" and not clips and o.split is None:
    clips = list(authors.clips)  # Their clips span the dev and test splits.
  return authors, clips


def evaluate_clips(o):
  """Scores MIR-1K clips (checked :class:`EvaluateOptions`); returns the report document."""
  from tf_drnn.data import load_dataset
  dataset = load_dataset("mir1k", o.data_dir, o.dev_clips)
  authors, clips = _authors_and_clips(o)
  split = o.split or "test"
  tracks = select_tracks(dataset, split, clips, o.max_clips, authors.clips if o.method == "authors" else None)
  authors_dir = authors.directory if authors else None
  estimator, in_workers = make_estimator(o.method, o.model, authors_dir, o.authors_mask, o.rpca_hop)
  started = time.time()
  scores, result = score_estimates(estimator, tracks, gain=db_to_gain(o.gain_db), progress=o.progress,
                                   workers=o.workers, separate_in_workers=in_workers, voice_db=o.voice_db)
  selection = (", ".join(t.name for t in tracks) if clips else f"split {split}") + (
      f" (max_clips {o.max_clips})" if o.max_clips else "")
  info = _clips_info(o, split=None if clips else split, selection=selection, authors=authors)
  info["elapsed_seconds"] = time.time() - started
  return report(scores, result, info)


def _clips_info(o, split, selection, authors):
  """The run's description at the head of a MIR-1K report."""
  config = DEFAULT_AUDIO_CONFIG
  info = {
      "method": o.method,
      "model": (os.path.abspath(o.model) if o.model else "bundled") if o.method in ("model", "tflite") else None,
      "data_dir": os.path.abspath(o.data_dir), "split": split,
      "selection": selection, "max_clips": o.max_clips, "gain_db": o.gain_db, "voice_db": o.voice_db,
      "sample_rate": config.sample_rate, "audio_config": config.as_dict(),
      "mixing": (f"{o.voice_db:+g} dB: vocals and accompaniment each scaled to unit RMS, the vocals then "
                 f"by {o.voice_db:+g} dB, summed, unshifted" if o.voice_db else
                 "0 dB: vocals and accompaniment each scaled to unit RMS, summed, unshifted"),
      "metrics": "BSS Eval v3 (mir_eval.separation.bss_eval_sources' metrics, tf_drnn.bss_eval; no permutation); "
                 "NSDR = SDR(estimate) - SDR(mixture); G-metrics weighted by clip length",
  }
  if o.method == "rpca":
    hop = o.rpca_hop or config.hop_length
    info["rpca"] = {"k": 1.0, "lambda": "k / sqrt(max(bins, frames))", "mask": "binary |S| > 1 * |L|",
                    "stft": f"sine window {config.n_fft}, hop {hop}" + ("" if not o.rpca_hop else " (SciPy STFT)")}
  if o.method == "authors":
    info["authors"] = {"directory": os.path.abspath(authors.directory), "mask": o.authors_mask,
                       "length": "estimates zero-padded at the end (or trimmed) to the clip length"}
  return info


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
  """The Markdown summary of a MIR-1K :func:`report` document."""
  lines = [f"# tf-drnn-evaluate: {document['method']}", "", _describe_run(document) + ".", ""]
  voice_db = document.get("voice_db", 0.0)
  ratio = f"voice {voice_db:+g} dB over the accompaniment" if voice_db else "0 dB mixtures"
  lines += [f"{document['num_clips']} clips, {document['total_seconds']:.1f} s in total. "
            f"BSS Eval v3 (mir_eval), {ratio}; G-metrics are clip-length-weighted means, dB "
            "(GNSDR = GSDR minus the mixture's own SDR).", ""]
  skipped = document.get("skipped_clips", [])
  if skipped:
    lines += [f"{len(skipped)} clip(s) skipped, not in the scores: "
              + "; ".join(f"{row['name']}: {row['skipped']}" for row in skipped) + ".", ""]
  number = lambda v: "—" if v is None else f"{v:.2f}"
  lines += ["| source | GNSDR | GSIR | GSAR | GSDR |", "|---|---:|---:|---:|---:|"]
  for source in metrics.SOURCES:
    m = document["global"][source]
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


def _describe_run(document):
  what = [f"method `{document['method']}`"]
  if document.get("model"):
    what.append(f"model `{document['model']}`")
  what.append(f"clips: {document['selection']}")
  if document.get("rpca"):
    what.append(f"RPCA STFT: {document['rpca']['stft']}")
  if document.get("gain_db"):
    what.append(f"mixtures at {document['gain_db']:+g} dB")
  return ", ".join(what)


def define_flags():
  from absl import flags
  from tf_drnn.flags_common import define_data_dir, define_dataset, define_dev_clips, define_model
  define_model(note="A .tflite file needs --method=tflite (streamed hop by hop through its separate_pcm "
               "signature).")
  define_data_dir()
  define_dataset()
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
  define_dev_clips()
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
  options = EvaluateOptions.from_flags(flags.FLAGS)
  document = run_guarded(lambda: evaluate_command(options))
  for row in document.get("skipped_clips", []):
    print(f"note: {row['name']} skipped: {row['skipped']}", file=sys.stderr)
  print(summary_line(document))
  print(f"wrote {options.output} and {markdown_path(options.output)}", file=sys.stderr)


def run():
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main)


if __name__ == "__main__":
  run()
