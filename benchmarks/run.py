r"""Benchmarks the exported streaming model: latency, memory, roofline, quality, TF throughput.

    python -m benchmarks.run --output_dir=/tmp/bench                       # bundled model, all four variants
    python -m benchmarks.run --output_dir=/tmp/bench --model=runs/mine/model.keras --variants=float32,int8
    python -m benchmarks.run --output_dir=/tmp/bench2 --tflite_dir=/tmp/bench   # reuse exported files
    python -m benchmarks.run --output_dir=/tmp/cmp --compare=/tmp/a/results.json,/tmp/b/results.json

Writes into --output_dir:
  results.json         everything measured, with the machine and software versions
  summary.md           one table: variant x signature, size, p50/p90/p99 per configuration,
                       real-time factor, peak RSS, vocal GNSDR, multiple of the roofline bound
  latency.png          latency distributions per variant, signature and configuration
  latency_samples.npz  the per-call times behind latency.png
  <model>_<variant>.tflite/.json   the exported files (unless --tflite_dir)
With --compare, only compare.md (two results files side by side).

Run it on an otherwise idle machine: timings of a busy machine mean little.
"""
import json
import os
import sys
import time

from absl import flags

from tf_drnn.cli_util import quiet_tensorflow, run_app, run_guarded
from tf_drnn.errors import UserError, first_line

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
VARIANTS = ("float32", "float16", "dynamic", "int8")
SECTIONS = ("latency", "memory", "roofline", "quality", "separation", "training")
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(_REPO), "shared", "MIR-1K")
RESULTS_FORMAT = "tf_drnn.benchmarks/1"


def define_flags():
  from tf_drnn.flags_common import define_data_dir, define_model, define_output_dir
  define_output_dir("results.json, summary.md, latency.png (and the exported files)")
  define_model(note="A Keras model: the benchmark exports it (or see --tflite_dir).")
  flags.DEFINE_list("variants", list(VARIANTS), "Quantization variants to benchmark.")
  flags.DEFINE_list("threads", ["1", "2"], "LiteRT thread counts to time.")
  flags.DEFINE_integer("calls", 2000, "Timed calls per signature and configuration.")
  flags.DEFINE_integer("warmup", 200, "Untimed warm-up calls before timing.")
  flags.DEFINE_integer("memory_calls", 500, "separate_pcm calls streamed by the peak-RSS process.")
  define_data_dir(note="MIR-1K only (int8 calibration, quality, training throughput). Default: "
                  "../shared/MIR-1K beside the repository, when present.")
  flags.DEFINE_integer("quality_clips", 10, "Public test clips scored for quality (0: skip quality).")
  flags.DEFINE_integer("calibration_frames", 2000, "int8 calibration steps per signature.")
  flags.DEFINE_string("tflite_dir", None, "Benchmark the .tflite files (with sidecars) in this folder "
                      "instead of exporting; each variant is the file whose sidecar names that quantization.")
  flags.DEFINE_string("compare", None, "A.json,B.json: write DIR/compare.md with two results side by side.")
  flags.DEFINE_list("skip", [], f"Sections to leave out: {', '.join(SECTIONS)}.")
  flags.DEFINE_integer("training_steps", 5, "Timed training steps (after one compiling step).")
  flags.DEFINE_float("separation_seconds", 30.0, "Length of the synthesized song the Separator separates.")
  flags.mark_flag_as_required("output_dir")


_STARTED = time.perf_counter()


def log(message):
  print(f"[{time.perf_counter() - _STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


def write_atomically(path, data, binary=False):
  from tf_drnn.atomic import atomic_output
  with atomic_output(path) as tmp, open(tmp, "wb" if binary else "w") as f:
    f.write(data)


# --- inputs ----------------------------------------------------------------------------------------

def resolve_model(path):
  """The .keras file to benchmark; a missing bundled model is one clear error line."""
  from tf_drnn.models import resolve_model_path
  return resolve_model_path(path)


def resolve_data_dir(path):
  """--data_dir, or the default ../shared/MIR-1K when it exists, or None."""
  if path:
    if not os.path.isdir(path):
      raise UserError(f"{path}: data directory does not exist")
    return path
  return DEFAULT_DATA_DIR if os.path.isdir(os.path.join(DEFAULT_DATA_DIR, "Wavfile")) else None


def parse_variants(names):
  unknown = [n for n in names if n not in VARIANTS]
  if unknown or not names:
    raise UserError(f"--variants: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}")
  return list(dict.fromkeys(names))


def parse_threads(values):
  try:
    threads = [int(v) for v in values]
  except ValueError:
    raise UserError(f"--threads: expected integers, got {','.join(values)}") from None
  if not threads or min(threads) < 1:
    raise UserError("--threads: give one or more thread counts >= 1")
  return sorted(set(threads))


def find_tflite_files(directory, variants):
  """{variant: (tflite path, sidecar)} from the sidecars in `directory`."""
  if not os.path.isdir(directory):
    raise UserError(f"{directory}: --tflite_dir does not exist")
  found = {}
  for name in sorted(os.listdir(directory)):
    if not name.endswith(".tflite"):
      continue
    path = os.path.join(directory, name)
    sidecar_path = os.path.splitext(path)[0] + ".json"
    if not os.path.isfile(sidecar_path):
      continue
    with open(sidecar_path) as f:
      sidecar = json.load(f)
    quantization = sidecar.get("quantization")
    if quantization in variants:
      if quantization in found:
        raise UserError(f"{directory}: two {quantization} files ({os.path.basename(found[quantization][0])}, {name})")
      found[quantization] = (path, sidecar)
  missing = [v for v in variants if v not in found]
  if missing:
    raise UserError(f"{directory}: no .tflite with a sidecar for {', '.join(missing)}")
  return found


def calibration_audio(data_dir, frames):
  """Mixtures for int8 calibration: MIR-1K training clips, or synthesized songs without data."""
  from tf_drnn_export.calibration import calibration_audio_from_data_dir
  if data_dir:
    return calibration_audio_from_data_dir(data_dir, frames), "MIR-1K training mixtures"
  import numpy as np
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  from tf_drnn.levels import TRAINING_LEVEL_DBFS, scale_to_dbfs
  from tf_drnn.synth import sung_like_mixture
  songs = []
  for seed in range(max(1, frames * config.hop_length // (config.sample_rate * 8) + 1)):
    song = np.sum(sung_like_mixture(8.0, seed=seed), axis=0)
    songs.append(scale_to_dbfs(song, TRAINING_LEVEL_DBFS))
  return songs, "synthesized songs (no --data_dir)"


def export_variants(model, model_path, variants, output_dir, data_dir, calibration_frames):
  """Exports each variant into output_dir; returns {variant: (path, sidecar)} and export seconds."""
  from tf_drnn_export.convert import export_tflite
  stem = os.path.splitext(os.path.basename(model_path))[0]
  if stem == "model":  # A training model_dir's model.keras: name the files after the folder.
    stem = os.path.basename(os.path.dirname(os.path.abspath(model_path))) or stem
  exported, seconds = {}, {}
  for variant in variants:
    log(f"exporting {variant}")
    start = time.perf_counter()
    path = os.path.join(output_dir, f"{stem}_{variant}.tflite")
    extra = {}
    if variant == "int8":
      audio, source = calibration_audio(data_dir, calibration_frames)
      extra = {"calibration_audio": audio, "max_calibration_steps": calibration_frames}
      log(f"  int8 calibration on {source}")
    sidecar = export_tflite(model, path, variant, model_path=model_path, **extra)
    exported[variant] = (path, sidecar)
    seconds[variant] = time.perf_counter() - start
  return exported, seconds


# --- the run ---------------------------------------------------------------------------------------

def recorded_path(path, output_dir):
  """`path` as results.json records it: relative to the results' folder or else to the repository
  when inside one of them, else as given (a committed record names no folder of this machine)."""
  for root in (output_dir, _REPO):
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if not relative.startswith(os.pardir):
      return relative
  return path


class Run:
  """Collects results section by section and writes them after each one."""

  def __init__(self, output_dir, results):
    self.output_dir = output_dir
    self.results = results
    self.samples = {}
    self.files = {}  # variant: its .tflite file, as this process opens it

  def section(self, name, function):
    start = time.perf_counter()
    try:
      function()
    except UserError:
      raise
    except Exception as error:  # Record it, carry on with the other sections.
      message = f"{type(error).__name__}: {first_line(error, limit=None, empty='')}"
      self.results.setdefault("errors", {})[name] = message
      log(f"{name} failed: {message}")
    self.results.setdefault("section_seconds", {})[name] = time.perf_counter() - start
    self.save()

  def save(self):
    write_atomically(os.path.join(self.output_dir, "results.json"),
                     json.dumps(self.results, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value):
  import numpy as np
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, tuple):
    return list(value)
  raise TypeError(f"not JSON serializable: {type(value).__name__}")


def benchmark(output_dir, model_path=None, variants=VARIANTS, threads=(1, 2), calls=2000, warmup=200,
              memory_calls=500, data_dir=None, quality_clips=10, calibration_frames=2000, tflite_dir=None,
              skip=(), training_steps=5, separation_seconds=30.0):
  """The library entry point of `benchmarks/run.py`; returns the results dict (also written to disk).

  The export (or the files of `tflite_dir`) comes first; then each section not in `skip` runs and
  is written to results.json in turn (a failing one records its error and the others carry on).
  """
  variants, threads = check_choices(skip, variants, threads, calls, warmup, memory_calls)
  model_path = resolve_model(model_path)
  data_dir = resolve_data_dir(data_dir)
  os.makedirs(output_dir, exist_ok=True)
  started = time.perf_counter()
  quiet_tensorflow()
  from tf_drnn.models import load_model
  log(f"loading {model_path}")
  model = load_model(model_path)
  settings = {"model": recorded_path(model_path, output_dir), "variants": variants, "threads": threads,
              "calls": calls, "warmup": warmup, "memory_calls": memory_calls,
              "data_dir": data_dir and recorded_path(data_dir, output_dir), "quality_clips": quality_clips,
              "calibration_frames": calibration_frames, "tflite_dir": tflite_dir, "skip": list(skip),
              "training_steps": training_steps, "separation_seconds": separation_seconds}
  run = Run(output_dir, first_results(model, model_path, settings))
  run.section("export", lambda: export_section(run, model, model_path, data_dir, tflite_dir, calibration_frames))
  if "export" in run.results.get("errors", {}):
    raise RuntimeError(f"export failed: {run.results['errors']['export']}")
  file_sections = {"latency": lambda: latency_section(run, threads, calls, warmup),
                   "memory": lambda: memory_section(run, memory_calls),
                   "roofline": lambda: roofline_section(run)}
  keras_sections = {"quality": lambda: quality_section(run, model, data_dir, quality_clips),
                    "separation": lambda: separation_section(run, model, separation_seconds),
                    "training": lambda: training_section(run, model, data_dir, training_steps)}
  if quality_clips <= 0:
    del keras_sections["quality"]
  for name, function in file_sections.items():
    if name not in skip:
      run.section(name, function)
  run.results.setdefault("keras", {"size_bytes": os.path.getsize(model_path)})  # What keras_sections fill.
  for name, function in keras_sections.items():
    if name not in skip:
      run.section(name, function)
  write_outputs(run, started)
  return run.results


def check_choices(skip, variants, threads, calls, warmup, memory_calls):
  """(variants, thread counts) checked, or a UserError naming the first bad flag."""
  unknown = [s for s in skip if s not in SECTIONS]
  if unknown:
    raise UserError(f"--skip: unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
  variants = parse_variants(list(variants))
  threads = parse_threads(list(threads))
  if calls < 1 or warmup < 0 or memory_calls < 1:
    raise UserError("--calls and --memory_calls must be >= 1, --warmup >= 0")
  return variants, threads


def first_results(model, model_path, settings):
  """The results dict before any section: the environment, the settings and the Keras model."""
  from benchmarks import environment, roofline
  from tf_drnn.model import audio_config, describe
  config = audio_config(model)  # one call of separate_pcm is one of its hops
  structure = describe(model)
  return {
      "format": RESULTS_FORMAT,
      "environment": environment.describe_environment(),
      "settings": {**settings, "sample_rate": config.sample_rate, "hop_length": config.hop_length},
      "model": {"path": settings["model"], "size_bytes": os.path.getsize(model_path),
                "structure": {k: list(v) if isinstance(v, tuple) else v for k, v in structure.items()},
                "parameters": roofline.count_parameters(model)},
      "variants": {},
  }


# --- the sections ----------------------------------------------------------------------------------

def export_section(run, model, model_path, data_dir, tflite_dir, calibration_frames):
  """The files of every variant (exported, or found in tflite_dir) -> results["variants"]."""
  results = run.results
  variants = results["settings"]["variants"]
  if tflite_dir:
    files = find_tflite_files(tflite_dir, variants)
    results["export_seconds"] = None
  else:
    files, seconds = export_variants(model, model_path, variants, run.output_dir, data_dir, calibration_frames)
    results["export_seconds"] = seconds
  for variant in variants:
    path, sidecar = files[variant]
    run.files[variant] = path
    results["variants"][variant] = {
        "file": recorded_path(path, run.output_dir), "size_bytes": os.path.getsize(path),
        "sidecar": {k: sidecar.get(k) for k in ("quantization", "sample_rate", "n_fft", "hop_length",
                                                "latency_samples", "frame_delay", "state_size")}}


def latency_section(run, threads, calls, warmup):
  """Per-call times of each variant's signatures under LiteRT (the samples kept for the plot)."""
  from benchmarks import latency
  for variant, entry in run.results["variants"].items():
    hop_seconds = entry["sidecar"]["hop_length"] / entry["sidecar"]["sample_rate"]  # the file's own hop
    summary, samples = latency.benchmark_file(
        run.files[variant], threads, calls, warmup, hop_seconds,
        invoke_only_config=(threads[0], True), progress=lambda m, v=variant: log(f"{v}: {m}"))
    entry["latency"] = summary
    for (signature, key), seconds in samples.items():
      run.samples[(variant, signature, key)] = seconds


def memory_section(run, memory_calls):
  """The peak RSS of a process streaming each variant, with and without XNNPACK."""
  from benchmarks import memory
  for variant, entry in run.results["variants"].items():
    log(f"{variant}: peak RSS of a streaming process")
    entry["memory"] = {("xnnpack" if x else "builtin"): memory.peak_rss(run.files[variant], memory_calls, 1, x)
                       for x in (True, False)}


def roofline_section(run):
  """The machine's measured rates, and each variant's bound and measured multiple of it."""
  from benchmarks import report, roofline
  results = run.results
  parameters = results["model"]["parameters"]
  log("roofline: measuring single-thread matmul (NumPy; LiteRT float32 and int8) and copy bandwidth")
  working_set = roofline.bytes_per_frame(parameters, "int8")
  probe_dir = os.path.join(run.output_dir, "roofline_probe")
  os.makedirs(probe_dir, exist_ok=True)
  machine = roofline.measure_machine(working_set_bytes=max(2 * working_set, 1 << 20), litert_dir=probe_dir)
  results["machine"] = machine
  reference = report.reference_config(results)
  for variant, entry in results["variants"].items():
    roof = roofline.variant_roofline(parameters, variant, machine)
    roof["config"] = reference
    roof["multiple"], roof["invoke_only_multiple"] = {}, {}
    if "cache_bound_ms" in roof:
      roof["cache_multiple"] = {}
    for signature, per_config in entry.get("latency", {}).items():
      _add_multiples(roof, signature, per_config.get(reference))
    entry["roofline"] = roof


def _add_multiples(roof, signature, measured):
  """Records how many times its roofline bounds the measured p50 of `signature` is (if measured)."""
  from benchmarks import roofline
  if not measured:
    return
  roof["multiple"][signature] = roofline.multiple(measured["p50_ms"], roof["bound_ms"])
  if "cache_bound_ms" in roof:
    roof["cache_multiple"][signature] = roofline.multiple(measured["p50_ms"], roof["cache_bound_ms"])
  if "invoke_only" in measured:
    roof["invoke_only_multiple"][signature] = roofline.multiple(measured["invoke_only"]["p50_ms"], roof["bound_ms"])


def quality_section(run, model, data_dir, quality_clips):
  """Vocal and accompaniment scores on MIR-1K test clips: each variant under LiteRT, and Keras."""
  from benchmarks import quality
  from tf_drnn import Separator
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  from tf_drnn.litert import tflite_separate_fn
  results = run.results
  if not data_dir:
    raise RuntimeError("no MIR-1K (--data_dir) for quality")
  log(f"quality: loading {quality_clips} test clips")
  clips = quality.load_clips(data_dir, quality_clips)
  results["quality_clips"] = {"count": len(clips), "names": [c[0] for c in clips],
                              "seconds": sum(len(c[1]) for c in clips) / config.sample_rate}
  scorer = quality.Scorer(clips)
  for variant, entry in results["variants"].items():
    log(f"{variant}: quality (separate_pcm under LiteRT)")
    result, per_clip = scorer.score(tflite_separate_fn(run.files[variant]))
    entry["quality"] = {"global": result, "clips": per_clip}
  log("keras: quality (Separator)")
  result, per_clip = scorer.score(Separator(model).separate_pair)
  results["keras"]["quality"] = {"global": result, "clips": per_clip}


def separation_section(run, model, separation_seconds):
  """Seconds of audio the Keras Separator separates per second, on a synthesized song."""
  from benchmarks import throughput
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  log(f"keras: Separator throughput on a {separation_seconds:g} s synthesized song")
  run.results["keras"]["separation"] = throughput.separation_throughput(model, separation_seconds,
                                                                        config.sample_rate)


def training_section(run, model, data_dir, training_steps):
  """Training frames per second of a model of the same structure (MIR-1K, or synthesized songs)."""
  from benchmarks import throughput
  from tf_drnn.model import describe
  sources, description = throughput.training_sources(data_dir)
  log(f"training throughput: {training_steps} steps on {description}")
  training = throughput.training_throughput(describe(model), sources, steps=training_steps)
  training["data"] = description
  run.results["keras"]["training"] = training


def write_outputs(run, started):
  """results.json (finished), summary.md and, with latency samples, latency_samples.npz and latency.png."""
  from benchmarks import environment, report
  results, output_dir = run.results, run.output_dir
  results["total_seconds"] = time.perf_counter() - started
  results["environment"]["load_average_at_end"] = environment.load_average()
  run.save()
  write_atomically(os.path.join(output_dir, "summary.md"), report.render_summary(results))
  if run.samples:
    import numpy as np
    np.savez_compressed(os.path.join(output_dir, "latency_samples.npz"),
                        **{"/".join(key): value for key, value in run.samples.items()})
    report.plot_latency(run.samples, os.path.join(output_dir, "latency.png"),
                        title=environment.one_line(results["environment"]))
  log(f"done in {results['total_seconds']:.0f} s: {output_dir}/summary.md")


def compare(paths, output_dir):
  """Writes DIR/compare.md from two results.json files; returns its text."""
  from benchmarks import report
  if len(paths) != 2:
    raise UserError("--compare: give two results files, A.json,B.json")
  loaded = []
  for path in paths:
    if not os.path.isfile(path):
      raise UserError(f"{path}: no such results file")
    try:
      loaded.append(report.load_results(path))
    except (OSError, ValueError) as error:
      raise UserError(f"{path}: not a results file ({error})") from None
  names = [os.path.basename(os.path.dirname(os.path.abspath(p))) or p for p in paths]
  if names[0] == names[1]:
    names = ["A", "B"]
  text = report.render_compare(loaded[0], loaded[1], *names)
  os.makedirs(output_dir, exist_ok=True)
  write_atomically(os.path.join(output_dir, "compare.md"), text)
  return text


def main(argv):
  del argv  # run_app refuses stray arguments
  return run_guarded(_main)


def _main():
  if FLAGS.compare:
    print(compare([p for p in FLAGS.compare.split(",") if p], FLAGS.output_dir), end="")
    return 0
  results = benchmark(FLAGS.output_dir, FLAGS.model, FLAGS.variants, FLAGS.threads, FLAGS.calls, FLAGS.warmup,
                      FLAGS.memory_calls, FLAGS.data_dir, FLAGS.quality_clips, FLAGS.calibration_frames,
                      FLAGS.tflite_dir, FLAGS.skip, FLAGS.training_steps, FLAGS.separation_seconds)
  with open(os.path.join(FLAGS.output_dir, "summary.md")) as f:
    print(f.read(), end="")
  if results.get("errors"):
    print("error: sections failed: " + "; ".join(f"{k}: {v}" for k, v in results["errors"].items()),
          file=sys.stderr)
    return 1
  return 0


def run():
  run_app(define_flags, main, import_tensorflow=False)  # benchmark() imports it quietly


if __name__ == "__main__":
  run()
