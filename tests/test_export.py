"""Tests of the streaming TFLite export (tf_drnn_export): signatures, numerics, ops, sidecar, CLI.

Two tiny DRNN-2s (16 units; the paper's STFT and the live one) are exported once per quantization for
the whole module, by a background job beside the rest of the suite (conftest).
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMPORT_BLOCKER, background_job, finished_job, run_command
from tf_drnn import spectral
from tf_drnn.config import DEFAULT_AUDIO_CONFIG as CONFIG
from tf_drnn.errors import UserError
from tf_drnn.model import ModelParts
from tf_drnn.litert import sidecar_path
from tf_drnn_export import cli
from tf_drnn_export.calibration import equalize_head_ranges
from tf_drnn_export.conversion import QUANTIZATIONS, check_builtin_only, tflite_ops
from tf_drnn_export.convert import export_tflite
from tf_drnn_export.sidecar import write_together

# Keras 3 under NumPy 2 warns inside its own np.array() calls; not ours to fix.
# The module's tests run after the rest of the suite, when the exports job has had its time.
pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
              pytest.mark.background("exports")]

REPO = pathlib.Path(__file__).resolve().parents[1]
MIR1K = REPO.parent / "shared" / "MIR-1K"


def _signal(seconds, seed):
  """A voice-like harmonic tone with vibrato over a noisy, percussive bed, at about -12 dBFS."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * CONFIG.sample_rate)) / CONFIG.sample_rate
  f0 = rng.uniform(150, 300) * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
  phase = 2 * np.pi * np.cumsum(f0) / CONFIG.sample_rate
  voice = sum(np.sin(k * phase) / k for k in range(1, 8))
  bed = rng.normal(size=t.shape) * (0.3 + 0.7 * (np.sin(2 * np.pi * 2 * t) > 0.6))
  signal = voice + 0.5 * bed
  return (0.25 * signal / np.sqrt(np.mean(signal ** 2))).astype(np.float32)


def _magnitudes(signal, config=CONFIG):
  return np.abs(spectral.stft_numpy(signal, config)).astype(np.float32)


def _tiny_model(seed, bias_seed, statistics_seconds, config=CONFIG, lookahead=None):
  """A 16-unit DRNN-2 with feature statistics from a synthesized signal and non-zero biases, so that
  every term of the graph is exercised."""
  import keras
  from tf_drnn.model import build_model
  keras.utils.set_random_seed(seed)
  model = build_model(hidden_units=16, config=config, lookahead=lookahead)
  ModelParts(model).features.set_statistics(_magnitudes(_signal(statistics_seconds, seed=1), config))
  for layer in model.layers:
    if hasattr(layer, "bias") and layer.bias is not None:
      layer.bias.assign(np.random.default_rng(bias_seed).normal(0, 0.1, layer.bias.shape).astype(np.float32))
  return model


def _export_variants(model, directory, quantizations, calibration_seconds):
  """{quantization: (path, sidecar)}: `model` exported once per variant into `directory`, int8
  calibrated on two synthesized signals."""
  config = ModelParts(model).audio_config
  calibration = [_magnitudes(_signal(calibration_seconds, seed=s), config) for s in (3, 4)]
  result = {}
  for quantization in quantizations:
    path = str(directory / f"{model.name}_{quantization}.tflite")
    extra = {"calibration_magnitudes": calibration} if quantization == "int8" else {}
    result[quantization] = path, export_tflite(model, path, quantization, **extra)
  return result


def _paper_model():
  return _tiny_model(seed=0, bias_seed=2, statistics_seconds=3.0)


def _live_model():
  from tf_drnn.config import AudioConfig
  return _tiny_model(seed=3, bias_seed=4, statistics_seconds=2.0,
                     config=AudioConfig(hop_length=128, window="asymmetric_sine"), lookahead=0)


# name: (the model, its variants, seconds of each calibration signal)
EXPORTED_MODELS = {"paper": (_paper_model, QUANTIZATIONS, 2.0), "live": (_live_model, ("float32", "int8"), 1.0)}


@background_job("exports")
def _exports_job(work):
  """Each of EXPORTED_MODELS exported in its variants into work/NAME, its weights saved beside them."""
  program = ("import sys\nsys.path.insert(0, 'tests')\nfrom test_export import export_models\n"
             "export_models(sys.argv[1])\n")
  return ["-c", program, work], {}


def export_models(work):
  from tf_drnn.models import save_model
  for name, (build, quantizations, seconds) in EXPORTED_MODELS.items():
    folder = pathlib.Path(work) / name
    folder.mkdir()
    model = build()
    save_model(model, str(folder / "model.keras"))
    _export_variants(model, folder, quantizations, seconds)


def _exports(name, model):
  """{quantization: (path, sidecar)} of EXPORTED_MODELS[name], from the exports job; its weights are
  checked equal to `model`'s (built here by the same function)."""
  from tf_drnn.models import load_model
  job = finished_job("exports")
  assert job.returncode == 0, job.stderr[-3000:]
  folder = pathlib.Path(job.work) / name
  for theirs, ours in zip(load_model(str(folder / "model.keras")).get_weights(), model.get_weights(), strict=True):
    np.testing.assert_array_equal(theirs, ours)
  result = {}
  for quantization in EXPORTED_MODELS[name][1]:
    path = str(folder / f"{model.name}_{quantization}.tflite")
    with open(sidecar_path(path)) as f:
      result[quantization] = path, json.load(f)
  return result


@pytest.fixture(scope="module")
def model():
  return _paper_model()


@pytest.fixture(scope="module")
def exported(model):
  """{quantization: (path, sidecar)} for every variant, exported once."""
  return _exports("paper", model)


@pytest.fixture(scope="module")
def mixture():
  return _signal(1.2, seed=5)


def _runner(path, signature):
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_path=path)
  return interpreter.get_signature_runner(signature)


def stream_frames(path, magnitudes, extra_frames):
  """Feeds frames one by one (then `extra_frames` zero frames); returns vocals, accompaniment [T', bins]."""
  runner = _runner(path, "separate_frame")
  state = np.zeros(runner.get_input_details()["state"]["shape"], np.float32)
  frames = np.concatenate([magnitudes, np.zeros((extra_frames, magnitudes.shape[1]), np.float32)])
  vocals, accompaniment = [], []
  for frame in frames:
    out = runner(magnitude=frame[None], state=state)
    state = out["next_state"]
    vocals.append(out["vocals"][0])
    accompaniment.append(out["accompaniment"][0])
  return np.stack(vocals), np.stack(accompaniment)


def stream_pcm(path, signal, latency):
  """Feeds hops one by one, flushing with `latency` zeros; returns the aligned stems [samples]."""
  from tf_drnn.litert import stream_pcm as stream
  return stream(_runner(path, "separate_pcm"), signal, CONFIG.hop_length, latency)


def _relative_error(actual, expected):
  return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def _snr_db(actual, expected):
  return float(10 * np.log10(np.sum(expected.astype(np.float64) ** 2) /
                             max(np.sum((actual.astype(np.float64) - expected) ** 2), 1e-30)))


# --- float32: the exported streams are the Keras model ------------------------------------------

def test_float32_frame_signature_matches_keras(model, exported, mixture):
  path, sidecar = exported["float32"]
  magnitudes = _magnitudes(mixture)
  delay = sidecar["frame_delay"]
  vocals, accompaniment = stream_frames(path, magnitudes, delay)
  expected = model(magnitudes[None], training=False).numpy()[0]  # [T, 2, bins]
  assert vocals[delay:].shape == expected[:, 0].shape
  assert _relative_error(vocals[delay:], expected[:, 0]) < 1e-4
  assert _relative_error(accompaniment[delay:], expected[:, 1]) < 1e-4


def test_float32_pcm_signature_matches_offline(model, exported, mixture):
  from tf_drnn.models import offline_estimates
  path, sidecar = exported["float32"]
  vocals, accompaniment = stream_pcm(path, mixture, sidecar["latency_samples"])
  expected_vocals, expected_accompaniment = offline_estimates(model, mixture)
  assert _relative_error(vocals, expected_vocals) < 1e-4
  assert _relative_error(accompaniment, expected_accompaniment) < 1e-4
  # The soft mask splits the mixture: the stems add back up to it.
  assert _relative_error(vocals + accompaniment, mixture) < 1e-4


def test_one_source_model(tmp_path, mixture):
  """A vocals-only model: the accompaniment is what the vocals leave of the mixture."""
  import keras
  from tf_drnn.model import build_model
  from tf_drnn.models import offline_estimates
  keras.utils.set_random_seed(1)
  model = build_model("drnn1", context=1, num_layers=2, hidden_units=8, output_format="one_source")
  ModelParts(model).features.set_statistics(_magnitudes(_signal(2.0, seed=1)))
  path = str(tmp_path / "one.tflite")
  sidecar = export_tflite(model, path, "float32")
  assert sidecar["frame_delay"] == 0 and sidecar["model"]["output_format"] == "one_source"
  magnitudes = _magnitudes(mixture)
  vocals, accompaniment = stream_frames(path, magnitudes, 0)
  expected = model(magnitudes[None], training=False).numpy()[0, :, 0]
  assert _relative_error(vocals, expected) < 1e-4
  expected_accompaniment = np.maximum(1 - expected / (magnitudes + 1e-12), 0) * magnitudes
  assert _relative_error(accompaniment, expected_accompaniment) < 1e-4
  stems = stream_pcm(path, mixture, sidecar["latency_samples"])
  for actual, expected in zip(stems, offline_estimates(model, mixture)):
    assert _relative_error(actual, expected) < 1e-4


# --- every variant: builtin ops, runs under LiteRT, close to float ------------------------------

@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_variant_builtin_ops_only(exported, quantization):
  path, sidecar = exported[quantization]
  with open(path, "rb") as f:
    ops = tflite_ops(f.read())
  assert ops == sidecar["ops"]
  assert not [op for op in ops if op.startswith("CUSTOM") or "FLEX" in op.upper()]
  assert "RFFT2D" in ops and "FULLY_CONNECTED" in ops
  check_builtin_only(open(path, "rb").read())


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_variant_close_to_float(exported, mixture, quantization):
  float_path, sidecar = exported["float32"]
  path, _ = exported[quantization]
  latency, delay = sidecar["latency_samples"], sidecar["frame_delay"]
  magnitudes = _magnitudes(mixture)
  reference_frames = stream_frames(float_path, magnitudes, delay)
  frames = stream_frames(path, magnitudes, delay)
  reference_pcm = stream_pcm(float_path, mixture, latency)
  pcm = stream_pcm(path, mixture, latency)
  for actual, expected in zip(frames + pcm, reference_frames + reference_pcm):
    assert np.all(np.isfinite(actual))
    assert _snr_db(actual, expected) > (60 if quantization == "float32" else 10)


def test_int8_quantizes_dense_layers_only(exported):
  """The dense layers run in int8; the mask's DIV and the RFFT stay float."""
  from ai_edge_litert.interpreter import Interpreter
  path, sidecar = exported["int8"]
  assert {"QUANTIZE", "DEQUANTIZE"} <= set(sidecar["ops"])
  assert sidecar["calibration"]["frames"] > 0 and sidecar["calibration"]["pcm_blocks"] > 0
  interpreter = Interpreter(model_path=path)
  tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
  int8_ops = set()
  for op in interpreter._get_ops_details():  # pylint: disable=protected-access
    dtypes = {tensors[i]["dtype"] for i in op["inputs"] if i >= 0}
    if np.int8 in dtypes:
      int8_ops.add(op["op_name"])
  assert "FULLY_CONNECTED" in int8_ops
  assert int8_ops <= {"FULLY_CONNECTED", "BATCH_MATMUL", "DEQUANTIZE"}
  assert os.path.getsize(path) < os.path.getsize(exported["float32"][0])


def _head_peaks(model, magnitudes):
  import keras
  probe = keras.Model(model.input, [head.output for head in ModelParts(model).heads])
  return np.maximum(*[np.abs(np.asarray(a)[0]).max(axis=0) for a in probe(magnitudes[None])])


def test_equalize_head_ranges_keeps_the_mask(model, mixture):
  magnitudes = _magnitudes(mixture)
  weights_before = [w.copy() for w in model.get_weights()]
  equalized, applied = equalize_head_ranges(model, [magnitudes])
  assert applied and equalized is not model
  np.testing.assert_allclose(equalized(magnitudes[None]), model(magnitudes[None]), rtol=1e-4, atol=1e-6)
  before, after = _head_peaks(model, magnitudes), _head_peaks(equalized, magnitudes)
  assert before.max() / before.min() > 2  # the tiny model's bins peak unevenly ...
  np.testing.assert_allclose(after, np.median(before), rtol=1e-4)  # ... and alike once equalized
  for kept, now in zip(weights_before, model.get_weights()):  # the caller's model is untouched
    np.testing.assert_array_equal(kept, now)


def test_equalize_head_ranges_leaves_unmasked_models_alone(mixture):
  from tf_drnn.model import build_model
  unmasked = build_model(hidden_units=8, output_format="two_sources")
  same, applied = equalize_head_ranges(unmasked, [_magnitudes(mixture)])
  assert same is unmasked and not applied


def test_int8_sidecar_records_the_head_equalization(exported):
  assert exported["int8"][1]["calibration"]["equalized_heads"] is True


def test_quantized_files_are_smaller(exported):
  sizes = {q: os.path.getsize(path) for q, (path, _) in exported.items()}
  assert sizes["float16"] < sizes["float32"]
  assert sizes["dynamic"] < sizes["float16"]


# --- the sidecar ---------------------------------------------------------------------------------

@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_sidecar(model, exported, quantization):
  from tf_drnn.model import describe
  from tf_drnn.streaming import FrameStream, PcmStream
  path, sidecar = exported[quantization]
  with open(sidecar_path(path)) as f:
    on_disk = json.load(f)
  assert on_disk == json.loads(json.dumps(sidecar))
  for key, value in CONFIG.as_dict().items():
    assert on_disk[key] == value
  frames, pcm = FrameStream(model), PcmStream(model, channels=1)
  assert on_disk["quantization"] == quantization
  assert on_disk["latency_samples"] == pcm.latency_samples
  assert on_disk["frame_delay"] == frames.delay
  assert on_disk["state_size"] == {"separate_frame": frames.state_size, "separate_pcm": pcm.state_size}
  assert on_disk["tflite_bytes"] == os.path.getsize(path)
  assert on_disk["tflite_file"] == os.path.basename(path)
  assert on_disk["model"]["architecture"] == describe(model)["architecture"] == "drnn2"
  assert on_disk["model"]["hidden_units"] == 16
  bins, hop = CONFIG.num_bins, CONFIG.hop_length
  assert on_disk["signatures"] == {
      "separate_frame": {
          "inputs": {"magnitude": [1, bins], "state": [1, frames.state_size]},
          "outputs": {"accompaniment": [1, bins], "next_state": [1, frames.state_size], "vocals": [1, bins]}},
      "separate_pcm": {
          "inputs": {"pcm": [1, hop], "state": [1, pcm.state_size]},
          "outputs": {"accompaniment": [1, hop], "next_state": [1, pcm.state_size], "vocals": [1, hop]}},
  }
  assert not [name for name in os.listdir(os.path.dirname(path)) if name.startswith(".tmp")]


def test_sidecar_of_a_bundled_model_carries_the_bundled_figures(model, exported, tmp_path, monkeypatch):
  from tf_drnn import models
  pretrained = tmp_path / "pretrained"
  pretrained.mkdir()
  models.save_model(model, str(pretrained / "drnn2_compact.keras"))
  figures = {"quality": {"keras": {"GNSDR": 1.5}}, "speed": {"variants": {"int8": {"bytes": 7}}}}
  (pretrained / "drnn2_compact.json").write_text(json.dumps({"step": 1, "figures": figures}))
  (pretrained / "drnn2.json").write_text(json.dumps({"step": 2}))  # A record without figures.
  monkeypatch.setattr(models, "PRETRAINED_DIR", str(pretrained))
  bundled = export_tflite(model, str(tmp_path / "b.tflite"), "float16",
                          model_path=str(pretrained / "drnn2_compact.keras"))
  assert bundled["reference_figures"] == {"model": "drnn2_compact", "models": {"drnn2_compact": figures}}
  with open(sidecar_path(str(tmp_path / "b.tflite"))) as f:
    assert json.load(f)["reference_figures"]["models"]["drnn2_compact"] == figures
  models.save_model(model, str(tmp_path / "mine.keras"))  # Same weights, not a bundled file.
  assert models.bundled_name(str(tmp_path / "mine.keras")) is None
  assert "reference_figures" not in exported["float16"][1]  # Exported from no file at all.


# --- errors and the command line -----------------------------------------------------------------

def test_int8_needs_calibration_data(model, tmp_path):
  with pytest.raises(UserError, match="calibration"):
    export_tflite(model, str(tmp_path / "m.tflite"), "int8")
  with pytest.raises(UserError, match=".tflite"):
    export_tflite(model, str(tmp_path / "m.bin"), "float32")
  assert not os.listdir(tmp_path)


def test_default_model_path():
  from tf_drnn.models import BUNDLED_MODEL
  assert pathlib.Path(BUNDLED_MODEL).parts[-3:] == ("tf_drnn", "pretrained", "drnn2.keras")


def _cli(*args):
  return run_command(cli, *args)


def test_cli_errors_are_one_line(tmp_path):
  result = _cli(f"--output={tmp_path / 'm.tflite'}", "--quantization=int8", f"--model={tmp_path}")
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "--data_dir" in result.stderr
  result = _cli(f"--output={tmp_path / 'm.tflite'}", f"--model={tmp_path}")
  assert result.returncode == 2 and "no model.keras" in result.stderr
  result = _cli(f"--output={tmp_path / 'm.tflite'}", f"--model={tmp_path / 'missing.keras'}")
  assert result.returncode == 2 and "no such model" in result.stderr
  assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
  directory = tmp_path_factory.mktemp("run")
  model.save(str(directory / "model.keras"))
  return directory


def test_export_from_model_dir(model_dir, tmp_path, exported):
  output = tmp_path / "out" / "drnn.tflite"
  sidecar = cli.export(str(model_dir), str(output), "dynamic")
  assert output.is_file() and output.with_suffix(".json").is_file()
  assert sidecar == json.loads(output.with_suffix(".json").read_text())
  assert sidecar["model"]["path"] == str(model_dir / "model.keras")
  assert sidecar["quantization"] == "dynamic"
  assert sidecar["signatures"] == exported["dynamic"][1]["signatures"]
  assert (model_dir / "model.keras").is_file()


@pytest.mark.skipif(not MIR1K.is_dir(), reason="MIR-1K not found at ../shared/MIR-1K")
def test_cli_int8_calibrated_on_mir1k(model_dir, tmp_path, exported, mixture):
  """The console entry point end to end: int8 calibrated on real MIR-1K training mixtures."""
  output = tmp_path / "drnn_int8.tflite"
  result = _cli(f"--model={model_dir}", f"--output={output}", "--quantization=int8",
                f"--data_dir={MIR1K}", "--calibration_frames=150")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "wrote" in result.stdout
  sidecar = json.loads(output.with_suffix(".json").read_text())
  assert sidecar["calibration"] == {"source": "audio", "frames": 150, "pcm_blocks": 150, "equalized_heads": True}
  assert sidecar["quantization"] == "int8" and sidecar["tflite_bytes"] == output.stat().st_size
  float_path, float_sidecar = exported["float32"]
  reference = stream_pcm(float_path, mixture, float_sidecar["latency_samples"])
  stems = stream_pcm(str(output), mixture, sidecar["latency_samples"])
  for actual, expected in zip(stems, reference):
    assert np.all(np.isfinite(actual)) and _snr_db(actual, expected) > 10


def test_evaluate_scores_a_tflite_like_its_keras_model(model_dir, exported, tmp_path):
  """tf-drnn-evaluate --method=tflite streams separate_pcm under LiteRT; float32 scores as Keras does."""
  from conftest import write_fake_mir1k
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  data = write_fake_mir1k(str(tmp_path / "mir1k"))
  path, _ = exported["float32"]
  scores = {}
  for method, model in (("model", str(model_dir)), ("tflite", path)):
    document = evaluate_command(EvaluateOptions(data, method=method, model=model, split="test", workers=1,
                                                output=str(tmp_path / f"{method}.json"), progress=False))
    scores[method] = document["global"]["vocals"]["GNSDR"]
  assert document["method"] == "tflite" and document["model"] == os.path.abspath(path)
  assert abs(scores["tflite"] - scores["model"]) < 0.01, scores


def test_evaluate_tflite_needs_an_existing_file(tmp_path):
  from tf_drnn.errors import UserError
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  with pytest.raises(UserError, match="--method=tflite needs --model=FILE.tflite"):
    evaluate_command(EvaluateOptions(str(tmp_path), method="tflite", model=str(tmp_path / "missing.tflite")))


# --- issue 15: the output paths, and non-finite input under LiteRT --------------------------------

@pytest.mark.parametrize("name", ["best", "options"])
def test_export_never_replaces_a_file_that_is_not_its_sidecar(model_dir, monkeypatch, name):
  """--output=M/best.tflite wrote its sidecar over the training run's best.json: refused before conversion."""
  sidecar = model_dir / f"{name}.json"
  sidecar.write_text('{"step": 1200, "vocals": {"GNSDR": 4.15}}\n')
  before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
  monkeypatch.setattr("tf_drnn.models.load_model", lambda path: pytest.fail("loaded before the check"))
  with pytest.raises(UserError, match=f"{name}.json: exists and is not the sidecar of a previous {name}.tflite"):
    cli.export(str(model_dir), str(model_dir / f"{name}.tflite"), "float32")
  assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before
  sidecar.unlink()


def test_export_replaces_its_own_previous_sidecar(model, exported, tmp_path):
  import shutil
  float_path, first = exported["float32"]
  path = tmp_path / os.path.basename(float_path)  # an earlier float32 export of this name, with its sidecar
  shutil.copy(float_path, path)
  shutil.copy(sidecar_path(float_path), path.with_suffix(".json"))
  second = export_tflite(model, str(path), "float16")
  assert first["quantization"] == "float32" and json.loads(path.with_suffix(".json").read_text()) == second


def test_export_to_a_directory_or_under_a_file_fails_before_conversion(model, tmp_path, monkeypatch):
  (tmp_path / "d.tflite").mkdir()
  (tmp_path / "file").write_bytes(b"x")
  monkeypatch.setattr("tf_drnn_export.conversion.write_saved_model",
                      lambda *a: pytest.fail("converted before the check"))
  with pytest.raises(UserError, match="d.tflite: is a directory"):
    export_tflite(model, str(tmp_path / "d.tflite"), "float32")
  with pytest.raises(UserError, match="is a file, not a directory"):
    export_tflite(model, str(tmp_path / "file" / "m.tflite"), "float32")
  assert sorted(os.listdir(tmp_path)) == ["d.tflite", "file"] and not os.listdir(tmp_path / "d.tflite")


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30])
def test_non_finite_block_poisons_the_float_state_until_reset(exported, mixture, bad):
  """docs/on_device.md: one NaN / Inf / 1e30 block poisons a float32 stream's state for good;
  resetting the state to zeros recovers (the output then equals a fresh stream's)."""
  path, sidecar = exported["float32"]
  runner = _runner(path, "separate_pcm")
  hop = CONFIG.hop_length
  blocks = mixture[:len(mixture) // hop * hop].reshape(-1, 1, hop)
  zeros = np.zeros(runner.get_input_details()["state"]["shape"], np.float32)

  def feed(state, pcm_blocks):
    outputs = []
    for block in pcm_blocks:
      result = runner(pcm=block, state=state)
      state = result["next_state"]
      outputs.append(result["vocals"][0])
    return state, np.concatenate(outputs)

  state, _ = feed(zeros, blocks[:4])
  broken = blocks[4].copy()
  broken[0, 100] = bad
  state, _ = feed(state, [broken])
  assert not np.all(np.isfinite(state))
  _, after = feed(state, blocks[5:15])
  assert not np.any(np.isfinite(after))  # Ten clean blocks later, still all NaN.
  _, recovered = feed(zeros, blocks[5:15])  # The app resets the state ...
  _, fresh = feed(np.zeros_like(zeros), blocks[5:15])
  assert np.all(np.isfinite(recovered))
  np.testing.assert_array_equal(recovered, fresh)  # ... and the stream is as good as new.


# --- robustness issue: a name too long, a full disk -------------------------------------------------

def test_export_output_name_too_long_fails_before_conversion(model, tmp_path, monkeypatch):
  """Its "File name too long" came after the conversion."""
  monkeypatch.setattr("tf_drnn_export.conversion.write_saved_model",
                      lambda *a: pytest.fail("converted before the check"))
  output = str(tmp_path / ("m" * 250 + ".tflite"))
  with pytest.raises(UserError) as raised:
    export_tflite(model, output, "float32")
  assert str(raised.value) == f"{output}: file name too long (257 bytes; this file system allows 255)"
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("failing", [".tflite", ".json"])
def test_export_to_a_full_disk_is_one_line_and_keeps_the_previous_files(tmp_path, monkeypatch, failing):
  """A full disk gave a 37-line OSError after the conversion; now one UserError naming the file, and
  FILE.tflite and FILE.json are replaced together or not at all (no partial or temporary file)."""
  import errno
  output = tmp_path / "m.tflite"
  output.write_bytes(b"old model")
  output.with_suffix(".json").write_bytes(b"old sidecar")
  real_open = open

  class FullDisk:
    def __init__(self, path, mode):
      self.file = real_open(path, mode)

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self.file.close()

    def write(self, data):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  monkeypatch.setattr("tf_drnn_export.sidecar.open",
                      lambda path, mode="r": FullDisk(path, mode) if path.endswith(failing) else real_open(path, mode),
                      raising=False)
  with pytest.raises(UserError) as raised:
    write_together({str(output): b"new model", str(output.with_suffix(".json")): b"{}"})
  assert str(raised.value) == f"{output.with_suffix(failing)}: cannot write (No space left on device)"
  assert sorted(os.listdir(tmp_path)) == ["m.json", "m.tflite"]
  assert output.read_bytes() == b"old model" and output.with_suffix(".json").read_bytes() == b"old sidecar"


@pytest.mark.parametrize("quantization,tolerance", [("float32", 1e-3), ("int8", 0.25)])
def test_separator_runs_a_tflite_file_full_band_like_the_keras_model(model, exported, quantization, tolerance):
  """Separator("m.tflite"): the same block runner and full-band splitter as the Keras model, the
  model run frame by frame under LiteRT. Stereo 44.1 kHz: float32 gives the Keras stems to float
  precision (largest error over the vocals' RMS), int8 within its quantization error (RMS error
  over the vocals' RMS)."""
  import soxr
  from tf_drnn import Separator
  path, _ = exported[quantization]
  song = np.stack([_signal(1.0, seed=8), _signal(1.0, seed=9)], axis=1)
  song = np.asarray(soxr.resample(song, 16000, 44100), np.float32)
  expected = Separator(model, block_frames=8).separate(song, 44100)
  got = Separator(path, block_frames=8).separate(song, 44100)
  rms = lambda x: np.sqrt(np.mean(np.square(x)))  # noqa: E731
  for stem in ("vocals", "accompaniment"):
    assert got[stem].shape == song.shape
    error = got[stem] - expected[stem]
    assert (np.max(np.abs(error)) if quantization == "float32" else rms(error)) / rms(expected["vocals"]) < tolerance
  np.testing.assert_allclose(got["vocals"] + got["accompaniment"], song, atol=1e-5)


def test_separate_command_runs_a_tflite_file_without_tensorflow_keras_or_librosa(exported, tmp_path):
  """tf-drnn-separate --model=m_int8.tflite on a 44.1 kHz stereo file, in a process where importing
  tensorflow, keras or librosa fails: what a runtime-only install (NumPy, soundfile, soxr, LiteRT) has."""
  import soundfile
  import soxr
  path, _ = exported["int8"]
  song = np.stack([_signal(1.0, seed=8), _signal(1.0, seed=9)], axis=1)
  song = np.asarray(soxr.resample(song, 16000, 44100), np.float32)
  soundfile.write(str(tmp_path / "song.wav"), song, 44100, subtype="FLOAT")
  blocker = (IMPORT_BLOCKER +
             f"sys.argv = ['tf-drnn-separate', '--model={path}', '--output_dir={tmp_path / 'out'}', "
             f"'{tmp_path / 'song.wav'}']\n"
             "from tf_drnn.separate import run\n"
             "run()\n")
  result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  vocals, rate = soundfile.read(str(tmp_path / "out" / "song_vocals.wav"), dtype="float32")
  accompaniment, _ = soundfile.read(str(tmp_path / "out" / "song_accompaniment.wav"), dtype="float32")
  assert rate == 44100 and vocals.shape == song.shape
  np.testing.assert_allclose(vocals + accompaniment, song, atol=1e-5)
  assert np.sqrt(np.mean(vocals ** 2)) > 1e-3  # the model heard something



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
  args = [REPO / "benchmarks" / "on_device.py", "--calls=20", "--warmup=2", "--blocks=2", "--block_frames=4",
          "--label=test", f"--json={out}", *files]
  result = subprocess.run([sys.executable, "-c", IMPORT_BLOCKER + program, *map(str, args)], capture_output=True,
                          text=True, timeout=300)
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

# --- a live model: 128-sample hop, asymmetric windows, causal context ----------------------------

@pytest.fixture(scope="module")
def live_model():
  return _live_model()


@pytest.fixture(scope="module")
def live_exported(live_model):
  return _exports("live", live_model)


def test_live_model_streams_one_hop_per_call_like_offline(live_model, live_exported, mixture):
  from tf_drnn.litert import stream_pcm as stream
  from tf_drnn.models import offline_estimates
  path, sidecar = live_exported["float32"]
  assert (sidecar["hop_length"], sidecar["window"], sidecar["frame_delay"]) == (128, "asymmetric_sine", 0)
  assert (sidecar["latency_samples"], sidecar["algorithmic_latency_samples"]) == (128, 256)
  runner = _runner(path, "separate_pcm")
  assert list(runner.get_input_details()["pcm"]["shape"]) == [1, 128]
  vocals, accompaniment = stream(runner, mixture, 128, sidecar["latency_samples"])
  expected_vocals, expected_accompaniment = offline_estimates(live_model, mixture)
  assert _relative_error(vocals, expected_vocals) < 1e-4
  assert _relative_error(accompaniment, expected_accompaniment) < 1e-4


def test_live_model_impulse_comes_out_one_hop_later(live_exported):
  """The measured delay of the exported stream: an impulse fed in hop by hop comes out 128 samples later."""
  path, sidecar = live_exported["float32"]
  runner = _runner(path, "separate_pcm")
  state = np.zeros(runner.get_input_details()["state"]["shape"], np.float32)
  signal = np.zeros(2048, np.float32)
  signal[700] = 1.0
  output = []
  for start in range(0, len(signal), 128):
    out = runner(pcm=signal[None, start:start + 128], state=state)
    state = out["next_state"]
    output.append(out["vocals"][0] + out["accompaniment"][0])
  assert int(np.argmax(np.abs(np.concatenate(output)))) - 700 == sidecar["latency_samples"] == 128


@pytest.mark.parametrize("quantization,tolerance", [("float32", 1e-3), ("int8", 0.25)])
def test_separator_runs_a_live_tflite_file_like_its_keras_model(live_model, live_exported, quantization, tolerance):
  import soxr
  from tf_drnn import Separator
  path, _ = live_exported[quantization]
  song = np.asarray(soxr.resample(np.stack([_signal(0.8, seed=8), _signal(0.8, seed=9)], axis=1), 16000, 44100),
                    np.float32)
  expected = Separator(live_model, block_frames=16).separate(song, 44100)
  got = Separator(path, block_frames=16).separate(song, 44100)
  rms = lambda x: np.sqrt(np.mean(np.square(x)))  # noqa: E731
  error = got["vocals"] - expected["vocals"]
  assert (np.max(np.abs(error)) if quantization == "float32" else rms(error)) / rms(expected["vocals"]) < tolerance
  np.testing.assert_allclose(got["vocals"] + got["accompaniment"], song, atol=1e-5)


def test_the_private_tflite_apis_the_exporter_uses_are_there():
  """int8 export and the flatbuffer rewriting use private TFLite APIs (tf_drnn_export.private_api);
  setup.py bounds TensorFlow for them. An upgrade that moves one fails here, naming it."""
  import tensorflow as tf

  from tf_drnn_export.private_api import missing_private_apis
  missing = missing_private_apis()
  assert not missing, (f"TensorFlow {tf.__version__} moved the private TFLite APIs tf-drnn-export relies on: "
                       f"{', '.join(missing)}. Adapt export/ to them, or keep the tensorflow bound of setup.py's "
                       "train extra below this version.")
