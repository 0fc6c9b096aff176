"""Training: `tf-drnn-train` (absl flags) over the library function :func:`train`.

One Keras 3 program (`model.fit`) for both backends: under TensorFlow (the product's main
path; `tf.distribute` for several GPUs or hosts) the example generator feeds it through
tf.data, under JAX (`tf-drnn-train-jax`, or KERAS_BACKEND=jax: machines with JAX and no
TensorFlow) through a background thread. Examples (`data.pipeline`), loss, optimizer,
Keras' own warm-up + cosine schedule, dev scoring, best-model selection and the checkpoint
format are the same on both.

Writes into MODEL_DIR:
  model.keras        the best model on the dev split (vocal GNSDR; the last one without dev clips),
                     with its AudioConfig, written atomically
  best.json          its dev scores, step and training options
  training.json      steps done, whether complete, wall time over every session, hardware
  state.npz          weights, optimizer, step, best dev score and training time every --eval_every
                     steps: a killed run resumes from it with the same flags (the one before is kept
                     as state.previous.npz, the fallback when state.npz cannot be read)
  options.json       the options of the run (written with its first state.npz), checked on resume
  logs/              TensorBoard scalars (TensorFlow backend)

It never trains over an earlier run it cannot resume (a model.keras without state.npz, say):
that stops with one line, unless --restart (TrainOptions.restart) discards the earlier run.
"""
import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time

from tf_drnn.atomic import atomic_output, write_json
from tf_drnn.errors import UserError, last_line
from tf_drnn.train_options import (RESTART_CHOICE, STRATEGIES, TrainOptions, check_options, checked_tracks,
                                   options_writer, voice_db_ranges)

log = logging.getLogger("tf_drnn.train")


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


def collection_indices(collections, speed_factors=()):
  """The collection of each training source, in :func:`training_sources` order."""
  own = [i for i, c in enumerate(collections) for _ in c.train]
  return own * (1 + len(speed_factors))


# --- the training loop (both backends) ------------------------------------------------------------

def train(options: TrainOptions):
  """Trains a model; returns the best dev metrics (None without dev clips). Resumes from
  MODEL_DIR's state.npz when there is one."""
  collections = checked_tracks(options)
  train_tracks = [t for c in collections for t in c.train]
  import keras

  from tf_drnn import model as model_lib
  from tf_drnn.data import pipeline

  backend = _Backend(options)
  keras.utils.set_random_seed(options.seed)
  for c in collections:
    log.info("%s (%s): loading %d training clips, %d dev clips", c.name, c.data_dir, len(c.train), len(c.dev))
  sources, statistics_sources = training_sources(train_tracks, options.speed_factors)
  with backend.scope():
    model = compiled_model(options, backend.jit_compile)
  backend.prepare(model)

  state = TrainingState(model, options)
  resumed = state.load()
  new_stft = False  # warm-started from a model of other STFT settings
  if resumed:
    log.info("resuming at step %d (best dev vocal GNSDR so far %.2f dB)", state.step, state.best_dev)
    print(f"Resuming from step {state.step}", flush=True)
  elif options.init_model:
    from tf_drnn.models import warm_start
    new_stft = warm_start(model, options.init_model)
    print(f"Starting from the weights of {options.init_model}"
          + (" (other STFT settings: feature statistics measured again)" if new_stft else ""), flush=True)
  if not resumed and (not options.init_model or new_stft):
    from tf_drnn.data.sources import statistics_magnitudes
    model_lib.ModelParts(model).features.set_statistics(
        statistics_magnitudes(statistics_sources, model_lib.audio_config(model)))

  dev_sets = [dataclasses.replace(c, dev=[_cached(t) for t in c.dev]) for c in collections if c.dev]
  progress = _keras_callback(TrainingProgress)(model, options, state, dev_sets, backend)
  if options.init_model and not resumed:
    progress.score_starting_model()
  if state.step < options.train_steps:
    config = model_lib.audio_config(model)  # The STFT the examples are cut with, as the model's file records.
    batches = pipeline.batches(
        sources, options.batch_size, options.sequence_length, options.circular_shift,
        seed=options.seed + state.step, random_shift=options.random_shift,
        remix_probability=options.remix_probability,
        voice_db_range=voice_db_ranges(options.voice_db_range, len(collections)),
        config=config, collections=collection_indices(collections, options.speed_factors),
        weights=tuple(options.dataset_weights), remix_across_collections=options.remix_across_collections,
        equalizer_db=options.equalizer_db)
    teacher = load_teacher(options, model)
    epochs = -(-(options.train_steps - state.step) // options.eval_every)
    stop = threading.Event()
    try:
      model.fit(backend.dataset(until_set(batches, stop), options, config.num_bins, teacher), epochs=epochs,
                steps_per_epoch=options.eval_every, shuffle=False, callbacks=[progress] + backend.callbacks(),
                verbose=2 if backend.is_chief else 0)
    finally:
      stop.set()
  progress.finish()
  return progress.best_result


def compiled_model(options, jit_compile=False):
  """The model of `options`, compiled for training: the discriminative loss, Adam with global
  gradient-norm clipping, Keras' linear warm-up then cosine decay to 5 % of the peak rate over
  --train_steps; the optimizer built (its variables exist, to restore a state into)."""
  import keras
  import numpy as np

  from tf_drnn import model as model_lib
  from tf_drnn.losses import DiscriminativeLoss
  model = model_lib.build_model_from_options(dataclasses.asdict(options))
  if options.scan_unroll:
    model_lib.run_recurrences_as_scan(model, options.scan_unroll)
  else:  # Training sequences are unrolled whatever their length (XLA cannot differentiate the scan loop).
    model_lib.unroll_recurrences(model, options.sequence_length + options.context)
  schedule = keras.optimizers.schedules.CosineDecay(
      0.0, decay_steps=max(options.train_steps - options.warmup_steps, 1), alpha=0.05,
      warmup_target=options.learning_rate, warmup_steps=options.warmup_steps)
  optimizer = keras.optimizers.Adam(schedule, global_clipnorm=options.clip_norm or None)
  model.compile(optimizer, DiscriminativeLoss(options.loss, options.discriminative_weight), jit_compile=jit_compile)
  optimizer.build(model.trainable_variables)
  # Build the compiled loss on one zero frame now: fit would build it from its first batch, which
  # under a multi-worker strategy is a per-replica value it cannot read.
  frame = np.zeros((1, 1, model.input_shape[-1]), np.float32)
  model.compute_loss(y=np.zeros((1, 1, 2, frame.shape[-1]), np.float32), y_pred=model(frame))
  return model


def load_teacher(options, model):
  """The --teacher_model as a function (mixture, targets) -> distilled targets, or None.

  Distillation: each batch's targets become (1 - w) |sources| + w teacher(mixture), w =
  --teacher_weight: the bigger model's estimates on every remixed, shifted and perturbed example.
  """
  if not options.teacher_model:
    return None
  from tf_drnn.model import audio_config, describe
  from tf_drnn.models import load_model
  teacher = load_model(options.teacher_model)
  if audio_config(teacher) != audio_config(model) or describe(teacher)["output_format"] == "one_source":
    raise UserError(f"--teacher_model={options.teacher_model}: needs a two-source model with the same audio "
                    f"settings as the one trained ({describe(teacher)})")
  teacher.trainable = False
  weight = float(options.teacher_weight)

  def distilled(mixture, targets):
    return mixture, (1.0 - weight) * targets + weight * teacher(mixture, training=False)
  return distilled


def _keras_callback(cls):
  """`cls` as a keras.callbacks.Callback (Keras loads only when training does)."""
  import keras
  return type(cls.__name__, (cls, keras.callbacks.Callback), {})


def dev_result(results):
  """{"score": mean over collections of each one's vocal dev score, "metric": {name: its metric},
  "collections": {name: global metrics}} from {name: (global metrics, metric name)}."""
  scores = [metrics["vocals"][key] for metrics, key in results.values()]
  return {"score": float(sum(scores) / len(scores)),
          "metric": {name: key for name, (_, key) in results.items()},
          "collections": {name: metrics for name, (metrics, _) in results.items()}}


def describe_dev(result):
  """One line: the dev score and each collection's part of it."""
  parts = [f"{name} vocal {key} {result['collections'][name]['vocals'][key]:.2f} dB"
           for name, key in result["metric"].items()]
  return f"dev score {result['score']:.2f} dB ({'; '.join(parts)})"


class TrainingProgress:
  """The Keras callback of a run: counts steps, stops at --train_steps or --max_seconds, stops on a
  non-finite loss, and every --eval_every steps (each Keras epoch) scores the dev clips, keeps the
  best model and saves the state. Only the chief writes files."""

  def __init__(self, model, options, state, dev_sets, backend):
    super().__init__()
    self.trained_model, self.options, self.state, self.dev_sets = model, options, state, dev_sets
    self.backend = backend
    self.best_result = None
    self.started = time.time()
    self.session_start_step = state.step
    self.write_options = options_writer(options)

  def seconds(self):
    return self.state.seconds_before + time.time() - self.started

  def on_train_batch_end(self, batch, logs=None):
    self.state.step += 1
    loss = float((logs or {}).get("loss", 0.0))
    if not math.isfinite(loss):  # Stop, keeping the last good state on disk.
      raise RuntimeError(f"training diverged at step {self.state.step} (loss {loss}); "
                         "lower --learning_rate or --clip_norm")
    out_of_time = self.options.max_seconds and time.time() - self.started > self.options.max_seconds
    if self.state.step >= self.options.train_steps or out_of_time:
      if out_of_time:
        print(f"\nstopping at step {self.state.step}: --max_seconds={self.options.max_seconds:g} reached",
              flush=True)
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    result = self.evaluate_dev()
    step = self.state.step
    if result is not None:
      score = result["score"]
      if logs is not None:
        logs["dev_score"] = score
      log.info("step %d: %s (best %.2f dB)", step, describe_dev(result), self.state.best_dev)
      print(f"step {step}: {describe_dev(result)}", flush=True)
    else:
      score = float(step)  # No dev clips: the last model is kept.
    if score > self.state.best_dev or not os.path.exists(os.path.join(self.options.model_dir, "model.keras")):
      self.state.best_dev = max(score, self.state.best_dev)
      self.best_result = result
      self.keep_best(step, result)
    self.save()

  def evaluate_dev(self):
    """The dev result (:func:`dev_result`) of the model now, or None without dev clips."""
    if not self.dev_sets:
      return None
    from tf_drnn.scoring import evaluate_tracks
    from tf_drnn.models import offline_estimates
    results = {}
    for dev in self.dev_sets:  # tf_drnn.train_options.Collection, with their dev tracks loaded
      scores, metrics = evaluate_tracks(lambda mixture: offline_estimates(self.trained_model, mixture), dev.dev,
                                        voice_db=dev.dev_voice_db)
      for skipped in (s for s in scores if s.skipped):
        log.warning("%s dev clip %s not scored: %s", dev.name, skipped.name, skipped.skipped)
      results[dev.name] = (metrics, dev.dev_score)
    return dev_result(results)

  def keep_best(self, step, result):
    """Writes model.keras and best.json: the model of `step` is the best so far."""
    if self.backend.is_chief:
      from tf_drnn.models import save_model
      save_model(self.trained_model, os.path.join(self.options.model_dir, "model.keras"))
      write_json(os.path.join(self.options.model_dir, "best.json"), {
          "step": step, "dev": result, "options": dataclasses.asdict(self.options),
          "training_seconds": self.seconds()})

  def save(self):
    """state.npz (options.json with the session's first) and training.json."""
    if not self.backend.is_chief:
      return
    self.write_options()
    self.state.save(self.seconds())
    write_json(os.path.join(self.options.model_dir, "training.json"), training_record(
        self.backend.trainer, self.state.step, self.options.train_steps, self.seconds(), self.backend.hardware()))

  def score_starting_model(self):
    """--init_model: the starting model is the one to beat, scored as step 0 and kept until
    something is better (a rerun then finds a state to resume)."""
    result = self.evaluate_dev()
    if result is None:
      return
    self.state.best_dev = result["score"]
    print(f"step 0 ({self.options.init_model}): {describe_dev(result)}", flush=True)
    self.best_result = result
    self.keep_best(0, result)
    self.save()

  def finish(self):
    log.info("trained steps %d..%d in %.0f s", self.session_start_step, self.state.step,
             time.time() - self.started)
    if self.best_result is None and self.dev_sets and os.path.exists(
        os.path.join(self.options.model_dir, "best.json")):
      with open(os.path.join(self.options.model_dir, "best.json")) as f:
        self.best_result = json.load(f).get("dev")


class TrainingState:
  """The checkpoint of a run, one format on both backends: MODEL_DIR/state.npz holds every model
  and optimizer variable (in their Keras order), the step, the best dev score and the training
  time. Saving moves an intact earlier state.npz to state.previous.npz first; loading falls back
  to it (with one log line) when state.npz cannot be read."""

  def __init__(self, model, options):
    self.model, self.optimizer = model, model.optimizer
    self.path = os.path.join(options.model_dir, "state.npz")
    self.previous_path = os.path.join(options.model_dir, "state.previous.npz")
    self.step, self.best_dev, self.seconds_before = 0, -math.inf, 0.0
    self._saved_step = None  # The step of the intact state.npz on disk, if any.

  def _variables(self):
    return (("model", self.model.variables), ("optimizer", self.optimizer.variables))

  def load(self):
    """Assigns the first intact state; True if one was there. If none can be read, a UserError."""
    import zipfile
    import numpy as np
    existing = [p for p in (self.path, self.previous_path) if os.path.exists(p)]
    for i, path in enumerate(existing):
      try:
        with np.load(path) as saved:
          for prefix, variables in self._variables():
            for j, variable in enumerate(variables):
              variable.assign(saved[_state_key(prefix, j)])
          self.step, self.seconds_before = int(saved["step"]), float(saved["seconds"])
          self.best_dev = float(saved["best_dev"])
        self._saved_step = self.step if path == self.path else None
        if path != self.path:  # The model.keras on disk may be better than that older state knew.
          self.best_dev = max(self.best_dev, kept_score(os.path.dirname(path)))
        return True
      except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        reason = last_line(error)
        later = (f"falling back to {os.path.basename(existing[i + 1])}" if i + 1 < len(existing)
                 else "and no earlier state is left")
        log.warning("%s cannot be read (%s); %s", path, reason, later)
    if existing:
      raise UserError(f"{os.path.dirname(existing[0])}: no intact state to resume from (none of "
                      f"{', '.join(os.path.basename(p) for p in existing)} can be read); {RESTART_CHOICE}")
    return False

  def save(self, seconds):
    import numpy as np
    from keras import ops
    if self._saved_step is not None and self._saved_step < self.step:
      os.replace(self.path, self.previous_path)
    arrays = {_state_key(prefix, j): ops.convert_to_numpy(variable.value)
              for prefix, variables in self._variables() for j, variable in enumerate(variables)}
    with atomic_output(self.path) as tmp, open(tmp, "wb") as f:
      np.savez(f, step=self.step, seconds=seconds, best_dev=self.best_dev, **arrays)
    self._saved_step = self.step


def _state_key(prefix, index):
  """The name of variable `index` of the model's or the optimizer's (`prefix`) variables in state.npz."""
  return f"{prefix}_{index}"


def model_from_state(path):
  """The model of a run's MODEL_DIR/state.npz (its latest step, not its kept model), rebuilt from
  MODEL_DIR/options.json."""
  import numpy as np

  from tf_drnn.model import build_model_from_options
  with open(os.path.join(os.path.dirname(path), "options.json")) as f:
    model = build_model_from_options(json.load(f))
  with np.load(path) as saved:
    for j, variable in enumerate(model.variables):
      variable.assign(saved[_state_key("model", j)])
  return model


def kept_score(model_dir):
  """The dev score of the model.keras kept in model_dir (its best.json), or -inf without one."""
  try:
    with open(os.path.join(model_dir, "best.json")) as f:
      dev = json.load(f).get("dev") or {}
    if not os.path.exists(os.path.join(model_dir, "model.keras")):
      return -math.inf
    return float(dev["score"]) if "score" in dev else -math.inf
  except (OSError, ValueError, KeyError, TypeError):
    return -math.inf


class _Backend:
  """What differs between Keras backends, and nothing else: device placement and distribution,
  how the example generator reaches `fit`, TensorBoard, and the hardware record."""

  def __init__(self, options):
    import keras
    self.name = keras.backend.backend()
    self.options = options
    self.trainer = f"keras-{self.name}"
    self.strategy = None
    self.is_chief = True
    if self.name == "tensorflow":
      self.strategy = make_strategy(options.strategy)
      self.is_chief = _is_chief(self.strategy)
    elif self.name == "jax":
      if options.strategy == "multi_worker":
        raise UserError("--strategy=multi_worker needs the TensorFlow backend (tf-drnn-train)")
      if options.strategy == "mirrored":  # Data parallel over every local accelerator.
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    else:
      raise UserError(f"tf-drnn-train runs under the tensorflow or jax Keras backend, not {self.name!r}")
    # XLA: always under JAX; under TensorFlow by --jit_compile on one device.
    self.jit_compile = True if self.name == "jax" else bool(options.jit_compile and options.strategy == "default")

  def prepare(self, model):
    """Under a tf.distribute strategy, Keras 3 (3.15) builds the model at the start of `fit` from a
    first batch that it takes from the data and reduces across replicas, which fails for a
    (mixture, targets) pair under MultiWorkerMirroredStrategy. compiled_model has built the model,
    loss and optimizer already, so that step has nothing to do: skip it (and keep the batch).
    Its multi-worker mean of each step's logs (reduced over axis 0) fails on scalars: give it the
    logs as [1] vectors (the running loss shown and checked for NaN, not what trains)."""
    if self.strategy is not None and self.options.strategy != "default":
      model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if self.options.strategy == "multi_worker":
      import tensorflow as tf
      train_step = model.train_step
      model.train_step = lambda data: {k: tf.reshape(v, [1]) for k, v in train_step(data).items()}

  def scope(self):
    import contextlib
    return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

  def dataset(self, batches, options, bins, transform=None):
    """The generator of (mixture [B, L, bins], targets [B, L, 2, bins]) batches as `fit` takes it on
    this backend, each batch through `transform` (mixture, targets) -> (mixture, targets) if given."""
    if self.name != "tensorflow":
      if transform is not None:
        from keras import ops
        batches = (tuple(ops.convert_to_numpy(x) for x in transform(*batch)) for batch in batches)
      return prefetch(batches)
    import tensorflow as tf
    signature = (tf.TensorSpec([options.batch_size, options.sequence_length, bins], tf.float32),
                 tf.TensorSpec([options.batch_size, options.sequence_length, 2, bins], tf.float32))
    dataset = tf.data.Dataset.from_generator(lambda: batches, output_signature=signature)
    if transform is not None:
      dataset = dataset.map(transform)
    data_options = tf.data.Options()
    data_options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # No autotuning thread: the pipeline has nothing to tune (one generator, a fixed prefetch), and an
    # iterator freed by the garbage collector waits for that thread to wake (seconds, with the GIL held).
    data_options.autotune.enabled = False
    return dataset.with_options(data_options).prefetch(2)

  def callbacks(self):
    if self.name != "tensorflow" or not self.is_chief:
      return []
    import keras
    return [keras.callbacks.TensorBoard(os.path.join(self.options.model_dir, "logs"), update_freq=50)]

  def hardware(self):
    """What training runs on, e.g. "1 GPU(s)", "CPU (2 cores, x86_64)" or "NVIDIA H200 (gpu, JAX)"."""
    import platform
    if self.name == "jax":
      import jax
      device = jax.devices()[0]
      return f"{len(jax.devices())} x {device.device_kind} ({device.platform}, Keras JAX backend)"
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    return f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def until_set(batches, stop):
  """The batches until the threading.Event `stop` is set. The example generator is endless: once
  training is over it must end, or a data thread may still be inside it when the garbage collector
  frees the tf.data iterator, whose destructor then waits for that thread while holding the GIL the
  thread needs (seconds of stall, seen as pauses in whatever ran next)."""
  for batch in batches:
    if stop.is_set():
      return
    yield batch


def prefetch(generator, size=4):
  """Runs `generator` in a daemon thread, `size` items ahead of the consumer (the same items, in
  the same order)."""
  items = queue.Queue(maxsize=size)

  def produce():
    for item in generator:
      items.put(item)

  threading.Thread(target=produce, daemon=True).start()
  while True:
    yield items.get()


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


def training_record(trainer, steps, train_steps, seconds, hardware):
  """The training.json of a run (tools/reproduce.py and tools/bundle.py read it): complete once
  steps >= train_steps; seconds: the wall time of the run so far, resumed stretches included.
  "time_budgeted" stays in the record (always False), as the bundled models' records have it."""
  return {"trainer": trainer, "steps": steps, "train_steps": train_steps, "complete": steps >= train_steps,
          "time_budgeted": False, "training_seconds": seconds, "hardware": hardware}


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
  defaults = TrainOptions(data_dir="", model_dir="")
  _define_data_flags(defaults)
  _define_model_flags(defaults)
  _define_objective_flags(defaults)
  _define_augmentation_flags(defaults)
  _define_run_flags(defaults)
  flags.mark_flags_as_required(["data_dir", "model_dir"])


def _define_data_flags(defaults):
  """Where the data and the model go: --data_dir, --model_dir, --dataset and how collections mix."""
  from absl import flags
  from tf_drnn.flags_common import define_data_dir, define_dataset, define_dev_clips
  define_data_dir(several=True)
  flags.DEFINE_string("model_dir", None, "Where the model, its state (to resume) and logs go.")
  define_dataset(defaults.dataset, several=True)
  flags.DEFINE_list("dataset_weights", [], "Relative chance of each --dataset collection, e.g. 0.5,0.5 "
                    "(default: in proportion to their training examples).")
  flags.DEFINE_enum("stem_channels", defaults.stem_channels, ["mean", "each"],
                    "Multitrack songs train on their channel mean, or also on each channel alone (each).")
  define_dev_clips(defaults.dev_clips)


def _define_model_flags(defaults):
  """The model: architecture, context, STFT and layer sizes (saved with it)."""
  from absl import flags
  from tf_drnn.choices import ARCHITECTURES, OUTPUT_FORMATS
  from tf_drnn.config import WINDOWS
  flags.DEFINE_enum("architecture", defaults.architecture, ARCHITECTURES,
                    "dnn, drnn1..drnn3 (recurrence on hidden layer k) or srnn (on all).")
  flags.DEFINE_integer("context", defaults.context, "Input frames per output frame (1, 3, 5).")
  flags.DEFINE_integer("lookahead", defaults.lookahead, "Context frames after the current one: -1 centres the "
                       "context; 0 makes it causal (no frame of delay, for live use).")
  flags.DEFINE_integer("n_fft", defaults.n_fft, "The model's STFT frame (analysis window), samples at 16 kHz.")
  flags.DEFINE_integer("hop_length", defaults.hop_length, "The model's STFT hop, samples at 16 kHz.")
  flags.DEFINE_enum("window", defaults.window, WINDOWS, "sine (the paper's, hop = n_fft / 2) or asymmetric_sine "
                    "(a short synthesis window of 2 hops: output latency of 2 hops with hop < n_fft / 2).")
  flags.DEFINE_integer("num_layers", defaults.num_layers, "Hidden layers.")
  flags.DEFINE_integer("hidden_units", defaults.hidden_units, "ReLU units per hidden layer.")
  flags.DEFINE_enum("output_format", defaults.output_format, OUTPUT_FORMATS,
                    "masked: two heads + joint soft mask; two_sources: no mask; one_source: vocals only.")


def _define_objective_flags(defaults):
  """The loss, the steps and the optimizer."""
  from absl import flags
  from tf_drnn.choices import LOSSES
  flags.DEFINE_enum("loss", defaults.loss, LOSSES, "Divergence: mse or generalized KL.")
  flags.DEFINE_float("discriminative_weight", defaults.discriminative_weight,
                     "Weight gamma of the discriminative term (0: plain objective).")
  flags.DEFINE_integer("train_steps", defaults.train_steps, "Total optimizer steps.")
  flags.DEFINE_integer("batch_size", defaults.batch_size, "Sequences per step (global).")
  flags.DEFINE_integer("sequence_length", defaults.sequence_length, "Frames per training sequence.")
  flags.DEFINE_float("learning_rate", defaults.learning_rate, "Peak Adam learning rate.")
  flags.DEFINE_integer("warmup_steps", defaults.warmup_steps, "Linear warm-up steps before cosine decay.")
  flags.DEFINE_float("clip_norm", defaults.clip_norm, "Global gradient-norm clipping (0: none).")


def _define_augmentation_flags(defaults):
  """How training examples are mixed: shifts, remixes, voice levels, equalizers, speed perturbation."""
  from absl import flags
  flags.DEFINE_integer("circular_shift", defaults.circular_shift,
                       "Step in samples between circular shifts of the accompaniment (0: none).")
  flags.DEFINE_bool("random_shift", defaults.random_shift,
                    "Roll the accompaniment by random offsets instead of multiples of --circular_shift.")
  flags.DEFINE_float("remix_probability", defaults.remix_probability,
                     "Chance of pairing a voice with another training clip's accompaniment.")
  flags.DEFINE_float("remix_across_collections", defaults.remix_across_collections,
                     "With several --dataset collections: share of the remixes that pair a voice with "
                     "the accompaniment of a clip of any collection instead of its own.")
  flags.DEFINE_list("voice_db_range", list(defaults.voice_db_range),
                    "LO,HI: mix each training example with the voice a uniformly drawn LO..HI dB over "
                    "the accompaniment (e.g. -10,5); empty: 0 dB, as in the paper. With several "
                    "collections, one LO,HI for all or one per collection (e.g. 0,0,-14,3).")
  flags.DEFINE_float("equalizer_db", defaults.equalizer_db,
                     "> 0: pass each example's voice and accompaniment through random equalizers of their own: "
                     "gains drawn uniformly within +-this many dB at octaves from 125 Hz to 8 kHz (0: none).")
  flags.DEFINE_list("speed_factors", list(defaults.speed_factors),
                    "Also train on every clip played this many times faster (pitch and tempo), "
                    "e.g. 0.89,0.94,1.06,1.12 for +-1 and +-2 semitones.")
  flags.register_validator("speed_factors", _positive_numbers, "speed factors must be positive numbers")


def _define_run_flags(defaults):
  """The seed, the starting and teacher models, --restart, devices, saving and compilation."""
  from absl import flags
  flags.DEFINE_integer("seed", defaults.seed, "Random seed.")
  flags.DEFINE_string("teacher_model", defaults.teacher_model,
                      "Distillation: a trained model (a .keras file, model_dir or bundled name, e.g. drnn2) whose "
                      "estimates on each training example are also targets.")
  flags.DEFINE_float("teacher_weight", defaults.teacher_weight,
                     "With --teacher_model: targets = (1 - w) source magnitudes + w teacher estimates.")
  flags.DEFINE_string("init_model", defaults.init_model,
                      "Start from this trained model's weights (a .keras file, model_dir or bundled name, "
                      "e.g. drnn2) instead of a random initialization: fine-tuning.")
  flags.DEFINE_bool("restart", defaults.restart,
                    "Discard the earlier run in --model_dir (model, records, state, TensorBoard events) and "
                    "train from step 0. Without it, a model_dir that holds a run which cannot be resumed is refused.")
  flags.DEFINE_enum("strategy", defaults.strategy, STRATEGIES,
                    "default: one device (GPU if present); mirrored: all local GPUs (or CPUs); "
                    "multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG.")
  flags.DEFINE_integer("eval_every", defaults.eval_every, "Steps between dev evaluations and saves of the state.")
  flags.DEFINE_bool("jit_compile", defaults.jit_compile,
                    "Compile the training step with XLA (TensorFlow backend, one device; JAX always does).")
  flags.DEFINE_float("max_seconds", defaults.max_seconds,
                     "Stop after this much wall time, saving state and model (0: no limit); rerun to resume.")
  flags.DEFINE_integer("scan_unroll", defaults.scan_unroll,
                       "> 0: run recurrences as a scan, this many steps per iteration (faster to compile).")


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
  try:
    kwargs["voice_db_range"] = tuple(float(v) for v in kwargs["voice_db_range"])
  except ValueError:
    kwargs["voice_db_range"] = tuple(kwargs["voice_db_range"])  # check_options names the problem
  try:
    kwargs["dataset_weights"] = tuple(float(w) for w in kwargs["dataset_weights"])
  except ValueError:
    raise UserError(f"--dataset_weights={','.join(kwargs['dataset_weights'])}: expected numbers") from None
  return TrainOptions(**kwargs)


def checked_options():
  """The TrainOptions of the parsed flags, after the checks that need no TensorFlow (possible
  values; stray arguments are refused before main): a UserError otherwise."""
  options = options_from_flags()
  check_options(options)
  return options


def main(argv):
  from tf_drnn.cli_util import import_tensorflow_quietly, run_guarded
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  del argv  # run_app's command_main refused stray arguments before main
  options = run_guarded(checked_options)
  if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import_tensorflow_quietly()
  result = run_guarded(lambda: train(options))
  if result:
    print(json.dumps({"best_dev": result}, indent=2))


def run():
  """tf-drnn-train: the Keras backend of KERAS_BACKEND (default TensorFlow)."""
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)  # main imports it after checking the flags


def run_jax():
  """tf-drnn-train-jax: the same command under Keras' JAX backend (machines without TensorFlow)."""
  os.environ["KERAS_BACKEND"] = "jax"  # Before Keras is imported (the command line only).
  run()


if __name__ == "__main__":
  run()
