"""Training under Keras' JAX backend: `python -m tf_drnn.train_jax` (the flags of `tf-drnn-train`).

For accelerator machines that have JAX but no TensorFlow. Model, loss, optimizer, schedule
and examples are those of :mod:`tf_drnn.train` (the layers are written in `keras.ops`, so
they run on either backend); the input pipeline is NumPy (`data.numpy_pipeline`, in a
background thread) with the STFT on the accelerator. It does not score the dev set (BSS Eval
runs through TensorFlow's separation path): the model of the last step is kept, and
`tf-drnn-evaluate` scores it wherever TensorFlow is.

Writes into MODEL_DIR: model.keras (float32), training.json (steps, seconds, hardware),
options.json (with the first state.npz), state.npz (weights, optimizer and step every
--eval_every steps: a killed run resumes from it with the same flags; the one before is kept as
state.previous.npz, the fallback when state.npz cannot be read). A model_dir holding a run it
cannot resume is refused in one line unless --restart. `--init_model` starts from a trained
model's weights (not scored as step 0 here, unlike tf-drnn-train: the last step is kept).
"""
import dataclasses
import json
import logging
import os
import queue
import threading
import time

from tf_drnn.atomic import atomic_output, write_json
from tf_drnn.errors import UserError
from tf_drnn.train import (TrainOptions, check_options, checked_tracks, options_writer, require,
                            training_record, training_sources, warm_start)

log = logging.getLogger("tf_drnn.train_jax")


def prefetch(generator, size=8):
  """Runs `generator` in a daemon thread, `size` items ahead of the consumer."""
  items = queue.Queue(maxsize=size)

  def produce():
    for item in generator:
      items.put(item)

  threading.Thread(target=produce, daemon=True).start()
  while True:
    yield items.get()


def learning_rate_at(step, decay, peak, warmup_steps, alpha=0.05):
  """The rate of `tf_drnn.train`'s schedule: linear warm-up to `peak`, then cosine to alpha * peak.

  decay: progress through the decay in [0, 1] (steps after warm-up / decay steps).
  """
  import math
  if step < warmup_steps:
    return peak * step / warmup_steps
  decay = min(max(decay, 0.0), 1.0)
  return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * decay)) + alpha)


def train_jax(options: TrainOptions, max_seconds=0.0, scan_unroll=0, fit_seconds=0.0):
  """Trains like :func:`tf_drnn.train.train` under the JAX backend; returns training.json's dict.

  Args:
    max_seconds: Stop (saving state and model) after this much wall time, 0 for no limit.
    scan_unroll: If > 0, recurrences run as a scan with this many steps per iteration
      instead of fully unrolled (faster to compile, e.g. for sRNN).
    fit_seconds: If > 0, the cosine decay also runs over wall time and ends this many
      seconds after the start (whichever of steps and time is further along sets the
      rate): a run that fills a time budget on a machine of unknown speed, or shared.
      training.json records the steps trained.
  """
  check_options(options)
  for flag, value in (("max_seconds", max_seconds), ("scan_unroll", scan_unroll), ("fit_seconds", fit_seconds)):
    require(flag, value, value >= 0, "must be at least 0 (0: off)")
  import keras
  if keras.backend.backend() != "jax":
    raise UserError(f"tf_drnn.train_jax needs KERAS_BACKEND=jax (Keras runs on {keras.backend.backend()!r})")
  import jax
  import numpy as np

  from tf_drnn import model as model_lib
  from tf_drnn.data import numpy_pipeline
  from tf_drnn.data.sources import statistics_magnitudes
  from tf_drnn.losses import DiscriminativeLoss

  if options.strategy != "default":
    raise UserError("tf_drnn.train_jax trains on one device: use --strategy=default")
  started = time.time()
  train_tracks, _ = checked_tracks(options, trainer="jax")

  keras.utils.set_random_seed(options.seed)
  sources, statistics_sources = training_sources(train_tracks, options.speed_factors)
  log.info("%d training clips", len(sources))

  model = model_lib.build_model_from_options(dataclasses.asdict(options))
  if scan_unroll > 0:
    model_lib.run_recurrences_as_scan(model, scan_unroll)
  # The learning rate is set from the host before every step (an optimizer variable, so no
  # re-tracing): warm-up, then cosine decay to 5 % over the steps, or over the time budget.
  optimizer = keras.optimizers.Adam(options.learning_rate, global_clipnorm=options.clip_norm or None)
  optimizer.build(model.trainable_variables)
  learning_rate_index = [v.name for v in optimizer.variables].index("learning_rate")
  loss_fn = DiscriminativeLoss(options.loss, options.discriminative_weight)

  state_path = os.path.join(options.model_dir, "state.npz")
  previous_path = os.path.join(options.model_dir, "state.previous.npz")
  step, seconds_before = 0, 0.0
  resumed = load_state(model, optimizer, [state_path, previous_path])
  saved_step = None  # The step of the intact state.npz on disk, if any (the one to keep as previous).
  if resumed:
    step, seconds_before, resumed_path = resumed
    saved_step = step if resumed_path == state_path else None
    print(f"Resuming from step {step}", flush=True)
  elif options.init_model:
    warm_start(model, options.init_model)
    print(f"Starting from the weights of {options.init_model}", flush=True)
  else:
    model.get_layer("features").set_statistics(statistics_magnitudes(statistics_sources))

  def loss_of(trainable, non_trainable, segments):
    mixture, targets = numpy_pipeline.segment_spectra(segments, options.target)
    predictions, non_trainable = model.stateless_call(trainable, non_trainable, mixture, training=True)
    return keras.ops.mean(loss_fn.call(targets, predictions)), non_trainable

  gradient_of = jax.value_and_grad(loss_of, has_aux=True)

  @jax.jit
  def train_step(trainable, non_trainable, optimizer_state, segments):
    (loss, non_trainable), gradients = gradient_of(trainable, non_trainable, segments)
    trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, gradients, trainable)
    return loss, trainable, non_trainable, optimizer_state

  trainable = [v.value for v in model.trainable_variables]
  non_trainable = [v.value for v in model.non_trainable_variables]
  optimizer_state = [v.value for v in optimizer.variables]

  def write_back():
    for variable, value in zip(model.trainable_variables, trainable):
      variable.assign(value)
    for variable, value in zip(model.non_trainable_variables, non_trainable):
      variable.assign(value)
    for variable, value in zip(optimizer.variables, optimizer_state):
      variable.assign(value)

  write_options = options_writer(options)

  def save_state(seconds):
    """Writes state.npz atomically; an intact one of an earlier step becomes state.previous.npz.
    The session's first also writes options.json just before it: a run that stops sooner leaves none."""
    nonlocal saved_step
    write_options()
    if saved_step is not None and saved_step < step:
      os.replace(state_path, previous_path)
    write_back()
    arrays = {f"model_{i}": np.asarray(v.value) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i}": np.asarray(v.value) for i, v in enumerate(optimizer.variables)})
    with atomic_output(state_path) as tmp, open(tmp, "wb") as f:
      np.savez(f, step=step, seconds=seconds, **arrays)
    saved_step = step

  batches = prefetch(numpy_pipeline.batches(
      sources, options.batch_size, options.sequence_length, options.circular_shift,
      seed=options.seed + step, random_shift=options.random_shift,
      remix_probability=options.remix_probability, level_range_db=options.level_range_db,
      voice_db_range=tuple(options.voice_db_range)))
  run_started = time.time()
  losses = []
  deadline = started + fit_seconds if fit_seconds else None
  warmup_ended = None  # Wall time at the end of warm-up (the time budget's decay starts there).
  finished = False
  while True:
    decay = (step - options.warmup_steps) / max(options.train_steps - options.warmup_steps, 1)
    if deadline and step >= options.warmup_steps:
      warmup_ended = warmup_ended or time.time()
      decay = max(decay, (time.time() - warmup_ended) / max(deadline - warmup_ended, 1e-3))
    finished = step >= options.train_steps or decay >= 1.0
    if finished:
      break
    optimizer_state[learning_rate_index] = np.float32(
        learning_rate_at(step, decay, options.learning_rate, options.warmup_steps))
    loss, trainable, non_trainable, optimizer_state = train_step(
        trainable, non_trainable, optimizer_state, next(batches))
    step += 1
    losses.append(loss)
    if step % options.eval_every == 0:
      mean_loss = float(np.mean([float(x) for x in losses]))
      losses = []
      if not np.isfinite(mean_loss):  # As tf_drnn.train: stop, keeping the last good state.
        raise RuntimeError(f"training diverged before step {step} (mean loss {mean_loss}); "
                           "lower --learning_rate or --clip_norm")
      elapsed = seconds_before + time.time() - run_started
      print(f"step {step}: loss {mean_loss:.4f}, {elapsed:.0f} s", flush=True)
      save_state(elapsed)
    if max_seconds and time.time() - started > max_seconds:
      print(f"stopping at step {step}: --max_seconds={max_seconds:g} reached", flush=True)
      break
  seconds = seconds_before + time.time() - run_started
  save_state(seconds)
  from tf_drnn.train import save_model_atomically
  save_model_atomically(model, os.path.join(options.model_dir, "model.keras"))
  device = jax.devices()[0]
  summary = training_record("keras-jax", step, options.train_steps, seconds,
                            f"{device.device_kind} ({device.platform}, Keras JAX backend)",
                            complete=finished, time_budgeted=bool(deadline))
  write_json(os.path.join(options.model_dir, "training.json"), summary)
  return summary


def load_state(model, optimizer, paths):
  """Assigns the variables of the first of `paths` (state.npz, then state.previous.npz) that reads
  back whole; returns (step, seconds, that path), or None where none exists. One that cannot be read is
  logged in one line and the next is tried; if none can be read, a UserError."""
  import zipfile
  import numpy as np
  existing = [p for p in paths if os.path.exists(p)]
  for i, path in enumerate(existing):
    try:
      with np.load(path) as state:
        for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
          for j, variable in enumerate(variables):
            variable.assign(state[f"{prefix}_{j}"])
        return int(state["step"]), float(state["seconds"]), path
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
      reason = (str(error).strip().splitlines() or [type(error).__name__])[-1][:200]
      later = (f"falling back to {os.path.basename(existing[i + 1])}" if i + 1 < len(existing)
               else "and no earlier state is left")
      log.warning("%s cannot be read (%s); %s", path, reason, later)
  if existing:
    from tf_drnn.train import RESTART_CHOICE
    raise UserError(f"{os.path.dirname(existing[0])}: no intact state to resume from (none of "
                    f"{', '.join(os.path.basename(p) for p in existing)} can be read); {RESTART_CHOICE}")
  return None


def main(argv):
  from absl import flags
  from tf_drnn.cli_util import run_guarded
  from tf_drnn.train import checked_command_line
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  values = flags.FLAGS
  options = run_guarded(lambda: checked_command_line(argv))
  result = run_guarded(lambda: train_jax(options, values.max_seconds, values.scan_unroll,
                                         values.fit_seconds))
  if result:
    print(json.dumps(result, indent=2))


def define_flags():
  from absl import flags
  from tf_drnn.train import define_flags as define_train_flags
  define_train_flags()
  flags.DEFINE_float("max_seconds", 0.0, "Stop after this much wall time (0: no limit).")
  flags.DEFINE_float("fit_seconds", 0.0, "Also decay over wall time, ending this many seconds after the start.")
  flags.DEFINE_integer("scan_unroll", 0, "> 0: run recurrences as a scan, this many steps per iteration.")


def run():
  os.environ.setdefault("KERAS_BACKEND", "jax")  # Before Keras is imported (the command line only).
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)


if __name__ == "__main__":
  run()
