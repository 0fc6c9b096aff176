"""Peak resident memory of a process that only streams.

A fresh Python process (`python -m benchmarks.memory` from the repository root) imports NumPy and LiteRT, no TensorFlow,
loads the .tflite, streams `calls` hops through `separate_pcm` with the state fed back, and
reports its own peak RSS:

* Linux: VmHWM from /proc/self/status, the peak RSS of this process image. Not ru_maxrss:
  the kernel carries the parent's RSS at fork across exec into the child's ru_maxrss, so
  a child of a TensorFlow-sized parent would report the parent's size.
* elsewhere: resource.getrusage's ru_maxrss (bytes on macOS, KiB on other Unixes), or
  psutil's peak working set on Windows.
"""
import json
import os
import subprocess
import sys

MB = 1e6
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `-m benchmarks.memory` resolves


def ru_maxrss_to_bytes(value, platform=sys.platform):
  """resource.getrusage().ru_maxrss in bytes: bytes on macOS, KiB on Linux and other Unixes."""
  return int(value) if platform == "darwin" else int(value) * 1024


def vm_hwm_bytes(status_path="/proc/self/status"):
  """Peak RSS of this process image from /proc (Linux), or None where there is no /proc."""
  try:
    with open(status_path) as f:
      for line in f:
        if line.startswith("VmHWM:"):
          value, unit = line.split()[1:3]
          return int(value) * {"kB": 1024, "mB": 1024 ** 2}.get(unit, 1)
  except (OSError, ValueError, IndexError):
    pass
  return None


def ru_maxrss_bytes():
  try:
    import resource
  except ImportError:  # Windows
    return None
  return ru_maxrss_to_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_rss_bytes():
  """(bytes, source) of this process's peak resident memory, the most reliable measure first."""
  for source, measure in (("VmHWM", vm_hwm_bytes), ("ru_maxrss", ru_maxrss_bytes)):
    value = measure()
    if value is not None:
      return value, source
  import psutil
  info = psutil.Process().memory_info()
  return int(getattr(info, "peak_wset", info.rss)), "psutil"


def stream_and_report(path, signature, calls, threads, xnnpack):
  """The child's work: load, stream, report (a dict). Imports only NumPy and LiteRT."""
  import numpy as np
  from tf_drnn.litert import make_interpreter  # NumPy and LiteRT only, no TensorFlow
  after_imports, _ = peak_rss_bytes()
  interpreter = make_interpreter(path, threads, xnnpack)
  runner = interpreter.get_signature_runner(signature)
  details = runner.get_input_details()
  name = "pcm" if "pcm" in details else "magnitude"
  state = np.zeros(details["state"]["shape"], np.float32)
  inputs = np.abs(0.1 * np.random.default_rng(0).standard_normal((16, *details[name]["shape"]))).astype(np.float32)
  after_load, _ = peak_rss_bytes()
  for i in range(calls):
    state = runner(**{name: inputs[i % 16], "state": state})["next_state"]
  peak, source = peak_rss_bytes()
  return {"peak_rss_bytes": peak, "peak_source": source, "after_imports_bytes": after_imports,
          "after_load_bytes": after_load, "ru_maxrss_bytes": ru_maxrss_bytes(), "calls": calls,
          "finite": bool(np.all(np.isfinite(state))),
          "tensorflow_imported": any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules)}


def peak_rss(path, calls=1000, threads=1, xnnpack=True, signature="separate_pcm", timeout=300):
  """Runs the streaming child on `path`; returns its report, sizes in MB as well as bytes."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  command = [sys.executable, "-m", "benchmarks.memory", os.path.abspath(path), signature, str(int(calls)),
             str(int(threads)), "1" if xnnpack else "0"]
  completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=_REPO)
  lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
  if completed.returncode != 0 or not lines:
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"memory child failed on {path} (exit {completed.returncode}): {' | '.join(tail)}")
  report = json.loads(lines[-1])
  report.update({
      "peak_rss_mb": report["peak_rss_bytes"] / MB,
      "after_imports_mb": report["after_imports_bytes"] / MB,
      "model_and_streaming_mb": (report["peak_rss_bytes"] - report["after_imports_bytes"]) / MB,
      "signature": signature, "threads": int(threads), "xnnpack": bool(xnnpack),
  })
  return report


if __name__ == "__main__":  # The child: python -m benchmarks.memory PATH SIGNATURE CALLS THREADS XNNPACK(0/1)
  _path, _signature, _calls, _threads, _xnnpack = sys.argv[1:6]
  print(json.dumps(stream_and_report(_path, _signature, int(_calls), int(_threads), _xnnpack == "1")))
