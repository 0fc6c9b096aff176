"""A roofline for one streaming step: how close is a call to what this CPU could do?

Work per frame (one call of either signature processes one hop):
  MACs   multiply-accumulates of the dense and recurrent kernels (every weight is used once
         per frame: batch 1, one time step). The features, mask and FFTs are not counted
         (a few hundred thousand flops against millions of MACs).
  bytes  the weights the kernels read per frame: parameters x bytes per weight as run.
         float16 files store half-size weights, but LiteRT dequantizes them to float32 once
         at load time (XNNPACK, and the builtin DEQUANTIZE of a constant), so the kernels
         read 4 bytes per weight; dynamic and int8 read 1. Biases are 4 bytes (float32 or int32).

Machine (single thread, measured in a fresh process with BLAS limited to one thread):
  bandwidth  NumPy copy of a 256 MB array: (read + written bytes) / time, best of a few.
  peak       measured where the kernels run: one FULLY_CONNECTED ([256, 1024] x [1024, 1024]) in
             a TFLite file, float32 and int8 x int8, invoked under LiteRT with XNNPACK on one
             thread (`measure_litert_matmul`). The NumPy float32 matmul (1024^3) GFLOP/s is
             recorded beside it; only where the LiteRT probe cannot run (no TensorFlow converter)
             is the peak the NumPy rate, and int8 estimated as INT8_SPEEDUP x that
             (`peak_estimated` says so).

bound = max(MACs / peak, bytes / bandwidth); a call's multiple = its p50 / bound. Weights that
fit in the last-level cache (the int8 and dynamic files of the bundled model: 5.6 MB) are not
read from DRAM on every call, so those variants also get a cache-level bound: the same formula
with the copy bandwidth of a working set twice their size (`cache_bound_ms`).
"""
import json
import os
import subprocess
import sys

import numpy as np

from tf_drnn.errors import first_line

STORED_BYTES_PER_WEIGHT = {"float32": 4, "float16": 2, "dynamic": 1, "int8": 1}
RUNTIME_BYTES_PER_WEIGHT = {"float32": 4, "float16": 4, "dynamic": 1, "int8": 1}
INTEGER_VARIANTS = ("dynamic", "int8")  # Their dense kernels multiply int8 x int8.
INT8_SPEEDUP = 2.0
BIAS_BYTES = 4


def count_parameters(model):
  """{"macs_per_frame", "weights", "biases", "layers": [...]} from the model's kernels.

  Counts every layer with a `kernel` (Dense, the recurrent layer's input projection) and a
  `recurrent_kernel` (the recurrence): each weight is one MAC per frame.
  """
  macs = biases = 0
  layers = []
  for layer in model.layers:
    layer_macs = 0
    for name in ("kernel", "recurrent_kernel"):
      weight = getattr(layer, name, None)
      if weight is not None:
        layer_macs += int(np.prod(weight.shape))
    bias = getattr(layer, "bias", None)
    if layer_macs:
      layer_biases = int(np.prod(bias.shape)) if bias is not None else 0
      layers.append({"name": layer.name, "macs": layer_macs, "biases": layer_biases})
      macs += layer_macs
      biases += layer_biases
  return {"macs_per_frame": macs, "weights": macs, "biases": biases, "layers": layers}


def bytes_per_frame(parameters, variant, runtime=True):
  """Weight bytes read per frame by `variant` (runtime=False: bytes as stored in the file)."""
  table = RUNTIME_BYTES_PER_WEIGHT if runtime else STORED_BYTES_PER_WEIGHT
  return parameters["weights"] * table[variant] + parameters["biases"] * BIAS_BYTES


def peak_macs_per_second(machine, variant):
  """MACs/s a variant's kernels could reach. Where the machine record has the LiteRT probe
  (:func:`measure_litert_matmul`), its measured float32 or int8 rate; else the NumPy float32
  rate, and for int8 the INT8_SPEEDUP estimate."""
  integer = variant in INTEGER_VARIANTS
  measured = machine.get("litert_gmacs_int8" if integer else "litert_gmacs_float32")
  if measured:
    return measured * 1e9
  f32 = machine["matmul_gflops_f32"] * 1e9 / 2
  return f32 * INT8_SPEEDUP if integer else f32


def bound(macs, weight_bytes, peak_macs, bandwidth_bytes):
  """(bound seconds, limiting resource) = max(compute time, memory time)."""
  compute = macs / peak_macs
  memory = weight_bytes / bandwidth_bytes
  return (compute, "compute") if compute >= memory else (memory, "memory")


def variant_roofline(parameters, variant, machine):
  """The bound of one variant on a measured machine."""
  macs = parameters["macs_per_frame"]
  weight_bytes = bytes_per_frame(parameters, variant)
  peak = peak_macs_per_second(machine, variant)
  seconds, limit = bound(macs, weight_bytes, peak, machine["copy_bandwidth_gbs"] * 1e9)
  result = {"macs_per_frame": macs, "weight_bytes_per_frame": weight_bytes,
            "stored_weight_bytes": bytes_per_frame(parameters, variant, runtime=False),
            "peak_gmacs": peak / 1e9,
            "peak_estimated": variant in INTEGER_VARIANTS and not machine.get("litert_gmacs_int8"),
            "bandwidth_gbs": machine["copy_bandwidth_gbs"], "bound_ms": seconds * 1e3, "limited_by": limit}
  # A second, cache-level roof for weights small enough to stay in cache between calls: the
  # copy bandwidth measured on a working set (source + destination) of twice their size.
  cached_gbs, working_set = machine.get("working_set_copy_gbs"), machine.get("working_set_bytes")
  if cached_gbs and working_set and 2 * weight_bytes <= working_set * 1.01:
    cache_seconds, cache_limit = bound(macs, weight_bytes, peak, cached_gbs * 1e9)
    result.update({"cache_bandwidth_gbs": cached_gbs, "cache_bound_ms": cache_seconds * 1e3,
                   "cache_limited_by": cache_limit})
  return result


def multiple(p50_ms, bound_ms):
  """How many times the roofline bound a measured call takes."""
  return float(p50_ms / bound_ms) if bound_ms > 0 else float("inf")


# --- measuring the machine -----------------------------------------------------------------------

_MEASURE = r"""
import json, sys, time
import numpy as np
budget = float(sys.argv[1])
working_set = int(sys.argv[2])

def best_seconds(function, repeats, budget):
    function()  # Warm-up (page faults, BLAS start-up).
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        start = time.perf_counter(); function(); elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget:
            break
    return best

rng = np.random.default_rng(0)
n = 1024
a = rng.standard_normal((n, n), dtype=np.float32); b = rng.standard_normal((n, n), dtype=np.float32)
out = np.empty((n, n), np.float32)
matmul = best_seconds(lambda: np.matmul(a, b, out=out), 20, budget)
big = np.ones(256 * 1024 * 1024 // 8); big_out = np.empty_like(big)
copy = best_seconds(lambda: np.copyto(big_out, big), 8, budget)
small = np.ones(max(working_set // 8, 1)); small_out = np.empty_like(small)
def small_copies():
    for _ in range(20):
        np.copyto(small_out, small)
cached = best_seconds(small_copies, 20, budget)
print(json.dumps({
    "matmul_gflops_f32": 2 * n ** 3 / matmul / 1e9,
    "copy_bandwidth_gbs": 2 * big.nbytes / copy / 1e9,
    "working_set_copy_gbs": 20 * 2 * small.nbytes / cached / 1e9,
    "working_set_bytes": 2 * small.nbytes,
}))
"""

_SINGLE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                         "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


def matmul_tflite(path, quantization, rows=256, size=1024):
  """Writes a TFLite file holding one matmul [rows, size] x [size, size] (FULLY_CONNECTED, no bias):
  float32, or int8 weights and activations (full-integer quantization). Needs TensorFlow."""
  import tensorflow as tf
  rng = np.random.default_rng(0)
  kernel = tf.constant((rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([rows, size], tf.float32)])
  def matmul(x):
    return tf.matmul(x, kernel)

  converter = tf.lite.TFLiteConverter.from_concrete_functions([matmul.get_concrete_function()], matmul)
  if quantization == "int8":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.standard_normal((rows, size)).astype(np.float32)]
                                                for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  elif quantization != "float32":
    raise ValueError(f"quantization must be float32 or int8, got {quantization!r}")
  with open(path, "wb") as f:
    f.write(converter.convert())
  return rows * size * size


def time_litert(path, macs, threads=1, budget_seconds=1.0, repeats=50):
  """GMAC/s of a file's first signature-less Invoke under LiteRT with XNNPACK: best of `repeats`."""
  import time
  from tf_drnn.litert import make_interpreter
  interpreter = make_interpreter(path, threads=threads, xnnpack=True)
  interpreter.allocate_tensors()
  detail = interpreter.get_input_details()[0]
  if detail["dtype"] == np.float32:
    data = np.random.default_rng(1).standard_normal(detail["shape"]).astype(np.float32)
  else:
    data = np.random.default_rng(1).integers(-100, 100, detail["shape"]).astype(detail["dtype"])
  interpreter.set_tensor(detail["index"], data)
  interpreter.invoke()  # Warm-up: XNNPACK packs the weights on the first call.
  best, spent = float("inf"), 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    interpreter.invoke()
    elapsed = time.perf_counter() - start
    best, spent = min(best, elapsed), spent + elapsed
    if spent > budget_seconds:
      break
  return macs / best / 1e9


def measure_litert_matmul(work_dir, threads=1, budget_seconds=1.0):
  """{"litert_gmacs_float32", "litert_gmacs_int8"}: a large matmul's MAC rate under LiteRT
  (XNNPACK, `threads` threads), measured on the kernels the exported files use."""
  rates = {}
  for quantization in ("float32", "int8"):
    path = os.path.join(work_dir, f"matmul_probe_{quantization}.tflite")
    macs = matmul_tflite(path, quantization)
    rates[f"litert_gmacs_{quantization}"] = time_litert(path, macs, threads, budget_seconds)
  return rates


def measure_machine(budget_seconds=1.0, working_set_bytes=8 * 1024 * 1024, timeout=120, litert_dir=None):
  """Single-thread float32 matmul GFLOP/s, large-copy and working-set-copy bandwidth (GB/s).

  Runs in a fresh process so the BLAS thread count can be fixed to one before NumPy loads.
  `working_set_bytes` (source + destination) sized like a model's weights shows the
  bandwidth from cache when they fit there. With `litert_dir` (a scratch folder) the int8 and
  float32 MAC rates of LiteRT's own kernels are measured too (:func:`measure_litert_matmul`);
  without it, or if that probe fails, the int8 rate is the INT8_SPEEDUP estimate.
  """
  env = dict(os.environ, **_SINGLE_THREAD)
  completed = subprocess.run([sys.executable, "-c", _MEASURE, str(budget_seconds), str(working_set_bytes // 2)],
                             capture_output=True, text=True, env=env, timeout=timeout)
  lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
  if completed.returncode != 0 or not lines:
    raise RuntimeError(f"machine measurement failed (exit {completed.returncode}): "
                       f"{completed.stderr.strip().splitlines()[-1:] }")
  machine = json.loads(lines[-1])
  machine.update({"peak_gmacs_f32": machine["matmul_gflops_f32"] / 2,
                  "peak_gmacs_int8_estimated": machine["matmul_gflops_f32"] / 2 * INT8_SPEEDUP,
                  "int8_speedup": INT8_SPEEDUP, "threads": 1})
  if litert_dir is not None:
    try:
      machine.update(measure_litert_matmul(litert_dir, threads=1, budget_seconds=budget_seconds))
    except Exception as error:  # No TensorFlow converter here: fall back to the estimate, and say so.
      reason = first_line(error, empty="")
      machine["litert_probe_error"] = f"{type(error).__name__}: {reason}"
  if machine.get("litert_gmacs_int8"):
    machine["int8_note"] = ("int8 MAC rate measured: an int8 FULLY_CONNECTED [256, 1024] x [1024, 1024] under "
                            "LiteRT + XNNPACK, one thread")
  else:
    machine["int8_note"] = f"int8 MAC rate estimated as {INT8_SPEEDUP:g}x the measured float32 rate, not measured"
  return machine
