"""Per-call latency of the exported signatures under LiteRT.

Each call goes through the Interpreter's SignatureRunner, the way an app written in Python
would stream: inputs set, invoke, outputs read back, and `next_state` fed back as the next
call's `state`. Timed with time.perf_counter_ns after a warm-up, over thousands of calls.
With XNNPACK (the default delegate LiteRT applies) and without it
(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES: the builtin kernels only).
"""
import time

import numpy as np

from tf_drnn.litert import make_interpreter
from tf_drnn.config import DEFAULT_AUDIO_CONFIG  # noqa: E402

SIGNATURES = ("separate_frame", "separate_pcm")
PERCENTILES = (50, 90, 99)


def config_key(threads, xnnpack):
  """'1t_xnnpack', '2t_builtin', ...: the key of one interpreter configuration."""
  return f"{int(threads)}t_{'xnnpack' if xnnpack else 'builtin'}"


def parse_config_key(key):
  """'2t_builtin' -> (2, False)."""
  threads, _, kind = key.partition("t_")
  return int(threads), kind == "xnnpack"


def percentiles(samples, points=PERCENTILES):
  """{"p50": ..., "p90": ..., "p99": ...} of `samples` (linear interpolation, numpy's default)."""
  samples = np.asarray(samples, np.float64)
  if samples.size == 0:
    raise ValueError("no samples")
  values = np.percentile(samples, points)
  return {f"p{p}": float(v) for p, v in zip(points, values)}


def summarize(seconds, hop_seconds):
  """Per-call times in seconds -> milliseconds percentiles, mean, min, and the real-time factor.

  The real-time factor is audio seconds per call (one hop) over seconds per call at the
  median: 100 means a call takes 1/100 of the audio it processes.
  """
  ms = np.asarray(seconds, np.float64) * 1e3
  result = {f"{k}_ms": v for k, v in percentiles(ms).items()}
  result.update({"mean_ms": float(ms.mean()), "min_ms": float(ms.min()), "calls": int(ms.size),
                 "real_time_factor": real_time_factor(hop_seconds, result["p50_ms"] / 1e3)})
  return result


def real_time_factor(audio_seconds_per_call, seconds_per_call):
  return float(audio_seconds_per_call / seconds_per_call) if seconds_per_call > 0 else float("inf")


def signature_inputs(runner, steps, seed=0):
  """Realistic inputs for a signature: (input name, [steps, 1, n] float32 array, state shape)."""
  details = runner.get_input_details()
  name = "pcm" if "pcm" in details else "magnitude"
  shape = [int(d) for d in details[name]["shape"]]
  rng = np.random.default_rng(seed)
  if name == "pcm":  # A noisy tone at about -20 dBFS.
    t = np.arange(steps * shape[-1]) / DEFAULT_AUDIO_CONFIG.sample_rate
    signal = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.03 * rng.standard_normal(t.size)
    data = signal.reshape(steps, *shape)
  else:  # Magnitude-like frames: positive, spread over decades.
    data = np.exp(rng.normal(-3.0, 1.5, size=(steps, *shape)))
  return name, data.astype(np.float32), [int(d) for d in details["state"]["shape"]]


def time_signature(interpreter, signature, calls, warmup, distinct_inputs=64):
  """Times `calls` runner calls after `warmup` calls; returns per-call seconds [calls].

  The state output of each call is the next call's state; inputs cycle through
  `distinct_inputs` different frames (or hops).
  """
  runner = interpreter.get_signature_runner(signature)
  name, data, state_shape = signature_inputs(runner, distinct_inputs)
  state = np.zeros(state_shape, np.float32)
  timer = time.perf_counter_ns
  times = np.empty(calls, np.int64)
  for i in range(warmup + calls):
    start = timer()
    outputs = runner(**{name: data[i % distinct_inputs], "state": state})
    elapsed = timer() - start
    state = outputs["next_state"]
    if i >= warmup:
      times[i - warmup] = elapsed
  if not np.all(np.isfinite(state)):
    raise RuntimeError(f"{signature}: the state went non-finite while timing")
  return times.astype(np.float64) * 1e-9


def time_invoke_only(interpreter, signature, calls, warmup, distinct_inputs=64):
  """Per-call seconds of the C++ Invoke alone (inputs set and outputs read outside the timer).

  Uses the SignatureRunner's wrapper (not public API); returns None where it is absent.
  Tells the kernels' time apart from the Python binding's overhead.
  """
  runner = interpreter.get_signature_runner(signature)
  wrapper = getattr(runner, "_interpreter_wrapper", None)
  subgraph = getattr(runner, "_subgraph_index", None)
  inputs = getattr(runner, "_inputs", None)
  outputs = dict(getattr(runner, "_outputs", ()))
  if wrapper is None or subgraph is None or inputs is None or "next_state" not in outputs:
    return None
  name, data, state_shape = signature_inputs(runner, distinct_inputs)
  state = np.zeros(state_shape, np.float32)
  runner(**{name: data[0], "state": state})  # Allocates tensors.
  timer = time.perf_counter_ns
  times = np.empty(calls, np.int64)
  for i in range(warmup + calls):
    wrapper.SetTensor(inputs[name], data[i % distinct_inputs], subgraph)
    wrapper.SetTensor(inputs["state"], state, subgraph)
    start = timer()
    wrapper.Invoke(subgraph)
    elapsed = timer() - start
    state = wrapper.GetTensor(outputs["next_state"], subgraph)
    if i >= warmup:
      times[i - warmup] = elapsed
  return times.astype(np.float64) * 1e-9


def benchmark_file(path, threads_list, calls, warmup, hop_seconds, signatures=SIGNATURES,
                   xnnpack_modes=(True, False), invoke_only_config=(1, True), progress=None):
  """Latency of every signature of one .tflite under every (threads, XNNPACK) configuration.

  Returns (summary, samples): summary[signature][config_key] = percentiles etc. (ms),
  samples[(signature, config_key)] = per-call seconds. With `invoke_only_config`
  (threads, xnnpack), that configuration also gets an "invoke_only" entry.
  """
  summary = {signature: {} for signature in signatures}
  samples = {}
  for xnnpack in xnnpack_modes:
    for threads in threads_list:
      key = config_key(threads, xnnpack)
      interpreter = make_interpreter(path, threads, xnnpack)
      for signature in signatures:
        if progress:
          progress(f"latency {signature} {key}")
        seconds = time_signature(interpreter, signature, calls, warmup)
        entry = summarize(seconds, hop_seconds)
        entry.update({"threads": int(threads), "xnnpack": bool(xnnpack), "warmup": int(warmup)})
        if invoke_only_config is not None and (int(threads), bool(xnnpack)) == tuple(invoke_only_config):
          invoke = time_invoke_only(interpreter, signature, calls, warmup)
          if invoke is not None:
            entry["invoke_only"] = {k: v for k, v in summarize(invoke, hop_seconds).items()
                                    if k.endswith("_ms")}
        summary[signature][key] = entry
        samples[(signature, key)] = seconds
      del interpreter
  return summary, samples
