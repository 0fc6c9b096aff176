"""A Keras model -> the bytes of a streaming TFLite file: the two signatures, the SavedModel they
are written to, the converter in each quantization, and the checks of a converted file (builtin
ops only, the signatures' layout, one run under LiteRT).

Imports TensorFlow and LiteRT lazily, inside the functions that need them.
"""
import os
import shutil
import tempfile
import warnings

import numpy as np

from .calibration import calibration_inputs, equalize_head_ranges, prepare_calibration
from .flatbuffer import float16_weights, opcode_names

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
SIGNATURES = ("separate_frame", "separate_pcm")
INT8_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")  # The only ops int8 mode quantizes.


# --- the two streaming signatures ---------------------------------------------------------------

class Endpoints:
  """The model's two streaming functions and their fixed-shape (batch 1) input specs."""

  def __init__(self, model):
    import tensorflow as tf
    from tf_drnn.model import audio_config
    from tf_drnn.streaming import FrameStream, PcmStream
    self.config = config = audio_config(model)
    self.frames = FrameStream(model)
    self.pcm = PcmStream(model, channels=1, config=config)
    bins = self.frames.num_bins
    self.frame_specs = [tf.TensorSpec([1, bins], tf.float32, name="magnitude"),
                        tf.TensorSpec([1, self.frames.state_size], tf.float32, name="state")]
    self.pcm_specs = [tf.TensorSpec([1, config.hop_length], tf.float32, name="pcm"),
                      tf.TensorSpec([1, self.pcm.state_size], tf.float32, name="state")]

  def separate_frame(self, magnitude, state):
    import tensorflow as tf
    from tf_drnn.model import masks_from_magnitudes
    stream = self.frames
    sources, next_state = stream(magnitude[:, None, :], state)  # [1, 1, S, bins]
    sources = sources[:, 0]
    if stream.num_sources == 1:
      # One-source model: the accompaniment is what the vocals leave of the delayed input
      # frame, as in offline separation. That frame is the buffer's frame `delay`.
      buffer = tf.reshape(state[:, :stream.buffer_frames * stream.num_bins],
                          [1, stream.buffer_frames, stream.num_bins])
      centre = tf.concat([buffer, magnitude[:, None]], axis=1)[:, stream.delay]
      sources = masks_from_magnitudes(sources, centre) * centre[:, None]
    return {"vocals": sources[:, 0], "accompaniment": sources[:, 1], "next_state": next_state}

  def separate_pcm(self, pcm, state):
    vocals, accompaniment, next_state = self.pcm(pcm, state)
    return {"vocals": vocals, "accompaniment": accompaniment, "next_state": next_state}


def write_saved_model(model, endpoints, directory):
  """Writes `model` with the two signatures of `endpoints` as a SavedModel in `directory`."""
  import keras
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("separate_frame", endpoints.separate_frame, input_signature=endpoints.frame_specs)
  archive.add_endpoint("separate_pcm", endpoints.separate_pcm, input_signature=endpoints.pcm_specs)
  archive.write_out(directory, verbose=False)


# --- the converter ----------------------------------------------------------------------------------

def convert_streaming(model, quantization, config, calibration_magnitudes, calibration_audio, max_steps):
  """(the .tflite bytes, the model's Endpoints, the int8 calibration record or None): the two
  streaming signatures of `model` converted in `quantization` (int8: calibrated, its heads
  equalized first)."""
  calibration, equalized = None, False
  if quantization == "int8":
    magnitudes, audio = calibration_inputs(calibration_magnitudes, calibration_audio, config)
    model, equalized = equalize_head_ranges(model, magnitudes)
  endpoints = Endpoints(model)
  work = tempfile.mkdtemp(prefix="tf_drnn_export-")
  try:
    saved_model = os.path.join(work, "saved_model")
    write_saved_model(model, endpoints, saved_model)
    # The float32 conversion is the result, or (int8) what calibration runs and what names the
    # ops int8 keeps in float; float16 and dynamic convert directly.
    content = convert_saved_model(saved_model, "float32" if quantization in ("float32", "int8") else quantization)
    float_ops = check_builtin_only(content)
    if quantization == "int8":
      samples, calibration = prepare_calibration(content, magnitudes, audio, config, max_steps)
      calibration["equalized_heads"] = equalized
      content = convert_saved_model(saved_model, "int8", lambda: iter(samples), float_ops)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return content, endpoints, calibration


def _converter(saved_model_dir):
  import tensorflow as tf
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(SIGNATURES))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # No Select TF ops / Flex.
  converter.allow_custom_ops = False
  return converter


def convert_saved_model(saved_model_dir, quantization, representative_dataset=None, float_ops=()):
  """The .tflite bytes of a SavedModel's two signatures in `quantization` (int8: calibrated on
  `representative_dataset`, the ops of `float_ops` but the dense ones kept in float)."""
  import tensorflow as tf
  converter = _converter(saved_model_dir)
  if quantization == "float32":
    return converter.convert()
  if quantization == "float16":
    # Not the converter's float16 mode: that casts *every* float constant to float16,
    # and the features' and the mask's epsilons (1e-9, 1e-8, 1e-12) underflow to 0, so
    # the first (all-zero) frames of a stream give 0/0 = NaN, which the recurrent state
    # then carries forever. Only the dense weights are stored as float16 here.
    return float16_weights(converter.convert())
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == "dynamic":
    return converter.convert()
  return _int8_dense_layers(converter, representative_dataset, float_ops)


def _int8_dense_layers(converter, representative_dataset, float_ops):
  """int8: calibrate the float graph, then quantize only the dense layers. The converter's public
  path would quantize every op it can (DIV, LOG, MUL, ...); mlir_quantize's denylist keeps the
  listed op types in float, with QUANTIZE/DEQUANTIZE at the borders (private APIs: private_api.py)."""
  from tensorflow.lite.python import convert as lite_convert
  converter.representative_dataset = representative_dataset
  converter._experimental_calibrate_only = True  # pylint: disable=protected-access
  with warnings.catch_warnings():  # The calibrator's own use of the deprecated tf.lite.Interpreter.
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    calibrated = converter.convert()
  denylist = sorted(set(float_ops) - set(INT8_OPS))
  return lite_convert.mlir_quantize(calibrated, fully_quantize=False, denylisted_ops=denylist)


# --- checks of a converted file -----------------------------------------------------------------

def tflite_ops(model_content):
  """Operator names used anywhere in a TFLite flatbuffer: builtin names, or 'CUSTOM:<code>'."""
  from ai_edge_litert import schema_py_generated as schema
  names = opcode_names()
  model = schema.Model.GetRootAsModel(bytearray(model_content), 0)
  codes = []
  for i in range(model.OperatorCodesLength()):
    code = model.OperatorCodes(i)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.CUSTOM:
      custom = code.CustomCode()
      codes.append("CUSTOM:" + (custom.decode() if custom else "?"))
    else:
      codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
  used = set()
  for s in range(model.SubgraphsLength()):
    subgraph = model.Subgraphs(s)
    for o in range(subgraph.OperatorsLength()):
      used.add(codes[subgraph.Operators(o).OpcodeIndex()])
  return sorted(used)


def check_builtin_only(model_content):
  """Raises RuntimeError if the file needs custom or Flex (Select TF) ops; returns the op list."""
  ops = tflite_ops(model_content)
  foreign = [op for op in ops if op.startswith("CUSTOM:")]
  if foreign:
    raise RuntimeError(f"the converted model needs non-builtin ops: {', '.join(foreign)}")
  return ops


def signature_layout(model_content):
  """{signature: {"inputs": {name: shape}, "outputs": {name: shape}}} read back with LiteRT."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=bytes(model_content))
  layout = {}
  for key in interpreter.get_signature_list():
    runner = interpreter.get_signature_runner(key)
    layout[key] = {
        "inputs": {name: [int(d) for d in detail["shape"]]
                   for name, detail in sorted(runner.get_input_details().items())},
        "outputs": {name: [int(d) for d in detail["shape"]]
                    for name, detail in sorted(runner.get_output_details().items())},
    }
  return layout


def smoke_run(model_content):
  """Runs every signature once from zero state under LiteRT; raises if an output is not finite."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=bytes(model_content))
  for key in interpreter.get_signature_list():
    runner = interpreter.get_signature_runner(key)
    inputs = {name: np.full(detail["shape"], 0.01 if name != "state" else 0.0, np.float32)
              for name, detail in runner.get_input_details().items()}
    outputs = runner(**inputs)
    for name, value in outputs.items():
      if not np.all(np.isfinite(value)):
        raise RuntimeError(f"signature {key}: output {name} is not finite under LiteRT")
