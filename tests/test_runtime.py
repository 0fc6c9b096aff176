"""The runtime install (NumPy, soundfile, soxr, LiteRT, absl-py; no TensorFlow, Keras or librosa):
the benchmark's multiply-accumulate count, resampling without librosa, and the hint for a Keras model.
The on-device benchmark itself runs on tests/test_export.py's exported files, there.
"""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMPORT_BLOCKER
from test_export import _signal

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run_blocked(program, *args, cwd=None):
  return subprocess.run([sys.executable, "-c", IMPORT_BLOCKER + program, *map(str, args)], capture_output=True,
                        text=True, timeout=300, cwd=cwd)


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
