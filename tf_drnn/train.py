"""Training: `tf-drnn-train` (absl flags) over the library function :func:`train`.

Writes into MODEL_DIR:
  model.keras        the best model on the dev split (vocal GNSDR), written atomically
  best.json          its dev scores, step and training options
  training.json      steps done, whether complete, wall time over every session, hardware
                     (the same record as tf-drnn-train-jax writes; tf_drnn.reproduce reads it)
  checkpoints/       model + optimizer + step, to resume a killed run with the same flags
  logs/              TensorBoard scalars (loss, learning rate, input-pipeline share, dev GNSDR)
  options.json       the options of the run (written with its first checkpoint), checked on resume

It never trains over an earlier run it cannot resume (a model.keras without checkpoints, say):
that stops with one line, unless --restart (TrainOptions.restart) discards the earlier run.
"""
import dataclasses
import json
import logging
import math
import numbers
import os
import re
import time

from tf_drnn.atomic import nearest_existing, write_json
from tf_drnn.data import load_dataset
from tf_drnn.errors import UserError

STRATEGIES = ("default", "mirrored", "multi_worker")
_MODEL_OPTIONS = ("architecture", "context", "num_layers", "hidden_units", "output_format", "dropout",
                  "level_feature")
log = logging.getLogger("tf_drnn.train")


@dataclasses.dataclass
class TrainOptions:
  """Everything a training run depends on (the absl flags map one to one onto these)."""
  data_dir: str
  model_dir: str
  dataset: str = "mir1k"
  dev_clips: tuple = ("abjones_5_08", "abjones_5_09", "amy_9_08", "amy_9_09")
  architecture: str = "drnn2"
  context: int = 3
  num_layers: int = 3
  hidden_units: int = 1000
  output_format: str = "masked"
  dropout: float = 0.0
  level_feature: bool = False
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
  level_range_db: float = 0.0
  voice_db_range: tuple = ()  # (lo, hi) dB: per-example voice-to-accompaniment ratio; (): 0 dB
  target: str = "magnitude"
  speed_factors: tuple = ()
  seed: int = 0
  init_model: str = ""
  restart: bool = False
  strategy: str = "default"
  eval_every: int = 500
  jit_compile: bool = True


def make_strategy(name):
  """The tf.distribute strategy for `name`: one device (a GPU when present), mirrored or multi-worker."""
  import tensorflow as tf
  if name == "default":
    return tf.distribute.get_strategy()  # No distribution; TF places ops on a GPU when present.
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise UserError("--strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task)")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise UserError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")


def save_model_atomically(model, path):
  """model.save to a temporary .keras file beside `path`, then rename: never a half-written model."""
  from tf_drnn.atomic import atomic_output
  with atomic_output(path) as tmp:
    model.save(tmp)


def warm_start(model, init_model):
  """Copies the weights (feature statistics included) of a trained model of the same structure."""
  import keras
  from tf_drnn import model as model_lib
  from tf_drnn.separate import resolve_model_path
  source = keras.models.load_model(resolve_model_path(init_model), compile=False)
  if model_lib.describe(source) != model_lib.describe(model):
    raise UserError(f"{init_model}: its structure {model_lib.describe(source)} differs from the flags' "
                    f"{model_lib.describe(model)}")
  model.set_weights(source.get_weights())


def checked_tracks(options, trainer="tensorflow"):
  """(train tracks, dev tracks) of the options' dataset, after the checks every trainer makes
  (possible option values, clips found, a model_dir this `trainer` may train in: see
  :func:`check_model_dir`). Nothing is written but the model_dir itself (and, with --restart,
  the earlier run's files are removed)."""
  check_options(options)
  dataset = load_dataset(options.dataset, options.data_dir, options.dev_clips)
  train_tracks, dev_tracks = dataset.tracks("train"), dataset.tracks("dev")
  if not train_tracks:
    raise UserError(f"{options.data_dir}: no training clips found")
  try:
    os.makedirs(options.model_dir, exist_ok=True)
  except OSError as error:
    raise UserError(f"--model_dir={options.model_dir}: cannot create it ({error.strerror})") from None
  check_model_dir(options, trainer)
  return train_tracks, dev_tracks


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

  Pure Python: both trainers call it before TensorFlow or JAX loads.
  """
  from tf_drnn.choices import ARCHITECTURES, LOSSES, OUTPUT_FORMATS, TARGETS, recurrent_layer_indices
  o = options
  require("model_dir", o.model_dir, bool(o.model_dir), "name the folder for the model and checkpoints")
  require("model_dir", o.model_dir, not os.path.exists(o.model_dir) or os.path.isdir(o.model_dir),
          "is a file, not a folder")
  parent = nearest_existing(os.path.dirname(os.path.abspath(o.model_dir)))
  require("model_dir", o.model_dir, os.path.isdir(parent), f"{parent} is a file, not a folder")
  for flag, names in (("architecture", ARCHITECTURES), ("output_format", OUTPUT_FORMATS), ("loss", LOSSES),
                      ("target", TARGETS), ("strategy", STRATEGIES)):
    require(flag, getattr(o, flag), getattr(o, flag) in names, f"choose one of {', '.join(names)}")
  for flag in ("num_layers", "hidden_units", "train_steps", "batch_size", "sequence_length", "eval_every"):
    value = getattr(o, flag)
    require(flag, value, _is_int(value) and value >= 1, "must be a whole number of at least 1")
  for flag in ("warmup_steps", "circular_shift"):
    value = getattr(o, flag)
    require(flag, value, _is_int(value) and value >= 0, "must be a whole number of at least 0")
  require("context", o.context, o.context in (1, 3, 5) and _is_int(o.context), "must be 1, 3 or 5 frames")
  try:
    recurrent_layer_indices(o.architecture, o.num_layers)
  except ValueError as error:
    require("num_layers", o.num_layers, False, f"{error} (--architecture={o.architecture})")
  require("dropout", o.dropout, _is_number(o.dropout) and 0 <= o.dropout < 1, "must be in [0, 1)")
  require("discriminative_weight", o.discriminative_weight,
          _is_number(o.discriminative_weight) and 0 <= o.discriminative_weight < 1,
          "must be in [0, 1) (from 1 on, the objective rewards estimates that grow without bound)")
  require("learning_rate", o.learning_rate, _is_number(o.learning_rate) and o.learning_rate > 0,
          "must be a number above 0")
  for flag in ("clip_norm", "level_range_db"):
    value = getattr(o, flag)
    require(flag, value, _is_number(value) and value >= 0, "must be a number of at least 0 (0: none)")
  require("remix_probability", o.remix_probability,
          _is_number(o.remix_probability) and 0 <= o.remix_probability <= 1, "must be in [0, 1]")
  require("speed_factors", o.speed_factors, all(_is_number(f) and f > 0 for f in o.speed_factors),
          "speed factors must be positive numbers")
  require("seed", o.seed, _is_int(o.seed) and 0 <= o.seed < 2 ** 31, "must be a whole number in [0, 2^31)")
  from tf_drnn.data.sources import voice_db_range_from
  voice_db_range_from(o.voice_db_range)  # LO <= HI, both finite: one error line otherwise.
  if o.restart and o.init_model:
    inside = os.path.realpath(o.init_model)
    inside = os.path.dirname(inside) if inside.endswith(".keras") else inside
    require("init_model", o.init_model, inside != os.path.realpath(o.model_dir),
            "is the model that --restart discards: copy it elsewhere first")


def options_writer(options):
  """A function that writes MODEL_DIR/options.json on its first call only: each trainer calls it
  just before its first checkpoint (or state.npz) of a session, so a run that stops sooner leaves
  no options.json behind."""
  written = []

  def write():
    if not written:
      write_json(os.path.join(options.model_dir, "options.json"), dataclasses.asdict(options))
      written.append(True)
  return write


def check_arguments(argv):
  """Refuses what absl leaves over after the flags: `--random_shift false` is --random_shift
  (on) and a stray argument `false`."""
  extra = argv[1:]
  if extra:
    raise UserError(f"unexpected argument{'s' * (len(extra) > 1)} {' '.join(repr(a) for a in extra)}: "
                    "this command takes flags only (a boolean flag is written --name, --noname or --name=false)")


# What an earlier run leaves in a model_dir (options.json alone is not a run: a run that stopped
# before its first checkpoint may have left one, and it is rewritten at the next first checkpoint).
_RUN_FILES = ("model.keras", "best.json", "training.json", "state.npz", "state.previous.npz")
RESTART_CHOICE = "to keep it, train into a new --model_dir; to train over it from step 0, add --restart"


def check_model_dir(options, trainer="tensorflow"):
  """Whether the `trainer` ("tensorflow": checkpoints/; "jax": state.npz) starts afresh in the
  model_dir ("new") or resumes the run there ("resume", the model options being the same).

  An earlier run that this trainer cannot resume (a model.keras without checkpoints, an unreadable
  checkpoint list, no options.json) is a UserError: training never starts over on top of it,
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
  if trainer == "jax":
    if not any(os.path.exists(os.path.join(model_dir, n)) for n in ("state.npz", "state.previous.npz")):
      raise UserError(f"{model_dir}: holds an earlier run ({', '.join(earlier)}) but no state.npz, "
                      f"which tf-drnn-train-jax resumes from; {RESTART_CHOICE}")
  elif "checkpoints/" not in earlier:
    raise UserError(f"{model_dir}: holds an earlier run ({', '.join(earlier)}) but no checkpoints/ "
                    f"to resume it from; {RESTART_CHOICE}")
  else:
    checkpoint_paths(checkpoint_dir)
  if not os.path.exists(os.path.join(model_dir, "options.json")):
    raise UserError(f"{model_dir}: holds an earlier run but no options.json, so the options it was trained "
                    f"with are unknown; put its options.json back to resume it, or {RESTART_CHOICE}")
  _check_resume_options(model_dir, options)
  return "resume"


_CHECKPOINT_LINE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths): "(.*)"$|'
                              r'^(all_model_checkpoint_timestamps|last_preserved_timestamp): [0-9.e+-]+$')


def checkpoint_paths(checkpoint_dir):
  """The checkpoints that `checkpoint_dir/checkpoint` lists, oldest first.

  A missing or unreadable list, or one naming no checkpoint on disk, is a UserError (TensorFlow
  would warn and start from step 0).
  """
  path = os.path.join(checkpoint_dir, "checkpoint")
  problem = None
  try:
    with open(path, errors="replace") as f:
      matches = [_CHECKPOINT_LINE.match(line.strip()) for line in f if line.strip()]
  except OSError as error:
    matches, problem = [], error.strerror.lower()
  if problem is None and (not matches or not all(matches)):
    problem = "not a TensorFlow checkpoint list"
  listed = [m.group(2) for m in matches if m and m.group(1) == "all_model_checkpoint_paths"] or [
      m.group(2) for m in matches if m and m.group(1) == "model_checkpoint_path"]
  paths = [p if os.path.isabs(p) else os.path.join(checkpoint_dir, p) for p in listed]
  if problem is None and not any(os.path.exists(p + ".index") for p in paths):
    problem = f"none of the checkpoints it lists ({', '.join(listed) or 'none'}) is there"
  if problem:
    raise UserError(f"{path}: {problem}, so the run in {os.path.dirname(checkpoint_dir)} cannot be "
                    f"resumed; {RESTART_CHOICE}")
  return paths


def restore_intact_checkpoint(checkpoint, checkpoint_dir):
  """Restores the newest checkpoint of `checkpoint_dir` that reads back whole; returns its path,
  or None where there is none. A corrupt one (truncated or garbled .index or .data) is logged in
  one line and the previous one is tried; if none is intact, a UserError."""
  import tensorflow as tf
  if not os.path.exists(os.path.join(checkpoint_dir, "checkpoint")):
    return None
  paths = checkpoint_paths(checkpoint_dir)
  for i, path in enumerate(reversed(paths)):
    try:
      checkpoint.restore(path).expect_partial()
      return path
    except (tf.errors.OpError, IndexError, ValueError) as error:
      reason = (str(error).strip().splitlines() or [type(error).__name__])[-1][:200]
      files = ", ".join(os.path.basename(f) for f in sorted(tf.io.gfile.glob(path + ".*")))
      later = (f"falling back to the previous one, {os.path.basename(paths[-2 - i])}"
               if i + 1 < len(paths) else "and no earlier checkpoint is left")
      log.warning("checkpoint %s cannot be read (%s: %s); %s", path, files or "no files", reason, later)
  raise UserError(f"{checkpoint_dir}: no intact checkpoint to resume from (none of "
                  f"{', '.join(os.path.basename(p) for p in paths)} can be read); {RESTART_CHOICE}")


def _discard_run(model_dir):
  """Removes the files of an earlier run from model_dir (--restart): its model, records, options,
  state, checkpoints (the chief's and any worker's) and TensorBoard event files."""
  import glob
  paths = [os.path.join(model_dir, name) for name in _RUN_FILES + ("options.json",)]
  for checkpoint_dir in [os.path.join(model_dir, "checkpoints")] + glob.glob(
      os.path.join(model_dir, ".worker-*", "checkpoints")):
    paths += glob.glob(os.path.join(checkpoint_dir, "checkpoint")) + glob.glob(
        os.path.join(checkpoint_dir, "ckpt-*"))
  paths += glob.glob(os.path.join(model_dir, "logs", "events.out.tfevents.*"))
  for path in paths:
    try:
      os.remove(path)
    except FileNotFoundError:  # Another worker of the same run removed it first.
      pass


def training_sources(train_tracks, speed_factors=()):
  """(training sources, statistics sources): every clip's (vocals, accompaniment), then one
  speed-perturbed copy per factor; the input statistics come from the unperturbed clips only."""
  from tf_drnn.data.sources import load_sources, speed_perturbed
  sources = load_sources(train_tracks)
  if not speed_factors:
    return sources, sources
  perturbed = speed_perturbed(sources, [float(f) for f in speed_factors])
  log.info("speed perturbation %s: %d training clips", list(speed_factors), len(perturbed))
  return perturbed, sources


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


def make_train_step(model, optimizer, loss_fn, frames_per_batch, strategy=None, jit_compile=True):
  """One optimizer step: batch (mixture [B, L, bins], targets [B, L, 2, bins]) -> mean loss per frame.

  Without a strategy the forward and backward pass compile with XLA (`jit_compile`); with
  one, the batch is a distributed value, each replica computes its share of the global
  mean and the optimizer aggregates the gradients.
  """
  import tensorflow as tf
  variables = model.trainable_variables

  def forward_backward(mixture, targets):
    with tf.GradientTape() as tape:
      estimates = model(mixture, training=True)
      loss = tf.reduce_sum(loss_fn.call(targets, estimates)) / frames_per_batch
    return loss, tape.gradient(loss, variables)

  compiled = tf.function(forward_backward, jit_compile=jit_compile and strategy is None)

  def replica_step(mixture, targets):
    loss, gradients = compiled(mixture, targets)
    optimizer.apply_gradients(zip(gradients, variables))
    return loss

  @tf.function
  def train_step(batch):
    if strategy is None:
      return replica_step(*batch)
    losses = strategy.run(replica_step, args=batch)
    return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

  return train_step


def train(options: TrainOptions):
  """Trains a model; returns the best dev metrics. Resumes from MODEL_DIR's last checkpoint."""
  train_tracks, dev_tracks = checked_tracks(options)

  import numpy as np
  import tensorflow as tf
  import keras

  from tf_drnn import model as model_lib
  from tf_drnn.data import pipeline
  from tf_drnn.evaluate import evaluate_tracks
  from tf_drnn.losses import DiscriminativeLoss
  from tf_drnn.separate import offline_estimates

  strategy = make_strategy(options.strategy)
  is_chief = _is_chief(strategy)
  work_dir = options.model_dir if is_chief else os.path.join(
      options.model_dir, f".worker-{strategy.cluster_resolver.task_id}")

  keras.utils.set_random_seed(options.seed)
  log.info("loading %d training clips, %d dev clips", len(train_tracks), len(dev_tracks))
  sources, statistics_sources = training_sources(train_tracks, options.speed_factors)
  dev_tracks = [_cached(t) for t in dev_tracks]

  with strategy.scope():
    model = model_lib.build_model_from_options(dataclasses.asdict(options))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(options.train_steps - options.warmup_steps, 1), alpha=0.05,
        warmup_target=options.learning_rate, warmup_steps=options.warmup_steps)
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=options.clip_norm or None)
    optimizer.build(model.trainable_variables)
    loss_fn = DiscriminativeLoss(options.loss, options.discriminative_weight)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    best_dev = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_dev")
    trained_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="trained_seconds")

  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, best_dev=best_dev,
                                   trained_seconds=trained_seconds)
  checkpoint_dir = os.path.join(work_dir, "checkpoints")
  resumed_from = restore_intact_checkpoint(checkpoint, checkpoint_dir)  # Before anything is written.
  manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
  if resumed_from:
    log.info("resuming from %s at step %d (best dev vocal GNSDR so far %.2f dB)",
             resumed_from, int(step.numpy()), float(best_dev.numpy()))
    print(f"Resuming from checkpoint at step {int(step.numpy())}", flush=True)
  elif options.init_model:
    warm_start(model, options.init_model)
  else:
    model.get_layer("features").set_statistics(pipeline.statistics_magnitudes(statistics_sources))

  global_batch = options.batch_size
  data = pipeline.training_dataset(sources, global_batch, options.sequence_length,
                                   options.circular_shift, options.seed + int(step.numpy()),
                                   random_shift=options.random_shift,
                                   remix_probability=options.remix_probability,
                                   target=options.target,
                                   level_range_db=options.level_range_db,
                                   voice_db_range=tuple(options.voice_db_range))
  distributed = options.strategy != "default"
  iterator = iter(strategy.experimental_distribute_dataset(data) if distributed else data)
  frames_per_batch = float(global_batch * options.sequence_length)
  train_step = make_train_step(model, optimizer, loss_fn, frames_per_batch,
                               strategy if distributed else None, options.jit_compile)

  def keep_best(current, result, seconds):
    """Writes model.keras and best.json (chief only): the model of step `current` is the best so far."""
    if is_chief:
      save_model_atomically(model, os.path.join(work_dir, "model.keras"))
      write_json(os.path.join(work_dir, "best.json"), {"step": current, "dev": result,
                                                      "options": dataclasses.asdict(options),
                                                      "training_seconds": seconds})

  seconds_before = float(trained_seconds.numpy())  # Earlier sessions' training time (resumed runs).
  hardware = hardware_description()

  def record_training(seconds_now):
    """Sets the checkpointed training time (this session's `seconds_now` added to the earlier
    sessions') and writes training.json (chief only)."""
    trained_seconds.assign(seconds_before + seconds_now)
    if is_chief:
      write_json(os.path.join(work_dir, "training.json"), training_record(
          "keras-tensorflow", int(step.numpy()), options.train_steps, seconds_before + seconds_now, hardware))

  write_options = options_writer(options)

  def save_checkpoint(number):
    """manager.save; the session's first also writes options.json (chief only) just before it."""
    if is_chief:
      write_options()
    manager.save(checkpoint_number=number)

  def evaluate_dev():
    if not dev_tracks:
      return None
    _, result = evaluate_tracks(lambda mix: offline_estimates(model, mix), dev_tracks)
    return result

  if options.init_model and not resumed_from and dev_tracks:
    # The starting model is the one to beat: score it as step 0 and keep it until something is better.
    result = evaluate_dev()
    best_dev.assign(result["vocals"]["GNSDR"])
    print(f"step 0 ({options.init_model}): dev vocal GNSDR {result['vocals']['GNSDR']:.2f} dB", flush=True)
    keep_best(0, result, 0.0)
    save_checkpoint(0)  # model.keras is there now: a rerun must find a checkpoint to resume.

  writer = tf.summary.create_file_writer(os.path.join(work_dir, "logs"))
  progress = keras.utils.Progbar(options.train_steps, stateful_metrics=["loss", "input_share"],
                                 verbose=1 if is_chief else 0)
  input_time = compute_time = 0.0
  best_result = None
  start_step = int(step.numpy())
  started = time.time()
  while int(step.numpy()) < options.train_steps:
    t0 = time.perf_counter()
    batch = next(iterator)
    t1 = time.perf_counter()
    loss = float(train_step(batch))
    t2 = time.perf_counter()
    input_time += t1 - t0
    compute_time += t2 - t1
    if not math.isfinite(loss):
      raise RuntimeError(f"training diverged at step {int(step.numpy())} (loss {loss}); "
                         "lower --learning_rate or --clip_norm")
    current = int(step.assign_add(1).numpy())
    share = input_time / max(input_time + compute_time, 1e-9)
    progress.update(current, [("loss", loss), ("input_share", share)])
    if current % 50 == 0:
      with writer.as_default(step=current):
        tf.summary.scalar("loss", loss)
        tf.summary.scalar("learning_rate", float(schedule(optimizer.iterations)))
        tf.summary.scalar("input_pipeline_share", share)
        tf.summary.scalar("seconds_per_step", (input_time + compute_time) / max(current - start_step, 1))
    if current % options.eval_every == 0 or current == options.train_steps:
      result = evaluate_dev()
      score = result["vocals"]["GNSDR"] if result else float(current)
      if result:
        with writer.as_default(step=current):
          for name, value in result["vocals"].items():
            tf.summary.scalar(f"dev/vocals_{name}", value)
        log.info("step %d: dev vocal GNSDR %.2f dB (best %.2f dB)", current, score, float(best_dev.numpy()))
        print(f"\nstep {current}: dev vocal GNSDR {score:.2f} dB", flush=True)
      if score > best_dev.numpy() or not os.path.exists(os.path.join(work_dir, "model.keras")):
        best_dev.assign(max(score, float(best_dev.numpy())))
        best_result = result
        keep_best(current, result, time.time() - started)
      record_training(time.time() - started)
      save_checkpoint(current)
  seconds = time.time() - started
  record_training(seconds)
  if int(step.numpy()) > start_step:
    save_checkpoint(int(step.numpy()))
  log.info("trained steps %d..%d in %.0f s; input pipeline share %.1f%%", start_step,
           int(step.numpy()), seconds, 100 * input_time / max(input_time + compute_time, 1e-9))
  return best_result


def training_record(trainer, steps, train_steps, seconds, hardware, complete=None, time_budgeted=False):
  """The training.json both trainers write (tf_drnn.reproduce and tf_drnn.bundle read it).

  complete: whether the run is done (default: steps >= train_steps); seconds: wall time of
  every session so far.
  """
  return {"trainer": trainer, "steps": steps, "train_steps": train_steps,
          "complete": steps >= train_steps if complete is None else bool(complete),
          "time_budgeted": time_budgeted, "training_seconds": seconds, "hardware": hardware}


def hardware_description():
  """What TensorFlow trains on here, e.g. "1 GPU(s)" or "CPU (2 cores, x86_64)"."""
  import platform
  import tensorflow as tf
  gpus = tf.config.list_physical_devices("GPU")
  return f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def _is_chief(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().jobs:
    return True
  return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0
                                                   and "chief" not in resolver.cluster_spec().jobs)


class _cached:
  """A Track whose sources are loaded once (dev clips are scored many times)."""

  def __init__(self, track):
    self.name = track.name
    self._sources = track.sources()

  def sources(self):
    return self._sources


# --- command line -------------------------------------------------------------------------------

def define_flags():
  from absl import flags
  from tf_drnn.choices import ARCHITECTURES, LOSSES, OUTPUT_FORMATS, TARGETS
  from tf_drnn.data import DATASETS
  defaults = TrainOptions(data_dir="", model_dir="")
  flags.DEFINE_string("data_dir", None, "Dataset root (MIR-1K: the folder holding Wavfile/).")
  flags.DEFINE_string("model_dir", None, "Where the model, checkpoints and logs go.")
  flags.DEFINE_enum("dataset", defaults.dataset, list(DATASETS), "Dataset layout.")
  flags.DEFINE_list("dev_clips", list(defaults.dev_clips),
                    "Training-singer clips (or song prefixes such as amy_9) held out as the dev set.")
  flags.DEFINE_enum("architecture", defaults.architecture, ARCHITECTURES,
                    "dnn, drnn1..drnn3 (recurrence on hidden layer k) or srnn (on all).")
  flags.DEFINE_integer("context", defaults.context, "Input frames per output frame (1, 3, 5).")
  flags.DEFINE_integer("num_layers", defaults.num_layers, "Hidden layers.")
  flags.DEFINE_integer("hidden_units", defaults.hidden_units, "ReLU units per hidden layer.")
  flags.DEFINE_enum("output_format", defaults.output_format, OUTPUT_FORMATS,
                    "masked: two heads + joint soft mask; two_sources: no mask; one_source: vocals only.")
  flags.DEFINE_enum("loss", defaults.loss, LOSSES, "Divergence: mse or generalized KL.")
  flags.DEFINE_float("discriminative_weight", defaults.discriminative_weight,
                     "Weight gamma of the discriminative term (0: plain objective).")
  flags.DEFINE_integer("train_steps", defaults.train_steps, "Total optimizer steps.")
  flags.DEFINE_integer("batch_size", defaults.batch_size, "Sequences per step (global).")
  flags.DEFINE_integer("sequence_length", defaults.sequence_length, "Frames per training sequence.")
  flags.DEFINE_float("learning_rate", defaults.learning_rate, "Peak Adam learning rate.")
  flags.DEFINE_integer("warmup_steps", defaults.warmup_steps, "Linear warm-up steps before cosine decay.")
  flags.DEFINE_float("clip_norm", defaults.clip_norm, "Global gradient-norm clipping (0: none).")
  flags.DEFINE_integer("circular_shift", defaults.circular_shift,
                       "Step in samples between circular shifts of the accompaniment (0: none).")
  flags.DEFINE_bool("random_shift", defaults.random_shift,
                    "Roll the accompaniment by random offsets instead of multiples of --circular_shift.")
  flags.DEFINE_float("remix_probability", defaults.remix_probability,
                     "Chance of pairing a voice with another training clip's accompaniment.")
  flags.DEFINE_bool("level_feature", defaults.level_feature,
                    "Feed each frame's level to the model beside the level-invariant spectrum.")
  flags.DEFINE_float("level_range_db", defaults.level_range_db,
                     "Train on mixtures within +-this many dB of -20 dBFS (for --level_feature).")
  flags.DEFINE_list("voice_db_range", list(defaults.voice_db_range),
                    "LO,HI: mix each training example with the voice a uniformly drawn LO..HI dB over "
                    "the accompaniment (e.g. -10,5); empty: 0 dB, as in the paper.")
  flags.DEFINE_float("dropout", defaults.dropout, "Dropout rate after each hidden layer while training.")
  flags.DEFINE_enum("target", defaults.target, TARGETS,
                    "Training targets: source magnitudes (paper) or phase-sensitive projections.")
  flags.DEFINE_list("speed_factors", list(defaults.speed_factors),
                    "Also train on every clip played this many times faster (pitch and tempo), "
                    "e.g. 0.89,0.94,1.06,1.12 for +-1 and +-2 semitones.")
  flags.register_validator("speed_factors", _positive_numbers, "speed factors must be positive numbers")
  flags.DEFINE_integer("seed", defaults.seed, "Random seed.")
  flags.DEFINE_string("init_model", defaults.init_model,
                      "Start from this trained model's weights (a .keras file, model_dir or bundled name, "
                      "e.g. drnn2) instead of a random initialization: fine-tuning.")
  flags.DEFINE_bool("restart", defaults.restart,
                    "Discard the earlier run in --model_dir (model, records, checkpoints) and train from "
                    "step 0. Without it, a model_dir that holds a run which cannot be resumed is refused.")
  flags.DEFINE_enum("strategy", defaults.strategy, STRATEGIES,
                    "default: one device (GPU if present); mirrored: all local GPUs (or CPUs); "
                    "multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG.")
  flags.DEFINE_integer("eval_every", defaults.eval_every, "Steps between dev evaluations and checkpoints.")
  flags.DEFINE_bool("jit_compile", defaults.jit_compile, "Compile the training step with XLA.")
  flags.mark_flags_as_required(["data_dir", "model_dir"])


def _positive_numbers(values):
  try:
    return all(float(v) > 0 for v in values)
  except ValueError:
    return False


def options_from_flags():
  from absl import flags
  values = flags.FLAGS
  fields = {f.name for f in dataclasses.fields(TrainOptions)}
  kwargs = {name: values[name].value for name in fields}
  kwargs["dev_clips"] = tuple(kwargs["dev_clips"])
  kwargs["speed_factors"] = tuple(float(f) for f in kwargs["speed_factors"])
  from tf_drnn.data.sources import voice_db_range_from
  kwargs["voice_db_range"] = voice_db_range_from(kwargs["voice_db_range"])  # UserError if malformed
  return TrainOptions(**kwargs)


def checked_command_line(argv):
  """The TrainOptions of the parsed flags, after the checks that need no TensorFlow (no stray
  arguments, possible values): a UserError otherwise."""
  check_arguments(argv)
  options = options_from_flags()
  check_options(options)
  return options


def main(argv):
  from tf_drnn.cli_util import import_tensorflow_quietly, run_guarded
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  options = run_guarded(lambda: checked_command_line(argv))
  import_tensorflow_quietly()
  result = run_guarded(lambda: train(options))
  if result:
    print(json.dumps({"best_dev": result}, indent=2))


def run():
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)  # main imports it after checking the flags


if __name__ == "__main__":
  run()
