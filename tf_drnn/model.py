"""The DRNN model family of Huang et al. (ISMIR 2014) as a Keras 3 functional model.

    magnitude [B, T, bins] ──► ZeroPadFrames ──► SpectralFeatures ──► ContextFrames
        ──► hidden ReLU layers (Dense, or ReluRecurrent where the architecture recurs)
        ──► vocals_head / accompaniment_head (linear) ──► DropFrames ──► SourceOutputs
        ──► source magnitudes [B, T, S, bins]   (S = 2, or 1 for "one_source")

The context window looks d frames ahead (centred by default: frame t sees frames
t-(context-1-d)..t+d, d = (context - 1) / 2; d = 0 for a causal, low-latency model), so a
stream lags by d frames. The offline model is defined as exactly what a stream computes
from zero state: the input is padded with context - 1 zero frames on the left (the stream's
empty buffer) and d on the right (the stream's flush); the recurrence runs over T + d windows
and the first d outputs (the stream's pre-roll) are dropped. `tf_drnn.streaming` runs the very
same layers chunk by chunk with the state passed in and out as tensors.
"""
import keras
import numpy as np
from keras import ops

from tf_drnn.choices import OUTPUT_FORMATS, recurrent_layer_indices
from tf_drnn.config import DEFAULT_AUDIO_CONFIG, AudioConfig

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
  """Log-magnitude features, standardized per frequency bin; it also carries the model's AudioConfig.

  Each frame is divided by its mean magnitude, log-compressed and standardized with
  per-bin statistics of the training mixtures (non-trainable weights, set by
  :meth:`set_statistics`). Scaling the input by any gain leaves these features unchanged
  (up to `epsilon`), so a mixture at -40 dBFS is separated like one at 0 dBFS.

  audio_config: the AudioConfig (as a dict) of the STFT the model was trained on; it is saved
  with the model and read back by :func:`audio_config`. Models saved before it was recorded
  load with the default config, which is what they were trained with.

  Input: linear magnitudes [..., bins]. Output: features [..., bins].
  """

  def __init__(self, floor=1e-3, epsilon=1e-9, audio_config=None, **kwargs):
    if kwargs.pop("level_feature", False):
      raise ValueError("this model was trained with --level_feature, an experiment removed after commit "
                       "441b507; load it with that commit")
    kwargs.pop("level_clip", None)
    super().__init__(**kwargs)
    self.floor, self.epsilon = float(floor), float(epsilon)
    self.audio_config = AudioConfig(**audio_config) if audio_config else DEFAULT_AUDIO_CONFIG

  def build(self, input_shape):
    bins = input_shape[-1]
    self.mean = self.add_weight(name="mean", shape=(bins,), initializer="zeros", trainable=False)
    self.std = self.add_weight(name="std", shape=(bins,), initializer="ones", trainable=False)

  def log_features(self, magnitude):
    """Frame-normalized log magnitudes before standardization."""
    frame_level = ops.mean(magnitude, axis=-1, keepdims=True)
    return ops.log(magnitude / (frame_level + self.epsilon) + self.floor)

  def call(self, magnitude):
    return (self.log_features(magnitude) - self.mean) / self.std

  def set_statistics(self, magnitudes):
    """Sets mean/std from training magnitudes [..., bins] (a NumPy array or tensor)."""
    if not self.built:
      self.build(np.shape(magnitudes))
    magnitudes = np.reshape(np.asarray(ops.convert_to_numpy(magnitudes), np.float32), [-1, self.mean.shape[0]])
    features = ops.convert_to_numpy(self.log_features(magnitudes))
    self.mean.assign(features.mean(axis=0))
    self.std.assign(np.maximum(features.std(axis=0), 1e-3))

  def get_config(self):
    return {**super().get_config(), "floor": self.floor, "epsilon": self.epsilon,
            "audio_config": self.audio_config.as_dict()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContextFrames(keras.layers.Layer):
  """Stacks `context` consecutive frames: [B, N, F] -> [B, N - context + 1, context * F] (valid).

  lookahead: frames after the current one in each window (None: centred, (context - 1) / 2).
  """

  def __init__(self, context, lookahead=None, **kwargs):
    super().__init__(**kwargs)
    if context < 1 or context % 2 == 0:
      raise ValueError(f"context must be an odd number of frames >= 1, got {context}")
    self.context = int(context)
    self.lookahead = (self.context - 1) // 2 if lookahead is None else int(lookahead)
    if not 0 <= self.lookahead < self.context:
      raise ValueError(f"lookahead must be 0 ... {self.context - 1} frames, got {lookahead}")

  @property
  def delay(self):
    """Look-ahead in frames: the output for frame t needs input up to t + delay."""
    return self.lookahead

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
    return {**super().get_config(), "context": self.context, "lookahead": self.lookahead}


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


# The names of the parts of a built model: only build_model and ModelParts use them.
_FEATURES, _CONTEXT, _SOURCES = "features", "context", "sources"
_HEADS = ("vocals_head", "accompaniment_head")


def _hidden_name(index):
  return f"hidden_{index}"


def build_model(architecture="drnn2", context=3, num_layers=3, hidden_units=1000,
                output_format="masked", config=DEFAULT_AUDIO_CONFIG, name=None, lookahead=None):
  """Builds the functional model: magnitude [B, T, bins] -> source magnitudes [B, T, S, bins].

  Args:
    architecture: "dnn", "drnn1".."drnn3" (recurrence on hidden layer k) or "srnn" (all).
    context: Input frames per output frame (odd: 1, 3, 5).
    num_layers: Hidden layers.
    hidden_units: ReLU units per hidden layer.
    output_format: "masked" (default), "two_sources" or "one_source".
    config: The AudioConfig of its STFT (bins = config.num_bins); saved with the model.
    lookahead: Context frames after the current one (None: centred; 0: causal, no frame of delay).
  """
  recurrent = recurrent_layer_indices(architecture, num_layers)
  if output_format not in OUTPUT_FORMATS:
    raise ValueError(f"unknown output format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
  bins = config.num_bins
  context_frames = ContextFrames(context, lookahead, name=_CONTEXT)
  delay = context_frames.delay
  magnitude = keras.Input(shape=(None, bins), name="magnitude")
  padded = ZeroPadFrames(context - 1, delay, name="pad")(magnitude)
  features = SpectralFeatures(audio_config=config.as_dict(), name=_FEATURES)(padded)
  hidden = context_frames(features)
  for index in range(1, num_layers + 1):
    if index in recurrent:
      hidden, _ = ReluRecurrent(hidden_units, name=_hidden_name(index))(hidden)
    else:
      hidden = keras.layers.Dense(hidden_units, activation="relu", name=_hidden_name(index))(hidden)
  head_names = _HEADS[:1] if output_format == "one_source" else _HEADS
  heads = [DropFrames(delay, name=f"{head}_drop")(keras.layers.Dense(bins, name=head)(hidden))
           for head in head_names]
  outputs = SourceOutputs(output_format, name=_SOURCES)(heads, magnitude)
  return keras.Model(magnitude, outputs, name=name or f"{architecture}_context{context}")


def build_model_from_options(options):
  """build_model from a run's options (a mapping such as options.json or asdict(TrainOptions));
  options saved before the audio settings and look-ahead were options get the defaults."""
  default = DEFAULT_AUDIO_CONFIG
  config = AudioConfig(default.sample_rate, options.get("n_fft", default.n_fft),
                       options.get("hop_length", default.hop_length), options.get("window", default.window))
  lookahead = options.get("lookahead")
  return build_model(options["architecture"], options["context"], options["num_layers"],
                     options["hidden_units"], options["output_format"], config,
                     lookahead=None if lookahead is None or lookahead < 0 else lookahead)


class ModelParts:
  """The parts of a model built by :func:`build_model` (or loaded from its file), by role.

  features (SpectralFeatures), context (ContextFrames), hidden (hidden layers in order: Dense or
  ReluRecurrent), heads (the linear output layers: vocals, then accompaniment unless one-source),
  sources (SourceOutputs); delay (look-ahead frames), num_bins, audio_config.
  """

  def __init__(self, model):
    layers = {layer.name: layer for layer in model.layers}
    self.features = layers[_FEATURES]
    self.context = layers[_CONTEXT]
    self.sources = layers[_SOURCES]
    self.hidden = [layers[_hidden_name(i)] for i in range(1, len(layers) + 1) if _hidden_name(i) in layers]
    self.heads = [layers[name] for name in _HEADS if name in layers]
    self.delay = self.context.delay
    self.num_bins = int(model.input_shape[-1])
    self.audio_config = self.features.audio_config


def audio_config(model):
  """The AudioConfig a model was trained with (saved in its file)."""
  return ModelParts(model).audio_config


def masks_from_magnitudes(source_magnitudes, mixture_magnitude, binary=False):
  """Source magnitudes [..., S, bins] and |X| [..., bins] -> masks [..., 2, bins] (vocals, accompaniment).

  In keras.ops (any backend's tensors or NumPy arrays). A one-source model's accompaniment mask
  is what the vocals leave: max(1 - m_vocals, 0). binary: 1 where a source's mask is the larger.
  """
  masks = source_magnitudes / (ops.expand_dims(mixture_magnitude, -2) + 1e-12)
  if masks.shape[-2] == 1:
    masks = ops.concatenate([masks, ops.relu(1.0 - masks)], axis=-2)
  if binary:
    vocals_win = ops.cast(masks[..., 0, :] >= masks[..., 1, :], masks.dtype)
    masks = ops.stack([vocals_win, 1.0 - vocals_win], axis=-2)
  return masks


def run_recurrences_as_scan(model, unroll):
  """Makes every ReluRecurrent of `model` run as a scan of `unroll` steps per iteration, whatever
  the sequence length (a shorter program than a full unroll: faster to compile, e.g. for sRNN).
  Set on the layer instances only; nothing of it is saved with the model."""
  for layer in model.layers:
    if isinstance(layer, ReluRecurrent):
      layer.max_unroll = 0
      layer.scan_unroll = int(unroll)


def unroll_recurrences(model, steps):
  """Makes every ReluRecurrent of `model` unroll sequences of up to `steps` frames (a training sequence:
  XLA cannot differentiate the scan loop). Set on the layer instances only, as run_recurrences_as_scan."""
  for layer in model.layers:
    if isinstance(layer, ReluRecurrent):
      layer.max_unroll = max(layer.max_unroll, int(steps))


def describe(model):
  """The structure of a built model, read back from its layers (works on loaded models)."""
  parts = ModelParts(model)
  recurrent = tuple(i + 1 for i, layer in enumerate(parts.hidden) if isinstance(layer, ReluRecurrent))
  if not recurrent:
    architecture = "dnn"
  elif len(recurrent) == len(parts.hidden) and len(parts.hidden) > 1:
    architecture = "srnn"
  else:
    architecture = f"drnn{recurrent[0]}"
  return {"architecture": architecture, "context": parts.context.context, "num_layers": len(parts.hidden),
          "lookahead": parts.delay, "hidden_units": parts.hidden[0].units,
          "output_format": parts.sources.output_format,
          "recurrent_layers": recurrent, "num_bins": parts.num_bins,
          "audio_config": parts.audio_config.as_dict()}
