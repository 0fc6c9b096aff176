"""tf-drnn-separate-beam (tf_drnn.beam): tf-drnn-separate's bytes, resume, failures, manifest, counters.

One pipeline run (DirectRunner, two worker processes; a background job beside the rest of the suite) is
shared by most assertions: it starts from an
"interrupted" output folder (one song finished, one with a single stale stem) and has a corrupt file
and two inputs with the same name among its inputs. The rerun is in-process (no worker start-up).
"""
import contextlib
import filecmp
import glob
import io
import json
import os
import pathlib

import numpy as np
import pytest

pytest.importorskip("apache_beam", reason="Apache Beam is not installed: tf-drnn-separate-beam is the optional "
                    "extra `pip install 'tf-drnn[beam]'`")

import soundfile  # noqa: E402

from conftest import background_job, run_in_process, sung_like_mixture  # noqa: E402
from tf_drnn import beam as tf_beam  # noqa: E402

# name: (seconds, sample rate, channels); a stereo FLAC at 44.1 kHz exercises the full band.
SONGS = {"song_a.wav": (1.2, 16000, 1), "song_b.flac": (1.0, 44100, 2), "song_c.wav": (1.5, 16000, 1)}
STEM_FILES = ["song_a_vocals.wav", "song_a_accompaniment.wav", "song_b_vocals.flac", "song_b_accompaniment.flac",
              "song_c_vocals.wav", "song_c_accompaniment.wav"]


def run_beam(*args):
  """tf-drnn-separate-beam run in this process as its console script runs it (its own flags to absl,
  the others to Beam) -> (exit code, stdout, stderr)."""
  argv, beam_args = tf_beam.split_args(["tf-drnn-separate-beam", *map(str, args)])
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = run_in_process(tf_beam.define_flags, lambda a: tf_beam.main(a, beam_args=beam_args), argv[1:],
                          import_tensorflow=False, usage=tf_beam.USAGE, program="tf-drnn-separate-beam")
  return code, out.getvalue(), err.getvalue()


def read_jsonl(pattern):
  files = glob.glob(pattern)
  assert len(files) == 1, files
  with open(files[0]) as f:
    return [json.loads(line) for line in f if line.strip()]


# The shared pipeline run, in a process of its own beside the rest of the suite (conftest's background
# jobs): tf-drnn-separate makes the reference stems, then tf-drnn-separate-beam runs as its console script.
_CATALOGUE = """
import subprocess, sys
root, songs, keras_model, reference, out = sys.argv[1:6]
from tf_drnn.models import load_model
from tf_drnn_export.convert import export_tflite
model = f"{root}/tiny.tflite"  # A .tflite model: the CLI and the two workers load LiteRT, not TensorFlow.
export_tflite(load_model(keras_model), model)
subprocess.run([sys.executable, "-m", "tf_drnn.separate", "--model", model, "--output_dir", reference,
                *sys.argv[6:]], check=True)
sys.argv = ["tf-drnn-separate-beam", f"--input_pattern={songs}/*.wav,{songs}/*.flac,{songs}/other/*.wav",
            "--output_dir", out, "--model", model, "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
from tf_drnn.beam import run
run()
"""


@background_job("beam_catalogue")
def _catalogue_job(work):
  """The inputs (three songs, a corrupt file, two inputs with the same name), a tiny model and an
  interrupted output folder (song_a finished, song_b with one stale stem of two)."""
  import keras
  from tf_drnn.model import ModelParts, build_model
  from tf_drnn.models import save_model
  root = pathlib.Path(work)
  songs = root / "in"
  (songs / "other").mkdir(parents=True)
  for i, (name, (seconds, rate, channels)) in enumerate(SONGS.items()):
    vocals, accompaniment = sung_like_mixture(seconds, rate, seed=i)
    mixture = vocals + accompaniment
    soundfile.write(songs / name, np.stack([mixture, 0.5 * mixture], 1) if channels == 2 else mixture, rate)
  (songs / "bad.wav").write_bytes(b"RIFF" + bytes(range(200)))  # corrupt
  for folder in (songs, songs / "other"):  # the same output names: both refused, as tf-drnn-separate does
    (folder / "dup.wav").write_bytes(b"not read")
  keras.utils.set_random_seed(0)
  model = build_model(hidden_units=8)
  ModelParts(model).features.set_statistics(np.abs(np.random.default_rng(0).standard_normal((50, 513))))
  save_model(model, root / "tiny.keras")
  out = root / "out"
  out.mkdir()
  (out / "song_b_vocals.flac").write_bytes(b"stale")
  # song_a "finished": its stems are copied from the reference by the job before the pipeline runs.
  program = _CATALOGUE.replace("from tf_drnn.beam import run", """import shutil
for name in ("song_a_vocals.wav", "song_a_accompaniment.wav"):
  shutil.copy(f"{reference}/{name}", f"{out}/{name}")
from tf_drnn.beam import run""")
  return ["-c", program, root, songs, root / "tiny.keras", root / "reference", out,
          *[songs / name for name in SONGS]], {}


@pytest.fixture
def catalogue(background):
  root = pathlib.Path(background.work)
  return dict(root=root, songs=root / "in", model=root / "tiny.tflite", reference=root / "reference",
              out=root / "out", code=background.returncode, stdout=background.stdout, stderr=background.stderr)


@pytest.mark.background("beam_catalogue")
def test_outputs_equal_the_cli_byte_for_byte(catalogue):
  assert catalogue["code"] == 1, catalogue["stderr"]  # failures, like tf-drnn-separate's exit status
  assert "2 song(s) separated, 1 skipped (outputs exist), 3 failed" in catalogue["stdout"], catalogue["stderr"]
  for name in STEM_FILES:
    assert filecmp.cmp(catalogue["reference"] / name, catalogue["out"] / name, shallow=False), name
  left = sorted(f for f in os.listdir(catalogue["out"]) if f not in STEM_FILES)
  assert left == ["failures-00000-of-00001.jsonl", "manifest-00000-of-00001.jsonl"]  # no temporary file


@pytest.mark.background("beam_catalogue")
def test_bad_songs_are_failures_and_the_rest_complete(catalogue):
  failures = {os.path.relpath(row["path"], catalogue["songs"]): row["reason"]
              for row in read_jsonl(f"{catalogue['out']}/failures-*.jsonl")}
  assert sorted(failures) == ["bad.wav", "dup.wav", os.path.join("other", "dup.wav")]
  assert "corrupt" in failures["bad.wav"]
  assert "same outputs" in failures["dup.wav"]


@pytest.mark.background("beam_catalogue")
def test_manifest_lists_every_output_with_its_duration(catalogue):
  rows = read_jsonl(f"{catalogue['out']}/manifest-*.jsonl")
  assert sorted(os.path.basename(row["output"]) for row in rows) == sorted(STEM_FILES)
  for row in rows:
    seconds, rate, channels = SONGS[os.path.basename(row["input"])]
    assert row["duration_s"] == pytest.approx(seconds, abs=1e-3)
    assert (row["sample_rate"], row["channels"]) == (rate, channels)
    assert row["status"] == ("existing" if "song_a" in row["output"] else "separated")
    assert os.path.isfile(row["output"])


@pytest.mark.background("beam_catalogue")
def test_rerun_skips_every_finished_song(catalogue):
  out = catalogue["out"]
  before = {name: os.stat(out / name).st_mtime_ns for name in STEM_FILES}
  patterns = [f"{catalogue['songs']}/*.wav", f"{catalogue['songs']}/*.flac", f"{catalogue['songs']}/other/*.wav"]
  summary = tf_beam.run_pipeline(patterns, str(out), ["--runner=DirectRunner"], model=str(catalogue["model"]))
  assert (summary["songs_done"], summary["songs_skipped"], summary["songs_failed"]) == (0, 3, 3)
  assert {name: os.stat(out / name).st_mtime_ns for name in STEM_FILES} == before
  assert len(read_jsonl(f"{out}/failures-*.jsonl")) == 3
  assert {row["status"] for row in read_jsonl(f"{out}/manifest-*.jsonl")} == {"existing"}


def test_unknown_flags_go_to_beam():
  argv, rest = tf_beam.split_args(["cmd", "--input_pattern=a/*.wav", "--runner", "FlinkRunner", "--overwrite",
                                   "--model", "drnn2_compact", "--flink_master=localhost:8081", "--nobinary_mask",
                                   "--", "--output_dir=x"])
  assert argv == ["cmd", "--input_pattern=a/*.wav", "--overwrite", "--model", "drnn2_compact", "--nobinary_mask"]
  assert rest == ["--runner", "FlinkRunner", "--flink_master=localhost:8081", "--output_dir=x"]


def test_a_pattern_matching_nothing_is_one_error_line(tmp_path):
  code, _, stderr = run_beam(f"--input_pattern={tmp_path}/*.wav", f"--output_dir={tmp_path}/out")
  assert code == 2 and stderr.strip() == f"error: --input_pattern {tmp_path}/*.wav: matches no file"
