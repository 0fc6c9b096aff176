"""The runtime install (NumPy, soundfile, soxr, LiteRT, absl-py; no TensorFlow, Keras or librosa):
the on-device benchmark, resampling without librosa, and the hint for a Keras model.

The tiny exported files are tests/test_export.py's (its `exported` fixture).
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import test_export
from test_export import _signal

# tests/test_export.py's fixtures: the tiny Keras model and its files exported in every quantization.
model, exported = test_export.model, test_export.exported

REPO = pathlib.Path(__file__).resolve().parents[1]
ON_DEVICE = REPO / "benchmarks" / "on_device.py"

# Prepended to a `python -c` program: importing TensorFlow, Keras or librosa fails (as where they are
# not installed), and the program reports which of them (and whether tf_drnn) got imported anyway.
_BLOCKED = ("import sys\n"
            "class Blocked:\n"
            "  def find_spec(self, name, path=None, target=None):\n"
            "    if name.split('.')[0] in ('tensorflow', 'keras', 'librosa'):\n"
            "      raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Blocked())\n")


def _run_blocked(program, *args, cwd=None):
  return subprocess.run([sys.executable, "-c", _BLOCKED + program, *map(str, args)], capture_output=True, text=True,
                        timeout=300, cwd=cwd)


def test_on_device_benchmark_times_tflite_files_with_numpy_and_litert_only(model, exported, tmp_path):
  """benchmarks/on_device.py in a process where TensorFlow, Keras and librosa cannot be imported: it
  imports none of them (nor tf_drnn), times both signatures and blocks of each file, and counts the
  network's MACs per frame as the Keras model's kernels do."""
  from benchmarks.roofline import count_parameters
  from tf_drnn.model import describe
  files = [exported[q][0] for q in ("float32", "int8")]
  out = tmp_path / "on_device.json"
  program = ("import runpy\n"
             "sys.argv = sys.argv[1:]  # [on_device.py, flags and files]\n"
             "try:\n"
             "  runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "except SystemExit as stop:\n"
             "  assert not stop.code, stop.code\n"
             "heavy = ('tensorflow', 'keras', 'librosa', 'tf_drnn')\n"
             "print('imported:', sorted(m for m in heavy if m in sys.modules))\n")
  result = _run_blocked(program, ON_DEVICE, "--calls=20", "--warmup=2", "--blocks=2", "--block_frames=4",
                        "--label=test", f"--json={out}", *files)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "imported: []" in result.stdout
  results = json.loads(out.read_text())
  assert results["format"] == "tf_drnn.on_device/1" and results["environment"]["label"] == "test"
  assert results["environment"]["threads"] == 1
  macs = count_parameters(model)["macs_per_frame"]
  assert [m["quantization"] for m in results["models"]] == ["float32", "int8"]
  for entry, path in zip(results["models"], files):
    assert entry["file"] == os.path.basename(path) and entry["tflite_bytes"] == os.path.getsize(path)
    for signature in ("separate_frame", "separate_pcm"):
      timing = entry[signature]
      assert timing["calls"] == 20
      assert 0 < timing["min_ms"] <= timing["p50_ms"] <= timing["p90_ms"]
      assert timing["real_time_factor"] == pytest.approx(32.0 / timing["p50_ms"])  # a hop is 32 ms
    block = entry["block"]
    assert (block["frames"], block["blocks"]) == (4, 2) and block["audio_seconds"] == pytest.approx(4 * 0.032)
    assert 0 < block["min_ms"] <= block["p50_ms"]
    assert block["real_time_factor"] == pytest.approx(block["audio_seconds"] / (block["p50_ms"] / 1e3))
    assert entry["macs_per_frame"] == macs
    assert entry["model"]["hidden_units"] == describe(model)["hidden_units"] == 16
    kernel = "int8" if entry["quantization"] == "int8" else "float32"
    assert entry["weight_bytes_per_frame"] == macs * (1 if kernel == "int8" else 4)
    for core in ("Cortex-A55", "Cortex-A76"):
      estimate = entry["estimate"][core]
      rate = results["core_rates"][core]
      assert estimate["kernel"] == kernel
      assert estimate["ms_per_frame"] == pytest.approx(macs / (rate["ghz"] * rate["macs_per_cycle"][kernel] * 1e6))
  assert "estimate" in result.stdout.lower() and os.path.basename(files[1]) in result.stdout


@pytest.mark.parametrize("architecture,output_format,context", [
    ("drnn2", "masked", 3), ("dnn", "masked", 1), ("srnn", "two_sources", 5), ("drnn1", "one_source", 3)])
def test_macs_per_frame_from_the_sidecar_sizes_count_the_kernels(architecture, output_format, context):
  """on_device.macs_per_frame(describe(model)) is what benchmarks.roofline counts from the kernels."""
  from benchmarks.on_device import macs_per_frame
  from benchmarks.roofline import count_parameters
  from tf_drnn.model import build_model, describe
  built = build_model(architecture, context=context, num_layers=3, hidden_units=12, output_format=output_format)
  assert macs_per_frame(describe(built), 513) == count_parameters(built)["macs_per_frame"]


def test_macs_per_frame_of_the_bundled_models():
  """The two bundled models' sizes (their sidecars' training options): 5.57 M and 1.13 M MACs a frame."""
  from benchmarks.on_device import macs_per_frame
  counts = {}
  for name in ("drnn2", "drnn2_compact"):
    with open(REPO / "tf_drnn" / "pretrained" / f"{name}.json") as f:
      options = json.load(f)["options"]
    assert options["architecture"] == "drnn2"
    counts[name] = macs_per_frame({**options, "recurrent_layers": [2]}, 513)
  assert counts == {"drnn2": 1539 * 1000 + 3 * 1000 * 1000 + 1000 * 1026,
                    "drnn2_compact": 1539 * 320 + 3 * 320 * 320 + 320 * 1026}


@pytest.mark.parametrize("channels", [None, 1, 2])
@pytest.mark.parametrize("rates", [(44100, 16000), (16000, 48000), (22050, 16000), (8000, 16000), (96000, 44100)])
def test_resample_is_librosas_soxr_hq_without_librosa(channels, rates):
  """tf_drnn.audio.resample calls soxr itself: the same samples as librosa.resample(res_type="soxr_hq")."""
  librosa = pytest.importorskip("librosa")
  from tf_drnn.audio import resample
  signal = _signal(0.37, seed=3)
  if channels:
    signal = np.stack([signal * (c + 1) / 2 for c in range(channels)], axis=1)
  got = resample(signal, *rates)
  expected = librosa.resample(signal, orig_sr=rates[0], target_sr=rates[1], res_type="soxr_hq", axis=0)
  assert got.dtype == np.float32 and got.shape == expected.shape
  np.testing.assert_array_equal(got, expected)


def test_resample_runs_where_librosa_is_not_installed():
  program = ("import numpy as np\n"
             "from tf_drnn.audio import resample\n"
             "out = resample(np.ones((44100, 2), np.float32), 44100, 16000)\n"
             "print(out.shape, out.dtype, 'librosa' in sys.modules)\n")
  result = _run_blocked(program, cwd=REPO)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "(16000, 2) float32 False"


def test_a_keras_model_without_tensorflow_is_one_line_naming_the_train_extra(tmp_path):
  """tf-drnn-separate with the bundled (Keras) model on a runtime install: exit 2, one error line that
  says what to install, and that a .tflite model runs as it is."""
  import soundfile
  soundfile.write(str(tmp_path / "song.wav"), _signal(0.5, seed=1), 16000)
  program = (f"sys.argv = ['tf-drnn-separate', '--output_dir={tmp_path / 'out'}', '{tmp_path / 'song.wav'}']\n"
             "from tf_drnn.separate import run\n"
             "run()\n")
  result = _run_blocked(program, cwd=REPO)
  assert result.returncode == 2, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: TensorFlow is not installed"), result.stderr[-2000:]
  assert 'pip install "tf-drnn[train]"' in lines[0] and ".tflite" in lines[0]
  assert not (tmp_path / "out").exists()
