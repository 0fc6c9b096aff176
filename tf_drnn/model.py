"""The DRNN model family of Huang et al. (ISMIR 2014) as a Keras 3 functional model.

    magnitude [B, T, bins] ──► ZeroPadFrames ──► SpectralFeatures ──► ContextFrames
        ──► hidden ReLU layers (Dense, or ReluRecurrent where the architecture recurs)
        ──► vocals_head / accompaniment_head (linear) ──► DropFrames ──► SourceOutputs
        ──► source magnitudes [B, T, S, bins]   (S = 2, or 1 for "one_source")

The context window is centred: frame t sees frames t-d..t+d, d = (context - 1) / 2, so
a stream lags by d frames. The offline model is defined as exactly what a stream computes
from zero state: the input is padded with 2d zero frames on the left (the stream's empty
buffer) and d on the right (the stream's flush); the recurrence runs over T + d windows and
the first d outputs (the stream's pre-roll) are dropped. `tf_drnn.streaming` runs the very
same layers chunk by chunk with the state passed in and out as tensors.
"""
import keras
import numpy as np
from keras import ops

from tf_drnn.choices import OUTPUT_FORMATS, recurrent_layer_indices
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
_PACKAGE = "tf_drnn"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ZeroPadFrames(keras.layers.Layer):
  """Pads [B, T, F] with `left` and `right` zero frames along time."""

  def __init__(self, left, right, **kwargs):
    super().__init__(**kwargs)
    self.left, self.right = int(left), int(right)

  def call(self, frames):
    return ops.pad(frames, [[0, 0], [self.left, self.right], [0, 0]])

  def compute_output_shape(self, input_shape):
    t = None if input_shape[1] is None else input_shape[1] + self.left + self.right
    return (input_shape[0], t, input_shape[2])

  def get_config(self):
    return {**super().get_config(), "left": self.left, "right": self.right}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpectralFeatures(keras.layers.Layer):
  """Log-magnitude features, standardized per frequency bin, with an optional level feature.

  Each frame is divided by its mean magnitude, log-compressed and standardized with
  per-bin statistics of the training mixtures (non-trainable weights, set by
  :meth:`set_statistics`). Scaling the input by any gain leaves these features unchanged
  (up to `epsilon`), so a mixture at -40 dBFS is separated like one at 0 dBFS.

  With `level_feature`, one more feature per frame carries what that normalization removes:
  the frame's log mean magnitude, standardized and clipped to +-`level_clip`. It tells
  loud frames from quiet ones (a pause in the voice lowers the mixture's level); the model
  is then level-dependent, so train it over a range of levels (`--level_range_db`).

  Input: linear magnitudes [..., bins]. Output: features [..., bins (+ 1)].
  """

  def __init__(self, floor=1e-3, epsilon=1e-9, level_feature=False, level_clip=5.0, **kwargs):
    super().__init__(**kwargs)
    self.floor, self.epsilon = float(floor), float(epsilon)
    self.level_feature, self.level_clip = bool(level_feature), float(level_clip)

  def build(self, input_shape):
    bins = input_shape[-1]
    self.mean = self.add_weight(name="mean", shape=(bins,), initializer="zeros", trainable=False)
    self.std = self.add_weight(name="std", shape=(bins,), initializer="ones", trainable=False)
    if self.level_feature:
      self.level_stats = self.add_weight(name="level_stats", shape=(2,), trainable=False,
                                         initializer=keras.initializers.Constant([0.0, 1.0]))

  def log_features(self, magnitude):
    """Frame-normalized log magnitudes before standardization."""
    frame_level = ops.mean(magnitude, axis=-1, keepdims=True)
    return ops.log(magnitude / (frame_level + self.epsilon) + self.floor)

  def log_level(self, magnitude):
    """Log mean magnitude of each frame [..., 1] (floored at 1e-6, about -120 dB)."""
    return ops.log(ops.mean(magnitude, axis=-1, keepdims=True) + 1e-6)

  def call(self, magnitude):
    features = (self.log_features(magnitude) - self.mean) / self.std
    if not self.level_feature:
      return features
    level = (self.log_level(magnitude) - self.level_stats[0]) / self.level_stats[1]
    level = ops.clip(level, -self.level_clip, self.level_clip)
    return ops.concatenate([features, level], axis=-1)

  def set_statistics(self, magnitudes):
    """Sets mean/std from training magnitudes [..., bins] (a NumPy array or tensor)."""
    if not self.built:
      self.build(np.shape(magnitudes))
    magnitudes = np.reshape(np.asarray(ops.convert_to_numpy(magnitudes), np.float32), [-1, self.mean.shape[0]])
    features = ops.convert_to_numpy(self.log_features(magnitudes))
    self.mean.assign(features.mean(axis=0))
    self.std.assign(np.maximum(features.std(axis=0), 1e-3))
    if self.level_feature:
      level = ops.convert_to_numpy(self.log_level(magnitudes))
      self.level_stats.assign(np.array([level.mean(), max(level.std(), 1e-3)], np.float32))

  def get_config(self):
    return {**super().get_config(), "floor": self.floor, "epsilon": self.epsilon,
            "level_feature": self.level_feature, "level_clip": self.level_clip}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContextFrames(keras.layers.Layer):
  """Stacks `context` consecutive frames: [B, N, F] -> [B, N - context + 1, context * F] (valid)."""

  def __init__(self, context, **kwargs):
    super().__init__(**kwargs)
    if context < 1 or context % 2 == 0:
      raise ValueError(f"context must be an odd number of frames >= 1, got {context}")
    self.context = int(context)

  @property
  def delay(self):
    """Look-ahead in frames: the output for frame t needs input up to t + delay."""
    return (self.context - 1) // 2

  def call(self, frames):
    if self.context == 1:
      return frames
    count = ops.shape(frames)[1] - self.context + 1
    windows = [frames[:, i:i + count] for i in range(self.context)]
    return ops.concatenate(windows, axis=-1)

  def compute_output_shape(self, input_shape):
    t = None if input_shape[1] is None else input_shape[1] - self.context + 1
    return (input_shape[0], t, input_shape[2] * self.context)

  def get_config(self):
    return {**super().get_config(), "context": self.context}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReluRecurrent(keras.layers.Layer):
  """A ReLU recurrent layer, h_t = relu(W x_t + U h_{t-1} + b), with explicit state.

  call(inputs [B, T, F], initial_state [B, units] or None) -> (outputs [B, T, units],
  final_state [B, units]). Zero initial state when none is given. The input projection
  runs on all frames at once; only the recurrence is sequential. A short static T (one
  streaming step, a training sequence) is unrolled, so a step exports to TFLite without
  control flow.
  """

  max_unroll = 128  # Longer (or unknown-length) sequences run as a scan loop.
  scan_unroll = 1  # Steps per scan iteration (see run_recurrences_as_scan).

  def __init__(self, units, recurrent_gain=0.5, **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.recurrent_gain = float(recurrent_gain)

  def build(self, input_shape):
    self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                  initializer="glorot_uniform")
    self.recurrent_kernel = self.add_weight(
        name="recurrent_kernel", shape=(self.units, self.units),
        initializer=keras.initializers.Orthogonal(gain=self.recurrent_gain))
    self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

  def call(self, inputs, initial_state=None):
    projected = ops.matmul(inputs, self.kernel) + self.bias
    if initial_state is None:
      initial_state = ops.zeros([ops.shape(inputs)[0], self.units], inputs.dtype)
    steps = inputs.shape[1]
    if steps is not None and steps <= self.max_unroll:
      # Unrolled: one step exports without control flow, and short training sequences
      # train faster (XLA fuses the steps; a while loop's gradient keeps stacks).
      state, outputs = initial_state, []
      for t in range(steps):
        state = ops.relu(projected[:, t] + ops.matmul(state, self.recurrent_kernel))
        outputs.append(state)
      return ops.stack(outputs, axis=1), state

    def step(state, projected_t):
      state = ops.relu(projected_t + ops.matmul(state, self.recurrent_kernel))
      return state, state

    final_state, states = ops.scan(step, initial_state, ops.transpose(projected, [1, 0, 2]),
                                   unroll=self.scan_unroll)
    return ops.transpose(states, [1, 0, 2]), final_state

  def compute_output_spec(self, inputs, initial_state=None):
    batch, steps = inputs.shape[0], inputs.shape[1]
    return (keras.KerasTensor((batch, steps, self.units), inputs.dtype),
            keras.KerasTensor((batch, self.units), inputs.dtype))

  def get_config(self):
    return {**super().get_config(), "units": self.units, "recurrent_gain": self.recurrent_gain}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DropFrames(keras.layers.Layer):
  """Drops the first `count` frames along time: [B, T, F] -> [B, T - count, F]."""

  def __init__(self, count, **kwargs):
    super().__init__(**kwargs)
    self.count = int(count)

  def call(self, frames):
    return frames[:, self.count:]

  def compute_output_shape(self, input_shape):
    t = None if input_shape[1] is None else input_shape[1] - self.count
    return (input_shape[0], t, input_shape[2])

  def get_config(self):
    return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SourceOutputs(keras.layers.Layer):
  """Turns the linear heads into source magnitudes [B, T, S, bins].

  - "masked" (the paper's joint mask layer): y_i = |a_i| / (|a_1| + |a_2| + eps) * |X|.
  - "two_sources": y_i = |a_i| (two heads, no mask).
  - "one_source": y_1 = |a_1| (vocals only).

  call([heads...], mixture_magnitude [B, T, bins]).
  """

  def __init__(self, output_format="masked", epsilon=1e-8, **kwargs):
    super().__init__(**kwargs)
    if output_format not in OUTPUT_FORMATS:
      raise ValueError(f"unknown output format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    self.output_format = output_format
    self.epsilon = float(epsilon)

  def call(self, heads, mixture_magnitude):
    magnitudes = [ops.abs(head) for head in heads]
    if self.output_format == "masked":
      total = magnitudes[0] + magnitudes[1] + self.epsilon
      magnitudes = [m / total * mixture_magnitude for m in magnitudes]
    return ops.stack(magnitudes, axis=-2)

  def get_config(self):
    return {**super().get_config(), "output_format": self.output_format, "epsilon": self.epsilon}


def build_model(architecture="drnn2", context=3, num_layers=3, hidden_units=1000,
                output_format="masked", config=DEFAULT_AUDIO_CONFIG, name=None, dropout=0.0,
                level_feature=False):
  """Builds the functional model: magnitude [B, T, bins] -> source magnitudes [B, T, S, bins].

  Args:
    architecture: "dnn", "drnn1".."drnn3" (recurrence on hidden layer k) or "srnn" (all).
    context: Input frames per output frame (odd: 1, 3, 5).
    num_layers: Hidden layers.
    hidden_units: ReLU units per hidden layer.
    output_format: "masked" (default), "two_sources" or "one_source".
    dropout: Rate of the dropout after each hidden layer (training only; streams skip it).
    level_feature: Also feed each frame's level (see :class:`SpectralFeatures`).
  """
  recurrent = recurrent_layer_indices(architecture, num_layers)
  if output_format not in OUTPUT_FORMATS:
    raise ValueError(f"unknown output format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
  bins = config.num_bins
  delay = (context - 1) // 2
  magnitude = keras.Input(shape=(None, bins), name="magnitude")
  padded = ZeroPadFrames(2 * delay, delay, name="pad")(magnitude)
  features = SpectralFeatures(level_feature=level_feature, name="features")(padded)
  hidden = ContextFrames(context, name="context")(features)
  for index in range(1, num_layers + 1):
    if index in recurrent:
      hidden, _ = ReluRecurrent(hidden_units, name=f"hidden_{index}")(hidden)
    else:
      hidden = keras.layers.Dense(hidden_units, activation="relu", name=f"hidden_{index}")(hidden)
    if dropout > 0:
      hidden = keras.layers.Dropout(dropout, name=f"dropout_{index}")(hidden)
  head_names = ["vocals_head"] if output_format == "one_source" else ["vocals_head", "accompaniment_head"]
  heads = [DropFrames(delay, name=f"{head}_drop")(keras.layers.Dense(bins, name=head)(hidden))
           for head in head_names]
  outputs = SourceOutputs(output_format, name="sources")(heads, magnitude)
  return keras.Model(magnitude, outputs, name=name or f"{architecture}_context{context}")


def build_model_from_options(options):
  """build_model from a run's options (a mapping such as options.json or asdict(TrainOptions))."""
  return build_model(options["architecture"], options["context"], options["num_layers"],
                     options["hidden_units"], options["output_format"], dropout=options.get("dropout", 0.0),
                     level_feature=options.get("level_feature", False))


def run_recurrences_as_scan(model, unroll):
  """Makes every ReluRecurrent of `model` run as a scan of `unroll` steps per iteration, whatever
  the sequence length (the JAX trainer's speed setting: a shorter program than a full unroll).
  Set on the layer instances only; nothing of it is saved with the model."""
  for layer in model.layers:
    if isinstance(layer, ReluRecurrent):
      layer.max_unroll = 0
      layer.scan_unroll = int(unroll)


def describe(model):
  """The structure of a built model, read back from its layers (works on loaded models)."""
  context = model.get_layer("context").context
  hidden = [layer for layer in model.layers if layer.name.startswith("hidden_")]
  recurrent = tuple(i + 1 for i, layer in enumerate(hidden) if isinstance(layer, ReluRecurrent))
  if not recurrent:
    architecture = "dnn"
  elif len(recurrent) == len(hidden) and len(hidden) > 1:
    architecture = "srnn"
  else:
    architecture = f"drnn{recurrent[0]}"
  return {"architecture": architecture, "context": context, "num_layers": len(hidden),
          "hidden_units": hidden[0].units, "output_format": model.get_layer("sources").output_format,
          "recurrent_layers": recurrent, "num_bins": model.input_shape[-1],
          "level_feature": model.get_layer("features").level_feature}
