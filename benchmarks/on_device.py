r"""Times exported .tflite models with NumPy and LiteRT only: no TensorFlow, no librosa, not even
tf_drnn. The one file to copy to a phone or a board (beside FILE.tflite and its sidecar FILE.json).

    python benchmarks/on_device.py drnn2_compact_int8.tflite                  # a table on stdout
    python benchmarks/on_device.py --calls=2000 --json=arm.json a.tflite b.tflite
    python benchmarks/on_device.py --label="emulated: qemu-aarch64 -cpu cortex-a76" --calls=100 a.tflite

Needs Python 3.9+, NumPy and ai-edge-litert (`pip install numpy ai-edge-litert`, or the tf-drnn base
install). One interpreter per file, `num_threads=--threads` (1 by default: one core, as an audio thread
runs it), LiteRT's default XNNPACK delegate. Per file:

  separate_frame  per-call time of the network alone (magnitude frame in, both sources out; the state
                  fed back), `--calls` timed calls after `--warmup`
  separate_pcm    per-call time of the whole streaming step inside the file (window, FFT, network,
                  mask, inverse FFT, overlap-add): one hop of audio per call
  block           per-block throughput of the app-side path (what tf-drnn-separate runs with a .tflite):
                  `--block_frames` hops of audio framed, windowed and transformed with NumPy, each frame
                  through separate_frame, soft-masked, inverse-transformed and overlap-added; best and
                  median of `--blocks` blocks, real-time factor = audio seconds / wall seconds
  estimate        NOT a measurement: the network's multiply-accumulates per frame (from the sidecar's
                  layer sizes) over published GEMM rates of one Cortex-A55 and one Cortex-A76 core
                  (CORE_RATES), int8 rates for int8/dynamic files, float32 for float32/float16 files

Prints a markdown table; --json also writes everything (with the machine, versions and --label) as JSON.
Timings of an emulator (qemu) or of a busy machine say little about a real device: label them.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

FORMAT = "tf_drnn.on_device/1"
SIGNATURES = ("separate_frame", "separate_pcm")
MASK_EPSILON = 1e-12  # as tf_drnn.model.masks_from_magnitudes

# Published single-core GEMM rates, in multiply-accumulates per cycle, of Arm Compute Library's own
# AArch64 GEMM kernels, as Arm lists them for its kernel selection (arm_gemm `get_performance_parameters`,
# ARM-software/ComputeLibrary src/core/NEON/kernels/arm_gemm/kernels/): int8 = a64_hybrid_s8s32_dot_6x16
# (SDOT), float32 = a64_hybrid_fp32_mla_6x16 (FMLA). The "A55r1" entry for the Cortex-A55; the default
# entry for the Cortex-A76 (the defaults "based on A76", Compute Library commit 318c9f4, COMPMID-3578).
# Clocks are typical, not measured: a Cortex-A55 little core at 1.8 GHz, a Cortex-A76 at 2.4 GHz
# (Raspberry Pi 5). Batched GEMM rates: a batch-1 frame reads each weight once, so a real core may be
# slower where the weights do not fit in its caches (see weight_bytes_per_frame).
CORE_RATES = {
    "Cortex-A55": {"ghz": 1.8, "macs_per_cycle": {"int8": 9.5238, "float32": 2.287}},
    "Cortex-A76": {"ghz": 2.4, "macs_per_cycle": {"int8": 29.6736, "float32": 6.667}},
}
CORE_RATES_SOURCE = ("Arm Compute Library arm_gemm kernel performance parameters (MACs/cycle): "
                     "a64_hybrid_s8s32_dot_6x16 (int8) and a64_hybrid_fp32_mla_6x16 (float32), A55r1 and "
                     "default (A76) entries; clocks assumed: A55 1.8 GHz, A76 2.4 GHz")
INTEGER_QUANTIZATIONS = ("int8", "dynamic")  # their dense layers multiply int8 x int8
RUNTIME_BYTES_PER_WEIGHT = {"float32": 4, "float16": 4, "dynamic": 1, "int8": 1}  # float16 is dequantized at load


def read_sidecar(path):
  sidecar = os.path.splitext(path)[0] + ".json"
  if not os.path.isfile(sidecar):
    raise SystemExit(f"error: {sidecar}: no such file (the sidecar tf-drnn-export writes beside {path})")
  with open(sidecar) as f:
    return json.load(f)


def macs_per_frame(model, num_bins):
  """Multiply-accumulates of the network's kernels per frame, from the sidecar's `model` (layer sizes):
  the first hidden layer sees `context` frames of `num_bins`, every recurrent layer adds its H x H
  recurrence, the heads map H to `num_bins` per source. None when the sidecar lacks the sizes."""
  try:
    context, layers, units = int(model["context"]), int(model["num_layers"]), int(model["hidden_units"])
  except (KeyError, TypeError, ValueError):
    return None
  recurrent = len(model.get("recurrent_layers") or ())
  sources = 1 if model.get("output_format") == "one_source" else 2
  return (context * num_bins * units + (layers - 1) * units * units + recurrent * units * units
          + sources * units * num_bins)


def estimates(macs, quantization):
  """{core: {...}}: ms per frame at each core's published GEMM rate (CORE_RATES): an estimate."""
  kind = "int8" if quantization in INTEGER_QUANTIZATIONS else "float32"
  result = {}
  for core, rate in CORE_RATES.items():
    gmacs = rate["ghz"] * rate["macs_per_cycle"][kind]
    result[core] = {"kernel": kind, "ghz": rate["ghz"], "macs_per_cycle": rate["macs_per_cycle"][kind],
                    "gmacs_per_second": round(gmacs, 2), "ms_per_frame": macs / (gmacs * 1e9) * 1e3}
  return result


def summarize(seconds, hop_seconds):
  ms = np.asarray(seconds, np.float64) * 1e3
  p50, p90 = np.percentile(ms, [50, 90])
  return {"p50_ms": float(p50), "p90_ms": float(p90), "mean_ms": float(ms.mean()), "min_ms": float(ms.min()),
          "calls": int(ms.size), "real_time_factor": float(hop_seconds * 1e3 / p50) if p50 > 0 else None}


def make_runner(path, threads, signature):
  from ai_edge_litert.interpreter import Interpreter
  return Interpreter(model_path=path, num_threads=int(threads)).get_signature_runner(signature)


def sample_inputs(name, shape, count, sample_rate, seed=0):
  """[count, *shape] float32: a noisy tone at about -20 dBFS (pcm) or magnitude-like frames."""
  rng = np.random.default_rng(seed)
  if name == "pcm":
    t = np.arange(count * shape[-1]) / sample_rate
    data = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.03 * rng.standard_normal(t.size)).reshape(count, *shape)
  else:
    data = np.exp(rng.normal(-3.0, 1.5, size=(count, *shape)))
  return data.astype(np.float32)


def time_signature(path, signature, calls, warmup, threads, sample_rate, distinct=64):
  """Per-call seconds [calls] of `signature`, its state fed back."""
  runner = make_runner(path, threads, signature)
  details = runner.get_input_details()
  name = "pcm" if "pcm" in details else "magnitude"
  data = sample_inputs(name, [int(d) for d in details[name]["shape"]], distinct, sample_rate)
  state = np.zeros(details["state"]["shape"], np.float32)
  times = np.empty(calls, np.float64)
  for i in range(warmup + calls):
    start = time.perf_counter()
    outputs = runner(**{name: data[i % distinct], "state": state})
    elapsed = time.perf_counter() - start
    state = outputs["next_state"]
    if i >= warmup:
      times[i - warmup] = elapsed
  if not np.all(np.isfinite(state)):
    raise RuntimeError(f"{path}: {signature}: the state went non-finite")
  return times


def time_blocks(path, sidecar, block_frames, blocks, threads):
  """Seconds per block of `block_frames` hops through the app-side path (NumPy STFT + separate_frame)."""
  n_fft, hop, rate = int(sidecar["n_fft"]), int(sidecar["hop_length"]), int(sidecar["sample_rate"])
  delay = int(sidecar["frame_delay"])
  runner = make_runner(path, threads, "separate_frame")
  window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft).astype(np.float32)
  audio = sample_inputs("pcm", [hop], block_frames * (blocks + 1) + delay + 2, rate).reshape(-1)
  model_state = np.zeros(runner.get_input_details()["state"]["shape"], np.float32)
  lookahead = np.zeros((delay, n_fft // 2 + 1), np.complex64)
  tail = np.zeros(n_fft - hop, np.float32)
  seconds = []
  for b in range(blocks + 1):  # the first block is a warm-up
    start = time.perf_counter()
    signal = audio[b * block_frames * hop:(b * block_frames + block_frames) * hop + n_fft - hop]
    frames = signal[hop * np.arange(block_frames)[:, None] + np.arange(n_fft)] * window
    spectrum = np.concatenate([lookahead, np.fft.rfft(frames).astype(np.complex64)])
    magnitude = np.abs(spectrum).astype(np.float32)
    vocals = np.empty((block_frames, n_fft // 2 + 1), np.float32)
    for t in range(block_frames):
      out = runner(magnitude=magnitude[delay + t][None], state=model_state)
      model_state = out["next_state"]
      vocals[t] = out["vocals"][0]
    masked = vocals / (magnitude[:block_frames] + MASK_EPSILON) * spectrum[:block_frames]
    time_frames = np.fft.irfft(masked, n=n_fft).astype(np.float32) * window
    output = np.zeros(block_frames * hop + n_fft - hop, np.float32)
    output[:n_fft - hop] = tail
    for t in range(block_frames):
      output[t * hop:t * hop + n_fft] += time_frames[t]
    tail = output[block_frames * hop:].copy()
    lookahead = spectrum[block_frames:]
    if b:
      seconds.append(time.perf_counter() - start)
  if not np.all(np.isfinite(output)):
    raise RuntimeError(f"{path}: block output went non-finite")
  seconds = np.asarray(seconds)
  audio_seconds = block_frames * hop / rate
  median = float(np.median(seconds))
  return {"frames": block_frames, "audio_seconds": audio_seconds, "blocks": int(seconds.size),
          "p50_ms": median * 1e3, "min_ms": float(seconds.min()) * 1e3,
          "frames_per_second": block_frames / median, "real_time_factor": audio_seconds / median}


def benchmark_file(path, calls, warmup, block_frames, blocks, threads):
  sidecar = read_sidecar(path)
  rate, hop = int(sidecar["sample_rate"]), int(sidecar["hop_length"])
  hop_seconds = hop / rate
  num_bins = int(sidecar.get("num_bins") or int(sidecar["n_fft"]) // 2 + 1)
  model = sidecar.get("model") or {}
  quantization = sidecar.get("quantization")
  entry = {"file": os.path.basename(path), "quantization": quantization, "tflite_bytes": os.path.getsize(path),
           "model": {k: model.get(k) for k in ("name", "architecture", "context", "num_layers", "hidden_units",
                                               "recurrent_layers", "output_format")},
           "sample_rate": rate, "hop_length": hop, "hop_ms": hop_seconds * 1e3}
  for signature in SIGNATURES:
    entry[signature] = summarize(time_signature(path, signature, calls, warmup, threads, rate), hop_seconds)
  entry["block"] = time_blocks(path, sidecar, block_frames, blocks, threads)
  macs = macs_per_frame(model, num_bins)
  if macs is not None:
    entry["macs_per_frame"] = macs
    entry["weight_bytes_per_frame"] = macs * RUNTIME_BYTES_PER_WEIGHT.get(quantization, 4)
    entry["estimate"] = estimates(macs, quantization)
  return entry


ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510",
             "0xd47": "Cortex-A710", "0xd48": "Cortex-X2", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3"}


def cpu_model():
  """The CPU's name: x86 "model name", or the board model and the Arm cores (from "CPU part")."""
  names, parts = {}, []
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = (part.strip() for part in line.partition(":"))
        names.setdefault(key, value)
        if key == "CPU part" and value.lower() not in parts:
          parts.append(value.lower())
  except OSError:
    pass
  # x86 "model name"; a Raspberry Pi's "Model" (x86's lowercase "model" is a number); older Arm "Hardware"
  model = next((names[k] for k in ("model name", "Model", "Hardware", "cpu model") if names.get(k)), None)
  cores = " + ".join(ARM_PARTS.get(part, f"Arm part {part}") for part in parts)
  return " / ".join(x for x in (model, cores) if x) or platform.processor() or platform.machine()


def arm_features():
  """The AArch64 features that decide LiteRT/XNNPACK's kernels (from the kernel's hardware capabilities;
  under qemu-user, those of the emulated CPU), or None off AArch64 Linux."""
  if platform.machine() not in ("aarch64", "arm64") or platform.system() != "Linux":
    return None
  try:
    import ctypes
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    hwcap, hwcap2 = getauxval(16), getauxval(26)  # AT_HWCAP, AT_HWCAP2
  except Exception:
    return None
  bits = {"asimd": (hwcap, 1), "fphp": (hwcap, 9), "asimdhp": (hwcap, 10), "asimddp": (hwcap, 20),
          "sve": (hwcap, 22), "i8mm": (hwcap2, 13), "bf16": (hwcap2, 14)}
  return [name for name, (word, bit) in bits.items() if word >> bit & 1]


def environment(label, threads):
  def version(module):
    try:
      from importlib.metadata import version as distribution_version
      return distribution_version(module)
    except Exception:
      return None
  return {"label": label, "machine": platform.machine(), "cpu": cpu_model(), "system": platform.system(),
          "python": platform.python_version(), "numpy": np.__version__, "ai_edge_litert": version("ai-edge-litert"),
          "arm_features": arm_features(), "threads": threads, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def render(results):
  env = results["environment"]
  lines = [f"On-device benchmark: {env['label'] or 'this machine'} ({env['machine']}, {env['cpu']}); Python "
           f"{env['python']}, NumPy {env['numpy']}, ai-edge-litert {env['ai_edge_litert']}; "
           f"{env['threads']} thread(s).", "",
           "| file | MACs/frame | separate_frame p50 ms | separate_pcm p50 ms | block of frames: ms (real-time factor) "
           "| estimate A55 ms/frame | estimate A76 ms/frame |",
           "|---|---|---|---|---|---|---|"]
  for entry in results["models"]:
    est = {core: f"{value['ms_per_frame']:.3f}" for core, value in entry.get("estimate", {}).items()}
    macs = f"{entry['macs_per_frame'] / 1e6:.2f} M" if "macs_per_frame" in entry else "—"
    block = entry["block"]
    lines.append(f"| {entry['file']} | {macs} | {entry['separate_frame']['p50_ms']:.3f} | "
                 f"{entry['separate_pcm']['p50_ms']:.3f} | {block['frames']}: {block['p50_ms']:.1f} "
                 f"({block['real_time_factor']:.0f}x) | {est.get('Cortex-A55', '—')} | {est.get('Cortex-A76', '—')} |")
  lines += ["", "Estimates are not measurements: MACs per frame over published GEMM rates "
            f"({results['estimate_source']})."]
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("models", nargs="+", help="FILE.tflite files (each with its sidecar FILE.json)")
  parser.add_argument("--calls", type=int, default=1000, help="timed calls per signature")
  parser.add_argument("--warmup", type=int, default=100, help="untimed calls before timing")
  parser.add_argument("--block_frames", type=int, default=32, help="hops per block (32: about 1 s at 16 kHz)")
  parser.add_argument("--blocks", type=int, default=5, help="timed blocks (after one untimed)")
  parser.add_argument("--threads", type=int, default=1, help="LiteRT num_threads")
  parser.add_argument("--label", default="", help="what ran it, e.g. 'emulated: qemu-aarch64 -cpu cortex-a53'")
  parser.add_argument("--json", help="also write the results to this JSON file")
  args = parser.parse_args(argv)
  if min(args.calls, args.blocks, args.block_frames, args.threads) < 1 or args.warmup < 0:
    parser.error("--calls, --blocks, --block_frames and --threads must be >= 1, --warmup >= 0")
  for path in args.models:
    if not os.path.isfile(path):
      parser.error(f"{path}: no such file")
  results = {"format": FORMAT, "environment": environment(args.label, args.threads),
             "estimate_source": CORE_RATES_SOURCE, "core_rates": CORE_RATES,
             "models": [benchmark_file(path, args.calls, args.warmup, args.block_frames, args.blocks, args.threads)
                        for path in args.models]}
  if args.json:
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
      json.dump(results, f, indent=2, sort_keys=True)
      f.write("\n")
    os.replace(tmp, args.json)
  sys.stdout.write(render(results))
  return 0


if __name__ == "__main__":
  sys.exit(main())
