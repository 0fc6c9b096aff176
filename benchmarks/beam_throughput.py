r"""Catalogue throughput: tf-drnn-separate-beam on DirectRunner (N worker processes) vs. tf-drnn-separate.

    python -m benchmarks.beam_throughput --output_dir=/tmp/beam_bench                  # 8 synthesized 30 s songs
    python -m benchmarks.beam_throughput --output_dir=/tmp/beam_bench --workers=1,2 --songs='music/*.flac'

Each configuration runs as its console command runs, in a fresh process on the same files into a
fresh folder, timed end to end (start-up and model loading included, as a user waits for them):
`cli` is tf-drnn-separate on all the files; `beam xN` is tf-drnn-separate-beam with
--direct_num_workers=N --direct_running_mode=multi_processing; `rerun` is the last one again into its
finished folder (every song skipped: what resuming after a crash costs when nothing is left).
Reports songs per hour and the
real-time factor (seconds of audio separated per wall-clock second: higher is faster), checks that
every Beam output equals the CLI's byte for byte, prints a Markdown table and writes
OUTPUT_DIR/beam_throughput.json and beam_throughput.md. Needs Apache Beam (pip install "tf-drnn[beam]").
Run it on an otherwise idle machine: timings of a busy machine mean little.
"""
import glob
import os
import subprocess
import sys
import tempfile
import time

from absl import flags

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
RESULTS_FORMAT = "tf_drnn.benchmarks.beam_throughput/1"


def define_flags():
  from tf_drnn.flags_common import define_model, define_output_dir
  define_output_dir("beam_throughput.json and beam_throughput.md", required=True)
  flags.DEFINE_string("songs", None, "Input files (a glob pattern); default: --num_songs synthesized songs.")
  flags.DEFINE_integer("num_songs", 8, "Synthesized songs (without --songs).")
  flags.DEFINE_float("seconds", 30.0, "Length of each synthesized song.")
  flags.DEFINE_integer("sample_rate", 44100, "Sample rate of the synthesized songs (mono WAV, PCM_16).")
  flags.DEFINE_list("workers", ["1", "2"], "DirectRunner worker process counts to time.")
  define_model("drnn2_compact", note="Both commands (tf-drnn-separate, tf-drnn-separate-beam) use it.")


def synthesize(folder, count, seconds, rate):
  import soundfile
  from tf_drnn.synth import sung_like_mixture
  paths = []
  for i in range(count):
    vocals, accompaniment = sung_like_mixture(seconds, rate, seed=i)
    path = os.path.join(folder, f"song{i:03d}.wav")
    soundfile.write(path, vocals + accompaniment, rate, subtype="PCM_16")
    paths.append(path)
  return paths


def timed(argv):
  """Runs `python argv...` -> wall seconds; a failure ends the benchmark with its stderr's last lines."""
  start = time.perf_counter()
  done = subprocess.run([sys.executable, *argv], cwd=_REPO, capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if done.returncode != 0:
    sys.exit(f"error: {' '.join(argv[:3])}... failed (exit {done.returncode}):\n"
             + "\n".join(done.stderr.strip().splitlines()[-5:]))
  return seconds


def beam_argv(pattern, output_dir, workers):
  return ["-m", "tf_drnn.beam", f"--input_pattern={pattern}", f"--output_dir={output_dir}", f"--model={FLAGS.model}",
          f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


def row(name, seconds, songs, audio_seconds, identical=None):
  return {"configuration": name, "wall_seconds": round(seconds, 3), "songs": songs,
          "songs_per_hour": round(3600 * songs / seconds, 1), "real_time_factor": round(audio_seconds / seconds, 2),
          "identical_to_cli": identical}


def same_files(a, b):
  import filecmp
  names = sorted(os.listdir(a))
  return names == sorted(f for f in os.listdir(b) if not f.endswith(".jsonl")) and all(
      filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False) for n in names)


def markdown(results):
  lines = [f"{results['songs']} songs, {results['audio_seconds']:.1f} s of audio, model {results['model']}, "
           f"{results['cpu_count']} CPU(s)", "",
           "| configuration | wall s | songs / hour | real-time factor (audio s / wall s) | outputs = CLI's |",
           "| --- | ---: | ---: | ---: | --- |"]
  for r in results["rows"]:
    same = "-" if r["identical_to_cli"] is None else ("yes" if r["identical_to_cli"] else "NO")
    lines.append(f"| {r['configuration']} | {r['wall_seconds']:.1f} | {r['songs_per_hour']:.0f} | "
                 f"{r['real_time_factor']:.2f} | {same} |")
  return "\n".join(lines) + "\n"


def main(argv):
  import soundfile
  from tf_drnn.atomic import write_json, write_text
  work = tempfile.mkdtemp(prefix="tf_drnn_beam_bench_")
  if FLAGS.songs:
    paths = sorted(glob.glob(FLAGS.songs))
    if not paths:
      sys.exit(f"error: --songs={FLAGS.songs} matches no file")
  else:
    os.makedirs(os.path.join(work, "in"))
    paths = synthesize(os.path.join(work, "in"), FLAGS.num_songs, FLAGS.seconds, FLAGS.sample_rate)
  audio_seconds = sum(soundfile.info(p).duration for p in paths)
  cli_dir = os.path.join(work, "cli")
  rows = [row("cli (tf-drnn-separate)", timed(["-m", "tf_drnn.separate", f"--model={FLAGS.model}",
                                               f"--output_dir={cli_dir}", *paths]), len(paths), audio_seconds)]
  pattern = os.path.abspath(FLAGS.songs) if FLAGS.songs else os.path.join(work, "in", "*.wav")
  for workers in [int(w) for w in FLAGS.workers]:
    out = os.path.join(work, f"beam{workers}")
    seconds = timed(beam_argv(pattern, out, workers))
    rows.append(row(f"beam x{workers} (DirectRunner, multi_processing)", seconds, len(paths), audio_seconds,
                    same_files(cli_dir, out)))
  # The last configuration again into its finished folder: a resumed run that finds every song done.
  seconds = timed(beam_argv(pattern, out, workers))
  rows.append(row(f"beam x{workers} rerun (every song skipped)", seconds, len(paths), audio_seconds,
                  same_files(cli_dir, out)))
  import platform
  results = {"format": RESULTS_FORMAT, "songs": len(paths), "audio_seconds": round(audio_seconds, 3),
             "model": FLAGS.model, "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
             "machine": platform.machine(),
             "python": platform.python_version(), "apache_beam": _version("apache-beam"),
             "tensorflow": _version("tensorflow"), "rows": rows}
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  table = markdown(results)
  write_json(os.path.join(FLAGS.output_dir, "beam_throughput.json"), results)
  write_text(os.path.join(FLAGS.output_dir, "beam_throughput.md"), table)
  print(table, end="")
  import shutil
  shutil.rmtree(work, ignore_errors=True)
  if not all(r["identical_to_cli"] for r in rows[1:]):
    sys.exit("error: a Beam output differs from tf-drnn-separate's")


def _version(package):
  from importlib import metadata
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)
