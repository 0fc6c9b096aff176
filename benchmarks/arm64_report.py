r"""The report of benchmarks/arm64_emulated.sh: parity of the arm64 stems with the x86-64 host's, the
emulated and host timings, and the phone estimates, as JSON and markdown.

    python benchmarks/arm64_report.py --work=/tmp/tf_drnn_arm64 --output_dir=docs/benchmarks

Reads WORK/results/<target>/ (target: x86_64 and each emulated CPU): bench.json (benchmarks/on_device.py),
stems/<file>/clip_{vocals,accompaniment}.wav (tf-drnn-separate, float WAV) and separate_seconds.txt; and
WORK/arm64_packages.txt (what the arm64 runtime install holds). Writes OUTPUT_DIR/arm64_emulated.json and
arm64_emulated.md. Exits 1 when a float32 file's stems differ from the host's by more than
FLOAT32_TOLERANCE (largest absolute sample difference; full scale is 1).
"""
import argparse
import json
import os
import sys

import numpy as np

FLOAT32_TOLERANCE = 1e-5
STEMS = ("vocals", "accompaniment")
HOST = "x86_64"


def read_stem(folder, stem):
  import soundfile
  data, rate = soundfile.read(os.path.join(folder, f"clip_{stem}.wav"), dtype="float32", always_2d=True)
  return data, rate


def parity(host_folder, arm_folder):
  """{stem: {max_abs, rel_rms, snr_db, samples}} of the arm64 stems against the host's."""
  result = {}
  for stem in STEMS:
    (host, host_rate), (arm, arm_rate) = read_stem(host_folder, stem), read_stem(arm_folder, stem)
    if host.shape != arm.shape or host_rate != arm_rate:
      raise ValueError(f"{arm_folder}: {stem} is {arm.shape} at {arm_rate} Hz, the host's {host.shape} at {host_rate}")
    diff = arm.astype(np.float64) - host
    power = float(np.mean(np.square(host, dtype=np.float64)))
    error = float(np.mean(np.square(diff)))
    result[stem] = {"max_abs": float(np.max(np.abs(diff))), "rel_rms": float(np.sqrt(error / power)),
                    "snr_db": float(10 * np.log10(power / error)) if error > 0 else None,
                    "samples": int(host.shape[0]), "channels": int(host.shape[1]), "sample_rate": int(host_rate)}
  return result


def read_seconds(folder):
  seconds = {}
  path = os.path.join(folder, "separate_seconds.txt")
  if os.path.isfile(path):
    for line in open(path):
      name, value = line.split()
      seconds[name] = float(value)
  return seconds


def collect(work, cpus):
  results = os.path.join(work, "results")
  targets = [HOST] + list(cpus)
  runs = {}
  for target in targets:
    folder = os.path.join(results, target)
    with open(os.path.join(folder, "bench.json")) as f:
      runs[target] = {"bench": json.load(f), "separate_seconds": read_seconds(folder)}
  files = [entry["file"] for entry in runs[HOST]["bench"]["models"]]
  parities = {}
  for name in (os.path.splitext(f)[0] for f in files):
    host_folder = os.path.join(results, HOST, "stems", name)
    parities[name] = {cpu: parity(host_folder, os.path.join(results, cpu, "stems", name)) for cpu in cpus}
  # The scale of an int8 difference: the int8 file's own quantization error on the host (its stems
  # against the float32 file's of the same model).
  for name in list(parities):
    if name.endswith("_int8") and name[:-len("int8")] + "float32" in parities:
      reference = os.path.join(results, HOST, "stems", name[:-len("int8")] + "float32")
      parities[name]["host_int8_vs_float32"] = parity(reference, os.path.join(results, HOST, "stems", name))
  packages = []
  package_list = os.path.join(work, "arm64_packages.txt")
  if os.path.isfile(package_list):
    packages = [line.strip() for line in open(package_list) if line.strip()]
  return runs, parities, packages


def summarize(runs, parities, packages, suite):
  quantization = {e["file"]: e["quantization"] for e in runs[HOST]["bench"]["models"]}
  tolerances = {}
  for name, per_cpu in parities.items():
    kind = quantization[name + ".tflite"]
    arm = [p for key, p in per_cpu.items() if key != "host_int8_vs_float32"]
    worst = max(v["max_abs"] for p in arm for v in p.values())
    worst_rel = max(v["rel_rms"] for p in arm for v in p.values())
    entry = tolerances.setdefault(kind, {"max_abs": 0.0, "rel_rms": 0.0, "files": []})
    entry["max_abs"], entry["rel_rms"] = max(entry["max_abs"], worst), max(entry["rel_rms"], worst_rel)
    entry["files"].append(name)
  if "float32" in tolerances:
    tolerances["float32"]["tolerance"] = FLOAT32_TOLERANCE
    tolerances["float32"]["within"] = tolerances["float32"]["max_abs"] <= FLOAT32_TOLERANCE
  return {"format": "tf_drnn.arm64_emulated/1", "suite": suite, "arm64_packages": packages,
          "clip": "6 s synthesized song (tf_drnn.synth, seeds 7 and 8), 44.1 kHz stereo, float WAV",
          "note": "Timings under qemu-user are an emulator's (translated code, on a shared x86-64 host), "
                  "not a device's; the estimates are computed, not measured.",
          "parity": parities, "parity_summary": tolerances,
          "runs": {target: run for target, run in runs.items()}}


def fmt(value, digits=3):
  return "—" if value is None else f"{value:.{digits}f}"


def render(report):
  """The markdown report: the setup, the parity of the stems, the timings and the phone estimate."""
  cpus = [t for t in report["runs"] if t != HOST]
  lines = (_render_setup(report, cpus) + _render_parity(report, cpus) + _render_timings(report["runs"], cpus)
           + _render_estimate(report["runs"][HOST]["bench"]))
  return "\n".join(lines) + "\n"


def _render_setup(report, cpus):
  """The title and what ran where: the arm64 root file system, the emulated CPUs, the host."""
  runs = report["runs"]
  env = runs[HOST]["bench"]["environment"]
  arm_env = {cpu: runs[cpu]["bench"]["environment"] for cpu in cpus}
  emulated = [f"`-cpu {cpu}` (features: {' '.join(arm_env[cpu].get('arm_features') or [])})" for cpu in cpus]
  return ["# tf-drnn on arm64, emulated (qemu-user) — and a phone estimate", "",
          "Made by `benchmarks/arm64_emulated.sh` (`benchmarks/arm64_report.py`); how to run it on a real "
          "device: `docs/on_device.md`.", "",
          f"- arm64: Debian {report['suite']} root filesystem (mmdebstrap), Python {arm_env[cpus[0]]['python']}, "
          f"the tf-drnn runtime installed from aarch64 wheels only: "
          f"{', '.join(report['arm64_packages']) or '(package list not recorded)'}.",
          f"- Emulated CPUs: {', '.join(emulated)}.",
          f"- Host (x86-64, measured): {env['cpu']}, Python {env['python']}, NumPy {env['numpy']}, "
          f"ai-edge-litert {env['ai_edge_litert']}; {env['time']}. Arm64: NumPy {arm_env[cpus[0]]['numpy']}, "
          f"ai-edge-litert {arm_env[cpus[0]]['ai_edge_litert']}.",
          f"- {report['note']}", ""]


def _render_parity(report, cpus):
  """The table of stem differences per file and CPU, and one line per quantization on what they mean."""
  lines = ["## Parity: arm64 stems against the x86-64 host's", "",
           f"`tf-drnn-separate --model=FILE.tflite --subtype=FLOAT` on the same clip ({report['clip']}), "
           "full band; largest absolute sample difference (full scale 1) and RMS difference over the host "
           "stem's RMS, the worse of the two stems.", "",
           "| file | " + " | ".join(f"{c}: max abs | {c}: RMS rel" for c in cpus) + " |",
           "|---|" + "---|---|" * len(cpus)]
  for name, per_cpu in report["parity"].items():
    cells = []
    for cpu in cpus:
      stems = per_cpu[cpu].values()
      cells += [f"{max(s['max_abs'] for s in stems):.2e}", f"{max(s['rel_rms'] for s in stems):.2e}"]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  lines.append("")
  quantization_error = [f"{name}: {max(s['rel_rms'] for s in per_cpu['host_int8_vs_float32'].values()):.2e}"
                        for name, per_cpu in report["parity"].items() if "host_int8_vs_float32" in per_cpu]
  for kind, summary in report["parity_summary"].items():
    if kind == "float32":
      lines.append(f"- float32: largest difference {summary['max_abs']:.2e} "
                   f"({'within' if summary['within'] else 'OVER'} the {summary['tolerance']:g} tolerance).")
    else:
      lines.append(f"- {kind}: largest difference {summary['max_abs']:.2e}, RMS {summary['rel_rms']:.2e} of the "
                   "stem: the measured tolerance. LiteRT's int8 kernels differ between x86-64 and arm64 (most "
                   "likely in requantization rounding), and a last-bit difference travels through the recurrent "
                   "state. "
                   "For scale, the int8 files' own quantization error on the host (RMS of int8 stems minus "
                   f"float32 stems over the stem's RMS): {'; '.join(quantization_error) or 'not measured'}.")
  return lines


def _render_timings(runs, cpus):
  """Per-call p50 of each file on every target with the estimates, then whole-file separation times."""
  host = runs[HOST]["bench"]
  lines = ["", "## Timings", "",
           "ms per call, p50, one thread. Emulated rows are qemu's, NOT a device's: they say the "
           "program runs, not how fast a phone is. The estimate columns are computed (see below).", "",
           "| file | MACs/frame | " + " | ".join(f"{t}: separate_frame | {t}: separate_pcm" for t in [HOST] + cpus)
           + " | est. Cortex-A55 | est. Cortex-A76 |",
           "|---|---|" + "---|---|" * (len(cpus) + 1) + "---|---|"]
  by_file = {t: {e["file"]: e for e in runs[t]["bench"]["models"]} for t in runs}
  for entry in host["models"]:
    cells = [f"{entry.get('macs_per_frame', 0) / 1e6:.2f} M"]
    for target in [HOST] + cpus:
      e = by_file[target][entry["file"]]
      cells += [fmt(e["separate_frame"]["p50_ms"]), fmt(e["separate_pcm"]["p50_ms"])]
    est = entry.get("estimate", {})
    cells += [fmt(est.get("Cortex-A55", {}).get("ms_per_frame")), fmt(est.get("Cortex-A76", {}).get("ms_per_frame"))]
    lines.append(f"| {entry['file']} | " + " | ".join(cells) + " |")
  lines += ["", "Whole-file separation of the 6 s clip (`tf-drnn-separate`, wall seconds including Python "
            "start-up and imports):", "",
            "| file | " + " | ".join([HOST] + cpus) + " |", "|---|" + "---|" * (len(cpus) + 1)]
  for entry in host["models"]:
    name = os.path.splitext(entry["file"])[0]
    lines.append(f"| {name} | " + " | ".join(fmt(runs[t]["separate_seconds"].get(name), 1) for t in [HOST] + cpus)
                 + " |")
  return lines


def _render_estimate(host):
  """How the phone estimate is computed, from the host's published core rates."""
  rates = host["core_rates"]
  return ["", "## The phone estimate", "",
          "MACs per frame from the layer sizes (first layer context × 513 bins × H, H × H per further "
          "layer and per recurrence, H × 513 per source head), over a published single-core GEMM rate: "
          + "; ".join(f"{core} at {r['ghz']} GHz: int8 {r['macs_per_cycle']['int8']} and float32 "
                      f"{r['macs_per_cycle']['float32']} MACs/cycle" for core, r in rates.items())
          + f". Source: {host['estimate_source']}. A frame (one call) is 32 ms of audio. These are "
          "compute-only lower bounds: batch-1 inference reads every weight once per frame "
          "(`weight_bytes_per_frame` in the JSON), so a core whose caches cannot hold the weights waits "
          "on memory, and LiteRT's own kernels and the Python binding add their overhead; measure on the "
          "device (`docs/on_device.md`)."]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--work", required=True)
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--cpus", default="cortex-a53,cortex-a76")
  parser.add_argument("--suite", default="bookworm")
  args = parser.parse_args(argv)
  cpus = [c for c in args.cpus.split(",") if c]
  runs, parities, packages = collect(args.work, cpus)
  report = summarize(runs, parities, packages, args.suite)
  os.makedirs(args.output_dir, exist_ok=True)
  with open(os.path.join(args.output_dir, "arm64_emulated.json"), "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
    f.write("\n")
  text = render(report)
  with open(os.path.join(args.output_dir, "arm64_emulated.md"), "w") as f:
    f.write(text)
  sys.stdout.write(text)
  float32 = report["parity_summary"].get("float32")
  if float32 and not float32["within"]:
    print(f"error: float32 stems differ by {float32['max_abs']:.2e} > {FLOAT32_TOLERANCE:g}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
