"""Exports a trained model as a streaming TFLite file with two signatures.

    separate_frame: magnitude [1, bins], state [1, N]  -> vocals, accompaniment [1, bins], next_state
    separate_pcm:   pcm [1, hop],        state [1, M]  -> vocals, accompaniment [1, hop],  next_state

Both run the very layers of the Keras model through :class:`tf_drnn.streaming.FrameStream`
and :class:`tf_drnn.streaming.PcmStream` (one step each, so the recurrence unrolls and the
graph has no control flow). The state is one flat float32 tensor: zeros start a stream, and
each call's `next_state` is the next call's `state`. Only builtin TFLite ops are allowed
(no Select TF ops, no Flex delegate); every file is checked for that and run once under
LiteRT before it is written.

Quantization:
  float32  none.
  float16  weights stored as float16 (dequantized to float32 at load time).
  dynamic  dynamic-range quantization: int8 weights, float activations (hybrid kernels).
  int8     full integer quantization of the dense layers (FULLY_CONNECTED / BATCH_MATMUL:
           int8 weights and activations, calibrated on spectrogram frames fed in sequence
           through the float stream, so the recurrent state inputs are realistic). Everything
           else stays float: the features' LOG and the mask's DIV have no useful int8 form
           (an int8 DIV aborts at run time once a calibrated divisor rounds to zero), and
           RFFT2D has no int8 kernel. Before calibration, a joint-mask model's two heads are
           equalized per frequency bin (see equalize_head_ranges): the mask is unchanged, and
           every bin then uses the whole int8 range of the heads' output.

A sidecar FILE.json beside FILE.tflite records the audio settings, sizes, delays and
signature layouts an app needs (see docs/on_device.md); exporting a bundled model adds the
measured size, per-frame time and quality of both bundled models (`reference_figures`).

This module imports TensorFlow lazily, so `tf-drnn-export --help` stays fast.
"""
import json
import os
import pathlib
import shutil
import tempfile
import warnings

import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.errors import UserError
from tf_drnn.litert import sidecar_path  # noqa: F401  (FILE.tflite -> FILE.json; used here and by the tests)
from tf_drnn.models import BUNDLED_MODEL, load_model, resolve_model_path  # noqa: F401  (re-exported)

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
SIGNATURES = ("separate_frame", "separate_pcm")
INT8_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")  # The only ops int8 mode quantizes.
DEFAULT_CALIBRATION_FRAMES = 2000
FORMAT = "tf_drnn.streaming/1"


def default_model_path():
  """Path of the bundled model, tf_drnn/pretrained/drnn2.keras (it may not exist yet)."""
  return pathlib.Path(BUNDLED_MODEL)


# --- the two streaming signatures ---------------------------------------------------------------

class _Endpoints:
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


def _write_saved_model(model, endpoints, directory):
  import keras
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("separate_frame", endpoints.separate_frame, input_signature=endpoints.frame_specs)
  archive.add_endpoint("separate_pcm", endpoints.separate_pcm, input_signature=endpoints.pcm_specs)
  archive.write_out(directory, verbose=False)


def _converter(saved_model_dir):
  import tensorflow as tf
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(SIGNATURES))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # No Select TF ops / Flex.
  converter.allow_custom_ops = False
  return converter


def _convert(saved_model_dir, quantization, representative_dataset=None, float_ops=()):
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
  # int8: calibrate the float graph, then quantize only the dense layers. The converter's
  # public path would quantize every op it can (DIV, LOG, MUL, ...); mlir_quantize's
  # denylist keeps the listed op types in float, with QUANTIZE/DEQUANTIZE at the borders.
  from tensorflow.lite.python import convert as lite_convert
  converter.representative_dataset = representative_dataset
  converter._experimental_calibrate_only = True  # pylint: disable=protected-access
  with warnings.catch_warnings():  # The calibrator's own use of the deprecated tf.lite.Interpreter.
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    calibrated = converter.convert()
  denylist = sorted(set(float_ops) - set(INT8_OPS))
  return lite_convert.mlir_quantize(calibrated, fully_quantize=False, denylisted_ops=denylist)


# --- float16 weights ------------------------------------------------------------------------------

_WEIGHT_INPUTS = {"FULLY_CONNECTED": 1, "BATCH_MATMUL": 1}  # op -> index of its weight input


def float16_weights(model_content, min_elements=1024):
  """Stores the constant weights of the dense ops (>= min_elements) as float16.

  Each such weight becomes a float16 constant and a DEQUANTIZE op to float32 at the start of
  its subgraph (the layout TFLite's own float16 quantization uses; XNNPACK folds it at load
  time). Everything else, small constants included, keeps float32.
  """
  from ai_edge_litert import schema_py_generated as schema
  model = schema.ModelT.InitFromPackedBuf(bytearray(model_content), 0)
  names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}

  def opcode_name(index):
    code = model.operatorCodes[index]
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode))

  # Buffers whose every use is the weight input of a dense op (others are left alone).
  uses = {}
  for s, subgraph in enumerate(model.subgraphs):
    weight_tensors = {op.inputs[_WEIGHT_INPUTS[opcode_name(op.opcodeIndex)]]
                      for op in subgraph.operators if opcode_name(op.opcodeIndex) in _WEIGHT_INPUTS}
    for t, tensor in enumerate(subgraph.tensors):
      uses.setdefault(tensor.buffer, []).append((s, t, t in weight_tensors))
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
  if not converted:
    return model_content

  dequantize = None
  for index, code in enumerate(model.operatorCodes):
    if opcode_name(index) == "DEQUANTIZE":
      dequantize = index
      code.version = max(code.version, 3)  # Version 3: float16 inputs.
  if dequantize is None:
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    code.version = 3
    model.operatorCodes.append(code)
    dequantize = len(model.operatorCodes) - 1
  for buffer_index, half_index in converted.items():
    for s, t, _ in uses[buffer_index]:
      subgraph = model.subgraphs[s]
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
    model.buffers[buffer_index].data = None  # The float32 copy is no longer referenced.

  return _pack(model, len(model_content))


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


# --- inspection of a converted file -------------------------------------------------------------

def tflite_ops(model_content):
  """Operator names used anywhere in a TFLite flatbuffer: builtin names, or 'CUSTOM:<code>'."""
  from ai_edge_litert import schema_py_generated as schema
  names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
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


def _smoke_run(model_content):
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


# --- calibration (int8) -------------------------------------------------------------------------

def calibration_audio_from_data_dir(data_dir, max_frames=DEFAULT_CALIBRATION_FRAMES, config=DEFAULT_AUDIO_CONFIG):
  """Mixtures of MIR-1K training clips (0 dB, unit-energy sources, scaled to the training level).

  Clips are taken evenly across the training split until about `max_frames` STFT frames.
  """
  from tf_drnn.data.base import unit_energy_mix
  from tf_drnn.data import load_dataset
  from tf_drnn.levels import TRAINING_LEVEL_DBFS, scale_to_dbfs
  from tf_drnn.spectral import num_frames
  tracks = load_dataset("mir1k", data_dir).tracks("train")
  if not tracks:
    raise UserError(f"{data_dir}: no MIR-1K training clips for calibration")
  mixtures, total = [], 0
  stride = max(1, len(tracks) // 16)
  order = list(range(0, len(tracks), stride)) + [i for i in range(len(tracks)) if i % stride]
  for index in order:
    vocals, accompaniment = tracks[index].sources()
    mixture = scale_to_dbfs(unit_energy_mix(vocals, accompaniment)[0], TRAINING_LEVEL_DBFS)
    mixtures.append(mixture)
    total += num_frames(len(mixture), config)
    if total >= max_frames:
      break
  return mixtures


def _random_phase_audio(magnitudes, config, seed=0):
  """A waveform whose spectrogram has roughly the given magnitudes (random phase)."""
  from tf_drnn.spectral import istft_numpy
  rng = np.random.default_rng(seed)
  phase = np.exp(2j * np.pi * rng.random(magnitudes.shape))
  hop = config.hop_length
  return istft_numpy((magnitudes * phase).astype(np.complex64), hop * (len(magnitudes) - 1), config)


def _calibration_samples(float_model, magnitude_sequences, audio_sequences, config, max_steps):
  """(signature, inputs) pairs: each sequence streamed from zero state through the float model."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=bytes(float_model))
  samples = []
  for key, sequences, block in (("separate_frame", magnitude_sequences, None),
                                ("separate_pcm", audio_sequences, config.hop_length)):
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    name = "magnitude" if block is None else "pcm"
    state = None
    steps = 0
    for sequence in sequences:
      sequence = np.asarray(sequence, np.float32)
      if block is not None:  # Whole hops, then one hop of silence to flush.
        padded = np.zeros(-(-len(sequence) // block) * block + block, np.float32)
        padded[:len(sequence)] = sequence
        sequence = padded.reshape(-1, block)
      state = np.zeros(details["state"]["shape"], np.float32)
      for step in sequence:
        if steps >= max_steps:
          break
        inputs = {name: step[None], "state": state}
        samples.append((key, inputs))
        state = runner(**inputs)["next_state"]
        steps += 1
  return samples


def _calibration_inputs(calibration_magnitudes, calibration_audio, config):
  """(magnitude sequences [[frames, bins], ...], mono waveforms [...]) from either kind of data."""
  from tf_drnn.spectral import stft_numpy
  if calibration_audio is not None:
    audio = [np.asarray(a, np.float32) for a in calibration_audio]
    magnitudes = [np.abs(stft_numpy(a, config)) for a in audio]
  else:
    magnitudes = calibration_magnitudes
    if isinstance(magnitudes, np.ndarray) and magnitudes.ndim == 2:
      magnitudes = [magnitudes]
    magnitudes = [np.asarray(m, np.float32) for m in magnitudes]
    audio = [_random_phase_audio(m, config, seed=i) for i, m in enumerate(magnitudes)]
  for m in magnitudes:
    if m.ndim != 2 or m.shape[-1] != config.num_bins:
      raise ValueError(f"calibration magnitudes must be [frames, {config.num_bins}], got {m.shape}")
  return magnitudes, audio


def equalize_head_ranges(model, magnitudes):
  """A copy of a joint-mask model whose heads peak alike in every frequency bin.

  The joint mask |a1| / (|a1| + |a2|) is unchanged when both heads' bin j is multiplied by
  the same c_j > 0 (up to its 1e-8 epsilon), but int8 gives each head's output one scale for
  all bins: bins that peak lower than the loudest get fewer levels. Here c_j = median peak /
  peak_j, the peak being max(|a1_j|, |a2_j|) over `magnitudes` (a list of [frames, bins]).
  Returns (model, applied): other output formats come back unchanged (applied False).
  """
  import keras
  from tf_drnn.model import ModelParts
  if ModelParts(model).sources.output_format != "masked":
    return model, False
  copy = keras.models.clone_model(model)
  copy.set_weights(model.get_weights())
  heads = ModelParts(copy).heads
  probe = keras.Model(copy.input, [head.output for head in heads])
  peak = np.zeros(int(model.input_shape[-1]), np.float64)
  for sequence in magnitudes:
    for head_output in probe(np.asarray(sequence, np.float32)[None]):
      peak = np.maximum(peak, np.abs(np.asarray(head_output)[0]).max(axis=0))
  scale = (np.median(peak) / np.maximum(peak, 1e-30 + 1e-6 * np.median(peak))).astype(np.float32)
  for head in heads:
    kernel, bias = head.get_weights()
    head.set_weights([kernel * scale[None], bias * scale])
  return copy, True


def _prepare_calibration(float_model, magnitudes, audio, config, max_steps):
  samples = _calibration_samples(float_model, magnitudes, audio, config, max_steps)
  return samples, {"frames": sum(1 for key, _ in samples if key == "separate_frame"),
                   "pcm_blocks": sum(1 for key, _ in samples if key == "separate_pcm")}


# --- the library entry point --------------------------------------------------------------------

def _atomic_write_bytes(files):
  """Writes {path: bytes} atomically and together (tf_drnn.atomic.atomic_outputs): all or none.

  An OSError (full disk, read-only folder, name too long) is one OutputError naming the file,
  "PATH: cannot write (No space left on device)"; no partial or temporary file is left.
  """
  from tf_drnn.atomic import atomic_outputs
  from tf_drnn.errors import OutputError
  paths = list(files)
  current = paths[0]
  try:
    with atomic_outputs(paths) as tmps:
      for current, tmp in zip(paths, tmps):
        with open(tmp, "wb") as f:
          f.write(files[current])
  except OSError as error:
    path = error.filename if error.filename in paths else current
    raise OutputError(path, f"cannot write ({error.strerror or error})") from None


def _same_file(a, b):
  return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def check_output_paths(output_path, model_path=None):
  """Raises UserError, before any conversion, unless FILE.tflite and its sidecar FILE.json can be written.

  FILE.tflite must not be a directory, the input model, or under a file; FILE.json may replace only
  a previous sidecar of the same FILE.tflite (never, say, a training run's best.json or options.json).
  """
  from tf_drnn.atomic import check_output_file
  output_path = os.fspath(output_path)
  if not output_path.endswith(".tflite"):
    raise UserError(f"{output_path}: the output file must end in .tflite")
  sidecar = sidecar_path(output_path)
  if model_path is not None and (_same_file(output_path, model_path) or _same_file(sidecar, model_path)):
    raise UserError(f"{output_path}: would overwrite the input model")
  check_output_file(output_path)
  check_output_file(sidecar)
  if os.path.lexists(sidecar):
    try:
      with open(sidecar) as f:
        previous = json.load(f)
    except (OSError, ValueError):
      previous = None
    if not (isinstance(previous, dict) and previous.get("format") == FORMAT
            and previous.get("tflite_file") == os.path.basename(output_path)):
      raise UserError(f"{sidecar}: exists and is not the sidecar of a previous {os.path.basename(output_path)} "
                      "export; it is kept: choose another --output")


def export_tflite(model, output_path, quantization="float32", calibration_magnitudes=None,
                  calibration_audio=None, model_path=None, max_calibration_steps=DEFAULT_CALIBRATION_FRAMES):
  """Converts `model` to a streaming TFLite file and writes it with its JSON sidecar.

  Args:
    model: A Keras model from :func:`tf_drnn.model.build_model` (trained or loaded).
    output_path: FILE.tflite; the sidecar goes to FILE.json. Both are written atomically, together
      (a write that fails is a UserError "PATH: cannot write (reason)", and neither file changes).
    quantization: One of QUANTIZATIONS.
    calibration_magnitudes: int8 only: magnitude frames [frames, bins], or a list of such
      sequences (each streamed from zero state). The PCM signature is calibrated on audio
      resynthesized from them with random phase.
    calibration_audio: int8 only, instead of magnitudes: a list of mono waveforms at
      the model's sample rate (real mixtures); both signatures are calibrated on them.
    model_path: Where the model came from (recorded in the sidecar; never overwritten).
    max_calibration_steps: Calibration steps per signature (frames or hops).

  Returns:
    The sidecar dict.
  """
  if quantization not in QUANTIZATIONS:
    raise UserError(f"unknown quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
  output_path = os.fspath(output_path)
  check_output_paths(output_path, model_path)
  if quantization == "int8" and calibration_magnitudes is None and calibration_audio is None:
    raise UserError("int8 quantization needs calibration data (--data_dir with MIR-1K)")

  from tf_drnn.model import audio_config
  config = audio_config(model)  # The STFT the model was trained with (saved in its file).
  content, endpoints, calibration = _convert_streaming(model, quantization, config, calibration_magnitudes,
                                                       calibration_audio, max_calibration_steps)
  ops = check_builtin_only(content)
  _smoke_run(content)
  layout = signature_layout(content)
  missing = [key for key in SIGNATURES if key not in layout]
  if missing:
    raise RuntimeError(f"the converted model lacks the signatures {', '.join(missing)}")
  sidecar = _sidecar(model, config, endpoints, quantization, model_path, output_path, content, ops, layout)
  if calibration is not None:
    calibration["source"] = "audio" if calibration_audio is not None else "magnitudes"
    sidecar["calibration"] = calibration
  _atomic_write_bytes({output_path: content,
                       sidecar_path(output_path): (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode()})
  return sidecar


def _convert_streaming(model, quantization, config, calibration_magnitudes, calibration_audio, max_steps):
  """(the .tflite bytes, the model's _Endpoints, the int8 calibration record or None): the two
  streaming signatures of `model` converted in `quantization` (int8: calibrated, its heads
  equalized first)."""
  calibration, equalized = None, False
  if quantization == "int8":
    magnitudes, audio = _calibration_inputs(calibration_magnitudes, calibration_audio, config)
    model, equalized = equalize_head_ranges(model, magnitudes)
  endpoints = _Endpoints(model)
  work = tempfile.mkdtemp(prefix="tf_drnn_export-")
  try:
    saved_model = os.path.join(work, "saved_model")
    _write_saved_model(model, endpoints, saved_model)
    # The float32 conversion is the result, or (int8) what calibration runs and what names the
    # ops int8 keeps in float; float16 and dynamic convert directly.
    content = _convert(saved_model, "float32" if quantization in ("float32", "int8") else quantization)
    float_ops = check_builtin_only(content)
    if quantization == "int8":
      samples, calibration = _prepare_calibration(content, magnitudes, audio, config, max_steps)
      calibration["equalized_heads"] = equalized
      content = _convert(saved_model, "int8", lambda: iter(samples), float_ops)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return content, endpoints, calibration


def _sidecar(source_model, config, endpoints, quantization, model_path, output_path, content, ops, layout):
  """The sidecar dict of a converted file (FILE.json): what an app needs to stream it."""
  from tf_drnn.model import describe
  description = describe(source_model)
  sidecar = {
      "format": FORMAT,
      **config.as_dict(),
      "num_bins": config.num_bins,
      "latency_samples": endpoints.pcm.latency_samples,
      "algorithmic_latency_samples": endpoints.pcm.algorithmic_latency_samples,
      "frame_delay": endpoints.frames.delay,
      "state_size": {"separate_frame": endpoints.frames.state_size,
                     "separate_pcm": endpoints.pcm.state_size},
      "quantization": quantization,
      "model": {"path": os.path.abspath(model_path) if model_path else None,
                "name": source_model.name,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in description.items()}},
      "tflite_file": os.path.basename(output_path),
      "tflite_bytes": len(content),
      "ops": ops,
      "signatures": layout,
  }
  from tf_drnn.models import bundled_figures, bundled_name
  bundled = bundled_name(model_path)
  if bundled is not None:  # What this file and the other bundled models measured, side by side.
    sidecar["reference_figures"] = {"model": bundled, "models": bundled_figures()}
  return sidecar
