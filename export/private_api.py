"""The private TFLite APIs the exporter relies on, named in one place and checked together.

int8 export (conversion.py) calibrates through `TFLiteConverter._experimental_calibrate_only` and
quantizes with `tensorflow.lite.python.convert.mlir_quantize` (whose `denylisted_ops` keeps every op
but the dense ones in float); the float16 rewriting (flatbuffer.py) and the inspection of converted
files (conversion.tflite_ops) read and write the flatbuffer through
`ai_edge_litert.schema_py_generated`. None of these is a public API: setup.py bounds TensorFlow below
the next untested minor release, and tests/test_export.py fails with :func:`missing_private_apis`'s
list when a TensorFlow or LiteRT upgrade moves one.
"""
import inspect

MLIR_QUANTIZE_ARGUMENTS = ("fully_quantize", "denylisted_ops")
SCHEMA_NAMES = ("Model", "ModelT", "BuiltinOperator", "BuiltinOptions", "DequantizeOptionsT", "TensorType", "BufferT",
                "OperatorT", "TensorT", "OperatorCodeT")


def missing_private_apis():
  """The private APIs the exporter needs that this TensorFlow and LiteRT lack, as readable lines
  (empty: all present). Imports TensorFlow."""
  missing = []
  try:
    from tensorflow.lite.python import convert as lite_convert
    parameters = inspect.signature(lite_convert.mlir_quantize).parameters
    missing += [f"tensorflow.lite.python.convert.mlir_quantize(..., {name}=)" for name in MLIR_QUANTIZE_ARGUMENTS
                if name not in parameters]
  except (ImportError, AttributeError):
    missing.append("tensorflow.lite.python.convert.mlir_quantize")
  if not _converter_attribute():
    missing.append("tf.lite.TFLiteConverter._experimental_calibrate_only")
  try:
    from ai_edge_litert import schema_py_generated as schema
    missing += [f"ai_edge_litert.schema_py_generated.{name}" for name in SCHEMA_NAMES if not hasattr(schema, name)]
  except ImportError:
    missing.append("ai_edge_litert.schema_py_generated")
  return missing


def _converter_attribute():
  """Whether a converter instance sets `_experimental_calibrate_only` (an instance attribute)."""
  import tensorflow as tf

  @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
  def identity(x):
    return x
  converter = tf.lite.TFLiteConverter.from_concrete_functions([identity.get_concrete_function()], identity)
  return hasattr(converter, "_experimental_calibrate_only")
