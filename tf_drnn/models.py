"""Trained models as files: the bundled-model registry, resolve, load, save and warm-start, and
the offline reference separation every other path is tested against.

Nothing here reads flags or imports a command-line module; Keras (and the backend) load only
when a model does.
"""
import os

import numpy as np

from tf_drnn.errors import UserError, first_line

PRETRAINED_DIR = os.path.join(os.path.dirname(__file__), "pretrained")
# Bundled pretrained models by name (tf_drnn/pretrained/<name>.keras; README "Models" has their scores).
BUNDLED_MODELS = {
    "drnn2": "the default: DRNN-2, 3 x 1000 units, best quality",
    "drnn2_compact": "DRNN-2, 3 x 320 units: under 0.1 ms per frame as int8 on one x86 core",
    "drnn2_live": "the compact model at a 128-sample hop, causal: vocals out 16 ms after they go in",
}
DEFAULT_MODEL = "drnn2"
BUNDLED_MODEL = os.path.join(PRETRAINED_DIR, DEFAULT_MODEL + ".keras")


def bundled_names_help():
  """'drnn2 (default), drnn2_compact or drnn2_live' for help texts, from the registry."""
  names = [f"{name} (default)" if name == DEFAULT_MODEL else name for name in BUNDLED_MODELS]
  return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def bundled_name(path):
  """The bundled model's name if `path` is one of the bundled .keras files, else None."""
  if path is None or not os.path.isfile(path):
    return None
  for name in BUNDLED_MODELS:
    candidate = os.path.join(PRETRAINED_DIR, name + ".keras")
    if os.path.isfile(candidate) and os.path.samefile(path, candidate):
      return name
  return None


def bundled_figures():
  """{name: figures} for each bundled model whose record (pretrained/<name>.json) holds measured
  figures: size, per-frame time and quality of its exported files (written by tools.bundle)."""
  import json
  figures = {}
  for name in BUNDLED_MODELS:
    record_path = os.path.join(PRETRAINED_DIR, name + ".json")
    if os.path.isfile(record_path):
      with open(record_path) as f:
        record = json.load(f)
      if "figures" in record:
        figures[name] = record["figures"]
  return figures


def resolve_model_path(path=None):
  """The .keras file for `path`: a .keras file, a training model_dir, a bundled model's name
  (see BUNDLED_MODELS) or None (the default bundled model)."""
  if path is None or os.fspath(path) == "":
    if not os.path.isfile(BUNDLED_MODEL):
      raise UserError(f"{BUNDLED_MODEL}: the bundled model is not installed; pass --model=PATH "
                      "(a .keras file or a training model_dir)")
    return BUNDLED_MODEL
  path = os.fspath(path)
  if path in BUNDLED_MODELS and not os.path.exists(path):
    bundled = os.path.join(PRETRAINED_DIR, path + ".keras")
    if not os.path.isfile(bundled):
      raise UserError(f"{bundled}: the bundled model {path!r} is not installed")
    return bundled
  if os.path.isdir(path):
    candidate = os.path.join(path, "model.keras")
    if not os.path.isfile(candidate):
      raise UserError(f"{path}: no such model file (no model.keras in this directory)")
    return candidate
  if not os.path.exists(path):
    raise UserError(f"{path}: no such model file")
  if not path.endswith(".keras"):
    raise UserError(f"{path}: expected a .keras model file or a training model_dir")
  return path


def load_model(model=None):
  """A Keras model from None (the bundled one), a bundled name, a .keras file, a training
  model_dir, or a model (returned as it is)."""
  if model is not None and not isinstance(model, (str, os.PathLike)):
    return model
  path = resolve_model_path(model)
  import zipfile
  if not zipfile.is_zipfile(path):
    raise UserError(f"{path}: cannot load model: not a Keras model file (a .keras file is a zip archive; "
                    "this is not one)")
  import keras
  import tf_drnn.losses  # noqa: F401  (registers the loss)
  import tf_drnn.model  # noqa: F401  (registers the custom layers)
  try:
    return keras.models.load_model(path, compile=False)
  except Exception as error:  # A corrupt or foreign file: one line, no traceback.
    raise UserError(f"{path}: cannot load model ({first_line(error)})") from None


def save_model(model, path):
  """model.save to a temporary .keras file beside `path`, then rename: never a half-written model.
  The model's AudioConfig is saved inside (tf_drnn.model.SpectralFeatures' config)."""
  from tf_drnn.atomic import atomic_output
  with atomic_output(path) as tmp:
    model.save(tmp)


def warm_start(model, init_model):
  """Copies the weights (feature statistics included) of a trained model of the same structure into
  `model`. Its STFT settings and look-ahead may differ (the weights' shapes do not), and so may its
  recurrent layers where `model` recurs on more of them: a feed-forward layer that becomes recurrent
  keeps its input weights and starts with a zero recurrent kernel. `model` may also have more hidden
  units: the new units get their fresh input weights and zero output weights. Either way the grown
  model starts as the same function. Returns True when the audio settings differ (the feature
  statistics are to be measured again)."""
  return copy_weights(model, load_model(init_model), init_model)


def copy_weights(model, source, name):
  """warm_start from the loaded model `source` (`name` says which in an error)."""
  from tf_drnn import model as model_lib
  free = ("audio_config", "lookahead", "architecture", "recurrent_layers", "hidden_units")
  source_structure, structure = model_lib.describe(source), model_lib.describe(model)
  if {k: v for k, v in source_structure.items() if k not in free} != {
      k: v for k, v in structure.items() if k not in free} or not set(
      source_structure["recurrent_layers"]) <= set(structure["recurrent_layers"]) or (
      source_structure["hidden_units"] > structure["hidden_units"]):
    raise UserError(f"{name}: its structure {source_structure} differs from the flags' {structure}")
  for layer in model.layers:
    layer.set_weights(_grown_weights(source.get_layer(layer.name), layer))
  return source_structure["audio_config"] != structure["audio_config"]


def _grown_weights(source_layer, layer):
  """`source_layer`'s weights for `layer`: the same, or a Dense layer's kernel and bias as a recurrent
  layer's input kernel and bias with a zero recurrent kernel, each embedded in `layer`'s own (wider)
  weights: a kernel's rows from new units zero, its columns into new units as `layer` was initialized."""
  weights = source_layer.get_weights()
  if len(weights) == 2 and len(layer.weights) == 3:
    kernel, bias = weights
    weights = [kernel, np.zeros((kernel.shape[1], kernel.shape[1]), kernel.dtype), bias]
  return [_embedded(old, new) for old, new in zip(weights, layer.get_weights())]


def _embedded(old, new):
  """`old` [m(, n)] in the leading corner of `new` [M(, N)], M >= m, N >= n; rows m.. of a kernel zero."""
  if old.shape == new.shape:
    return old
  grown = np.array(new, copy=True)
  if grown.ndim == 2:
    grown[old.shape[0]:] = 0
  grown[tuple(slice(0, size) for size in old.shape)] = old
  return grown


def offline_masks(model, mixture, binary=False):
  """The model on a whole mono waveform [samples] at its rate at once -> (masks [frames, 2
  (vocals, accompaniment), bins], mixture spectrum [frames, bins] complex64). NumPy STFT, so it
  runs on any Keras backend."""
  from keras import ops

  from tf_drnn import spectral
  from tf_drnn.model import ModelParts, masks_from_magnitudes
  parts = ModelParts(model)
  config, delay = parts.audio_config, parts.delay
  # The look-ahead frames after the last one hold the signal's end when n_fft > 2 hop: transformed,
  # as a stream flushed with zeros transforms them, not left to the model's zero padding.
  padded = np.pad(np.asarray(mixture, np.float32), (0, delay * config.hop_length))
  spectrum = spectral.stft_numpy(padded, config)
  magnitude = np.abs(spectrum)
  frames = spectral.num_frames(len(mixture), config)
  sources = model(magnitude[None], training=False)[0, :frames]
  return ops.convert_to_numpy(masks_from_magnitudes(sources, magnitude[:frames], binary)), spectrum[:frames]


def offline_estimates(model, mixture, binary=False):
  """Separates a whole mono waveform [samples] at the model's rate at once ->
  (vocals, accompaniment) float32 [samples].

  The reference the streaming paths are tested against; it runs on any Keras backend
  (training's dev scoring uses it under JAX too).
  """
  from tf_drnn import spectral
  from tf_drnn.model import audio_config
  masks, spectrum = offline_masks(model, mixture, binary)
  return tuple(spectral.istft_numpy(masks[:, i] * spectrum, len(mixture), audio_config(model)) for i in range(2))
