"""Rewriting a converted TFLite flatbuffer: the dense layers' weights stored as float16.

Reads and writes the file through `ai_edge_litert.schema_py_generated` (a private API, checked by
private_api.py), imported lazily.
"""
import numpy as np

_WEIGHT_INPUTS = {"FULLY_CONNECTED": 1, "BATCH_MATMUL": 1}  # op -> index of its weight input


def opcode_names():
  """{builtin operator code: its name} of the TFLite schema."""
  from ai_edge_litert import schema_py_generated as schema
  return {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def float16_weights(model_content, min_elements=1024):
  """Stores the constant weights of the dense ops (>= min_elements) as float16.

  Each such weight becomes a float16 constant and a DEQUANTIZE op to float32 at the start of
  its subgraph (the layout TFLite's own float16 quantization uses; XNNPACK folds it at load
  time). Everything else, small constants included, keeps float32.
  """
  from ai_edge_litert import schema_py_generated as schema
  model = schema.ModelT.InitFromPackedBuf(bytearray(model_content), 0)
  uses = _buffer_uses(model)
  converted = _add_float16_buffers(model, uses, min_elements)
  if not converted:
    return model_content
  dequantize = _dequantize_opcode(model)
  for buffer_index, half_index in converted.items():
    for s, t, _ in uses[buffer_index]:
      _dequantize_at_start(model.subgraphs[s], t, half_index, dequantize)
    model.buffers[buffer_index].data = None  # The float32 copy is no longer referenced.
  return _pack(model, len(model_content))


def _opcode_name(model, index, names):
  code = model.operatorCodes[index]
  return names.get(max(code.builtinCode, code.deprecatedBuiltinCode))


def _buffer_uses(model):
  """{buffer index: [(subgraph, tensor, whether it is the weight input of a dense op)]}."""
  names = opcode_names()
  uses = {}
  for s, subgraph in enumerate(model.subgraphs):
    weight_tensors = set()
    for op in subgraph.operators:
      name = _opcode_name(model, op.opcodeIndex, names)
      if name in _WEIGHT_INPUTS:
        weight_tensors.add(op.inputs[_WEIGHT_INPUTS[name]])
    for t, tensor in enumerate(subgraph.tensors):
      uses.setdefault(tensor.buffer, []).append((s, t, t in weight_tensors))
  return uses


def _add_float16_buffers(model, uses, min_elements):
  """Appends a float16 copy of every float32 buffer (>= min_elements) used only as dense weights;
  returns {float32 buffer index: float16 buffer index} (others are left alone)."""
  from ai_edge_litert import schema_py_generated as schema
  converted = {}
  for buffer_index, tensor_uses in uses.items():
    buffer = model.buffers[buffer_index]
    if buffer_index == 0 or buffer.data is None or not all(weight for _, _, weight in tensor_uses):
      continue
    s, t, _ = tensor_uses[0]
    tensor = model.subgraphs[s].tensors[t]
    if tensor.type != schema.TensorType.FLOAT32 or len(buffer.data) // 4 < min_elements:
      continue
    half = schema.BufferT()
    half.data = np.frombuffer(bytes(buffer.data), "<f4").astype("<f2").view(np.uint8)
    model.buffers.append(half)
    converted[buffer_index] = len(model.buffers) - 1
  return converted


def _dequantize_opcode(model):
  """The index of the model's DEQUANTIZE operator code (version 3: float16 inputs), added if missing."""
  from ai_edge_litert import schema_py_generated as schema
  names = opcode_names()
  dequantize = None
  for index, code in enumerate(model.operatorCodes):
    if _opcode_name(model, index, names) == "DEQUANTIZE":
      dequantize = index
      code.version = max(code.version, 3)  # Version 3: float16 inputs.
  if dequantize is None:
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    code.version = 3
    model.operatorCodes.append(code)
    dequantize = len(model.operatorCodes) - 1
  return dequantize


def _dequantize_at_start(subgraph, t, half_index, dequantize):
  """Makes tensor `t` of `subgraph` the output of a DEQUANTIZE op (first in the subgraph) whose
  input is a new float16 tensor on buffer `half_index`."""
  from ai_edge_litert import schema_py_generated as schema
  tensor = subgraph.tensors[t]
  half_tensor = schema.TensorT()
  half_tensor.name = (tensor.name or b"weight") + b"/float16"
  half_tensor.shape = tensor.shape
  half_tensor.type = schema.TensorType.FLOAT16
  half_tensor.buffer = half_index
  subgraph.tensors.append(half_tensor)
  tensor.buffer = 0  # Now computed by the DEQUANTIZE op.
  op = schema.OperatorT()
  op.opcodeIndex = dequantize
  op.inputs = np.array([len(subgraph.tensors) - 1], np.int32)
  op.outputs = np.array([t], np.int32)
  op.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
  op.builtinOptions = schema.DequantizeOptionsT()
  subgraph.operators.insert(0, op)


def _pack(model, size_hint):
  """Serializes a schema.ModelT, with tensor data 16-byte aligned as the converter writes it."""
  import flatbuffers

  class AlignedBuilder(flatbuffers.Builder):
    """Writes byte vectors (tensor data) 16-byte aligned, like the TFLite converter does."""

    def CreateNumpyVector(self, x):
      if x.dtype != np.uint8 or x.ndim != 1:
        return super().CreateNumpyVector(x)
      self.StartVector(1, x.size, 16)
      payload = x.tobytes()
      self.head = self.head - len(payload)
      self.Bytes[self.head:self.head + len(payload)] = payload
      self.vectorNumElems = x.size
      return self.EndVector()

  builder = AlignedBuilder(size_hint)
  builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
  return bytes(builder.Output())
