"""What a training run depends on, checked before TensorFlow or JAX loads: :class:`TrainOptions`
(the absl flags of `tf-drnn-train` map one to one onto it), the checks that name the first
impossible flag, and the rules of a model_dir (resume a run, refuse one that cannot be resumed,
--restart). Pure Python; `tf_drnn.train` trains from these.
"""
import dataclasses
import json
import logging
import math
import numbers
import os

from tf_drnn.atomic import nearest_existing, write_json
from tf_drnn.data import load_collections, split_names
from tf_drnn.errors import UserError

log = logging.getLogger("tf_drnn.train")

STRATEGIES = ("default", "mirrored", "multi_worker")
_MODEL_OPTIONS = ("architecture", "context", "lookahead", "num_layers", "hidden_units", "output_format",
                  "n_fft", "hop_length", "window")


@dataclasses.dataclass
class TrainOptions:
  """Everything a training run depends on (the absl flags map one to one onto these)."""
  data_dir: str
  model_dir: str
  dataset: str = "mir1k"  # a layout of tf_drnn.data.DATASETS, or several, comma-separated
  dataset_weights: tuple = ()  # one relative chance per collection; (): by examples per pass
  stem_channels: str = "mean"  # multitrack songs: "mean" of their channels, or "each" channel as well
  dev_clips: tuple = ()  # (): each collection's own dev split (its reader's DEFAULT_DEV)
  architecture: str = "drnn2"
  context: int = 3
  lookahead: int = -1  # context frames after the current one; -1: centred, (context - 1) / 2
  n_fft: int = 1024  # the model's STFT (tf_drnn.config.AudioConfig; the sample rate is fixed)
  hop_length: int = 512
  window: str = "sine"
  num_layers: int = 3
  hidden_units: int = 1000
  output_format: str = "masked"
  loss: str = "mse"
  discriminative_weight: float = 0.05
  train_steps: int = 10000
  batch_size: int = 32
  sequence_length: int = 100
  learning_rate: float = 1e-3
  warmup_steps: int = 500
  clip_norm: float = 5.0
  circular_shift: int = 10000
  random_shift: bool = False
  remix_probability: float = 0.0
  remix_across_collections: float = 0.0  # share of remixes whose partner may come from any collection
  voice_db_range: tuple = ()  # (lo, hi) dB, or one (lo, hi) per collection: per-example ratio; (): 0 dB
  equalizer_db: float = 0.0  # > 0: each source of an example through a random equalizer of +-this dB
  teacher_model: str = ""  # distillation: a trained model whose estimates are also targets
  teacher_weight: float = 0.5  # targets = (1 - w) sources + w teacher estimates
  speed_factors: tuple = ()
  seed: int = 0
  init_model: str = ""
  restart: bool = False
  strategy: str = "default"
  eval_every: int = 500
  jit_compile: bool = True
  max_seconds: float = 0.0  # stop (state and model saved) after this much wall time; 0: no limit
  scan_unroll: int = 0  # > 0: recurrences run as a scan of this many steps per iteration


@dataclasses.dataclass
class Collection:
  """One training collection: its reader's name, tracks, chance and dev scoring."""
  name: str
  data_dir: str
  train: list
  dev: list
  voice_db_range: tuple  # (lo, hi) dB or (): 0 dB
  dev_voice_db: object  # dev mixtures: voice dB over the accompaniment, or None: as mixed
  dev_score: str  # the vocal global metric that ranks models on this collection's dev split


def checked_tracks(options):
  """The options' training collections (:class:`Collection`), after the checks training makes
  (possible option values, clips found, a model_dir it may train in: see :func:`check_model_dir`).
  Nothing is written but the model_dir itself (and, with --restart, the earlier run's files are
  removed)."""
  check_options(options)
  readers = load_collections(options.dataset, options.data_dir, options.dev_clips, options.stem_channels)
  ranges = voice_db_ranges(options.voice_db_range, len(readers))
  collections = []
  for (name, reader), data_dir, voice_range in zip(readers, split_names(options.data_dir), ranges):
    train_tracks = reader.tracks("train")
    if not train_tracks:
      where = getattr(reader, "split_dirs", {}).get("train") or getattr(reader, "wav_dir", data_dir)
      raise UserError(f"{data_dir}: no training clips found (looked in {where})")
    dev_tracks = reader.tracks("dev")
    if not dev_tracks:
      log.warning("%s (%s): no dev clips: nothing ranks the models on it (name some with --dev_clips)",
                  name, data_dir)
    collections.append(Collection(name, data_dir, train_tracks, dev_tracks, voice_range,
                                  reader.DEV_VOICE_DB, reader.DEV_SCORE))
  try:
    os.makedirs(options.model_dir, exist_ok=True)
  except OSError as error:
    raise UserError(f"--model_dir={options.model_dir}: cannot create it ({error.strerror})") from None
  check_model_dir(options)
  return collections


def voice_db_ranges(values, count):
  """[(lo, hi) or ()] * count from --voice_db_range: empty, one LO,HI for every collection, or
  one LO,HI per collection (in --dataset order); a UserError otherwise."""
  from tf_drnn.data.sources import voice_db_range_from
  values = list(values or ())
  if len(values) == 2 * count and count > 1:
    return [voice_db_range_from(values[2 * i:2 * i + 2]) for i in range(count)]
  return [voice_db_range_from(values)] * count


def require(flag, value, ok, requirement):
  """Raises a UserError "--flag=value: requirement" unless `ok` (a flag value checked before any work)."""
  if not ok:
    shown = ",".join(str(v) for v in value) if isinstance(value, (tuple, list)) else value
    raise UserError(f"--{flag}={shown}: {requirement}")


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
  return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_options(options):
  """Raises a UserError naming the first flag whose value (or combination) cannot train.

  Pure Python: called before TensorFlow or JAX loads. The checks run in flag order: the model_dir,
  the data, the choices, the whole numbers, the model's shape, the other numbers, the models named.
  """
  _check_model_dir_flag(options)
  datasets = _check_data_flags(options)
  _check_choices(options)
  _check_whole_numbers(options)
  _check_model_shape(options)
  _check_training_numbers(options)
  voice_db_ranges(options.voice_db_range, len(datasets))  # LO <= HI, both finite: one error line otherwise.
  _check_models(options)


def _check_model_dir_flag(o):
  require("model_dir", o.model_dir, bool(o.model_dir), "name the folder for the model and checkpoints")
  require("model_dir", o.model_dir, not os.path.exists(o.model_dir) or os.path.isdir(o.model_dir),
          "is a file, not a folder")
  parent = nearest_existing(os.path.dirname(os.path.abspath(o.model_dir)))
  require("model_dir", o.model_dir, os.path.isdir(parent), f"{parent} is a file, not a folder")


def _check_data_flags(o):
  """Checks --dataset, --data_dir, --dataset_weights and --stem_channels; returns the dataset names."""
  from tf_drnn.data import DATASETS
  datasets = split_names(o.dataset)
  require("dataset", o.dataset, bool(datasets) and all(d in DATASETS for d in datasets),
          f"choose one or more (comma-separated) of {', '.join(DATASETS)}")
  require("data_dir", o.data_dir, len(split_names(o.data_dir)) == len(datasets),
          f"give one folder per --dataset collection ({len(datasets)}), comma-separated, in the same order")
  require("dataset_weights", o.dataset_weights, not o.dataset_weights or (
      len(o.dataset_weights) == len(datasets) and all(_is_number(w) and w >= 0 for w in o.dataset_weights)
      and sum(o.dataset_weights) > 0), f"give one number of at least 0 per collection ({len(datasets)}), not all 0")
  require("stem_channels", o.stem_channels, o.stem_channels in ("mean", "each"), "choose one of mean, each")
  return datasets


def _check_choices(o):
  from tf_drnn.choices import ARCHITECTURES, LOSSES, OUTPUT_FORMATS
  for flag, names in (("architecture", ARCHITECTURES), ("output_format", OUTPUT_FORMATS), ("loss", LOSSES),
                      ("strategy", STRATEGIES)):
    require(flag, getattr(o, flag), getattr(o, flag) in names, f"choose one of {', '.join(names)}")


def _check_whole_numbers(o):
  for flag in ("num_layers", "hidden_units", "batch_size", "sequence_length", "eval_every"):
    value = getattr(o, flag)
    require(flag, value, _is_int(value) and value >= 1, "must be a whole number of at least 1")
  # 0 steps: the --init_model scored on the dev sets as step 0 and kept (a model made elsewhere, e.g. averaged).
  require("train_steps", o.train_steps, _is_int(o.train_steps) and o.train_steps >= (0 if o.init_model else 1),
          "must be a whole number of at least 1 (0 with --init_model: score it and keep it)")
  for flag in ("warmup_steps", "circular_shift", "scan_unroll"):
    value = getattr(o, flag)
    require(flag, value, _is_int(value) and value >= 0, "must be a whole number of at least 0")


def _check_model_shape(o):
  """--context, --lookahead, the STFT (--n_fft, --hop_length, --window) and the layers of --architecture."""
  from tf_drnn.choices import recurrent_layer_indices
  from tf_drnn.config import AudioConfig
  require("context", o.context, o.context in (1, 3, 5) and _is_int(o.context), "must be 1, 3 or 5 frames")
  require("lookahead", o.lookahead, _is_int(o.lookahead) and -1 <= o.lookahead < o.context,
          f"must be -1 (centred) or 0 ... {o.context - 1} frames (--context={o.context})")
  try:
    AudioConfig(n_fft=o.n_fft, hop_length=o.hop_length, window=o.window)
  except (TypeError, ValueError) as error:
    require("window", o.window, False, f"{error} (--n_fft={o.n_fft}, --hop_length={o.hop_length})")
  try:
    recurrent_layer_indices(o.architecture, o.num_layers)
  except ValueError as error:
    require("num_layers", o.num_layers, False, f"{error} (--architecture={o.architecture})")


def _check_training_numbers(o):
  require("discriminative_weight", o.discriminative_weight,
          _is_number(o.discriminative_weight) and 0 <= o.discriminative_weight < 1,
          "must be in [0, 1) (from 1 on, the objective rewards estimates that grow without bound)")
  require("learning_rate", o.learning_rate, _is_number(o.learning_rate) and o.learning_rate > 0,
          "must be a number above 0")
  for flag in ("clip_norm", "max_seconds", "equalizer_db"):
    value = getattr(o, flag)
    require(flag, value, _is_number(value) and value >= 0, "must be a number of at least 0 (0: none)")
  for flag in ("teacher_weight", "remix_probability", "remix_across_collections"):
    value = getattr(o, flag)
    require(flag, value, _is_number(value) and 0 <= value <= 1, "must be in [0, 1]")
  require("speed_factors", o.speed_factors, all(_is_number(f) and f > 0 for f in o.speed_factors),
          "speed factors must be positive numbers")
  require("seed", o.seed, _is_int(o.seed) and 0 <= o.seed < 2 ** 31, "must be a whole number in [0, 2^31)")


def _check_models(o):
  """--init_model and --teacher_model exist, and --restart would not discard --init_model."""
  if o.restart and o.init_model:
    inside = os.path.realpath(o.init_model)
    inside = os.path.dirname(inside) if inside.endswith(".keras") else inside
    require("init_model", o.init_model, inside != os.path.realpath(o.model_dir),
            "is the model that --restart discards: copy it elsewhere first")
  from tf_drnn.models import resolve_model_path
  for flag in ("init_model", "teacher_model"):
    if getattr(o, flag):
      resolve_model_path(getattr(o, flag))  # A missing model is one line before any work.


def options_writer(options):
  """A function that writes MODEL_DIR/options.json on its first call only: training calls it
  just before its first state.npz of a session, so a run that stops sooner leaves no
  options.json behind."""
  written = []

  def write():
    if not written:
      write_json(os.path.join(options.model_dir, "options.json"), dataclasses.asdict(options))
      written.append(True)
  return write


# What an earlier run leaves in a model_dir (options.json alone is not a run: a run that stopped
# before its first checkpoint may have left one, and it is rewritten at the next first checkpoint).
_RUN_FILES = ("model.keras", "best.json", "training.json", "state.npz", "state.previous.npz")
RESTART_CHOICE = "to keep it, train into a new --model_dir; to train over it from step 0, add --restart"


def check_model_dir(options):
  """Whether training starts afresh in the model_dir ("new") or resumes the run there ("resume":
  a state.npz, and the same model options).

  An earlier run that cannot be resumed (a model.keras without state.npz, the checkpoints/ of an
  older trainer, no options.json) is a UserError: training never starts over on top of it,
  unless options.restart, which removes that run's files first.
  """
  model_dir = options.model_dir
  earlier = [name for name in _RUN_FILES if os.path.exists(os.path.join(model_dir, name))]
  checkpoint_dir = os.path.join(model_dir, "checkpoints")
  if os.path.isdir(checkpoint_dir) and os.listdir(checkpoint_dir):
    earlier.append("checkpoints/")
  if not earlier:
    return "new"
  if options.restart:
    _discard_run(model_dir)
    log.info("--restart: removed the earlier run in %s (%s)", model_dir, ", ".join(earlier))
    return "new"
  if not any(os.path.exists(os.path.join(model_dir, n)) for n in ("state.npz", "state.previous.npz")):
    raise UserError(f"{model_dir}: holds an earlier run ({', '.join(earlier)}) but no state.npz "
                    f"to resume it from; {RESTART_CHOICE}")
  if not os.path.exists(os.path.join(model_dir, "options.json")):
    raise UserError(f"{model_dir}: holds an earlier run but no options.json, so the options it was trained "
                    f"with are unknown; put its options.json back to resume it, or {RESTART_CHOICE}")
  _check_resume_options(model_dir, options)
  return "resume"


def _discard_run(model_dir):
  """Removes the files of an earlier run from model_dir (--restart): its model, records, options,
  state, an older trainer's checkpoints (the chief's and any worker's) and TensorBoard event files."""
  import glob
  paths = [os.path.join(model_dir, name) for name in _RUN_FILES + ("options.json",)]
  for checkpoint_dir in [os.path.join(model_dir, "checkpoints")] + glob.glob(
      os.path.join(model_dir, ".worker-*", "checkpoints")):
    paths += glob.glob(os.path.join(checkpoint_dir, "checkpoint")) + glob.glob(
        os.path.join(checkpoint_dir, "ckpt-*"))
  paths += glob.glob(os.path.join(model_dir, "logs", "**", "events.out.tfevents.*"), recursive=True)
  for path in paths:
    try:
      os.remove(path)
    except FileNotFoundError:  # Another worker of the same run removed it first.
      pass


def _check_resume_options(model_dir, options):
  """Refuses to resume a run whose options.json has other model options than `options`."""
  path = os.path.join(model_dir, "options.json")
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    changed = [k for k in _MODEL_OPTIONS if previous.get(k, getattr(TrainOptions, k)) != getattr(options, k)]
    if changed:
      raise UserError(f"{model_dir}: holds a run with different model options ({', '.join(changed)}); "
                      "use another --model_dir")
