"""The model family: shapes, the recurrent layer against NumPy, the mask, level invariance, saving."""
import numpy as np
import pytest

from tf_drnn import model as model_lib
from tf_drnn.model import ModelParts


def _relu_rnn_numpy(x, kernel, recurrent, bias, h0):
  h, outputs = h0, []
  for t in range(x.shape[1]):
    h = np.maximum(x[:, t] @ kernel + h @ recurrent + bias, 0)
    outputs.append(h)
  return np.stack(outputs, 1), h


@pytest.mark.parametrize("steps", [1, 5, 200])  # 1 and 5 unroll, 200 runs the scan loop
def test_relu_recurrent_matches_numpy(steps):
  rng = np.random.default_rng(steps)
  layer = model_lib.ReluRecurrent(6, recurrent_gain=0.9)
  x = rng.standard_normal((2, steps, 4)).astype(np.float32)
  h0 = np.abs(rng.standard_normal((2, 6))).astype(np.float32)
  outputs, final = layer(x, initial_state=h0)
  kernel, recurrent, bias = [w.numpy() for w in (layer.kernel, layer.recurrent_kernel, layer.bias)]
  ref_outputs, ref_final = _relu_rnn_numpy(x, kernel, recurrent, bias, h0)
  np.testing.assert_allclose(outputs, ref_outputs, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(final, ref_final, rtol=1e-4, atol=1e-5)


def test_run_recurrences_as_scan_changes_one_model_not_its_results():
  model = model_lib.build_model("srnn", context=1, hidden_units=6)
  magnitude = np.abs(np.random.default_rng(3).standard_normal((2, 9, 513))).astype(np.float32)
  unrolled = np.asarray(model(magnitude))
  model_lib.run_recurrences_as_scan(model, 4)
  layers = [layer for layer in model.layers if isinstance(layer, model_lib.ReluRecurrent)]
  assert [(layer.max_unroll, layer.scan_unroll) for layer in layers] == [(0, 4)] * 3
  np.testing.assert_allclose(model(magnitude), unrolled, rtol=1e-5, atol=1e-6)
  assert (model_lib.ReluRecurrent.max_unroll, model_lib.ReluRecurrent.scan_unroll) == (128, 1)
  other = model_lib.build_model("drnn2", context=1, hidden_units=6)
  assert [layer.max_unroll for layer in other.layers if isinstance(layer, model_lib.ReluRecurrent)] == [128]


@pytest.mark.parametrize("architecture,expected", [
    ("dnn", ()), ("drnn1", (1,)), ("drnn2", (2,)), ("drnn3", (3,)), ("srnn", (1, 2, 3))])
def test_recurrent_layers_by_architecture(architecture, expected):
  assert model_lib.recurrent_layer_indices(architecture, 3) == expected
  model = model_lib.build_model(architecture, context=1, hidden_units=4)
  assert model_lib.describe(model)["recurrent_layers"] == expected
  assert model_lib.describe(model)["architecture"] == architecture


def test_unknown_architecture_is_rejected():
  with pytest.raises(ValueError, match="unknown architecture 'lstm'"):
    model_lib.build_model("lstm")


@pytest.mark.parametrize("output_format,sources", [("masked", 2), ("two_sources", 2), ("one_source", 1)])
@pytest.mark.parametrize("context", [1, 3, 5])
def test_output_shapes(output_format, sources, context):
  model = model_lib.build_model("drnn2", context=context, hidden_units=8, output_format=output_format)
  magnitude = np.abs(np.random.default_rng(0).standard_normal((2, 7, 513))).astype(np.float32)
  assert model(magnitude).shape == (2, 7, sources, 513)


def test_joint_mask_splits_the_mixture(tiny_model):
  magnitude = np.abs(np.random.default_rng(1).standard_normal((1, 9, 513))).astype(np.float32) + 0.1
  sources = np.asarray(tiny_model(magnitude))
  assert np.all(sources >= 0)
  np.testing.assert_allclose(sources.sum(axis=2), magnitude, rtol=1e-4)


@pytest.mark.parametrize("gain_db", [-40.0, 0.0, 20.0])
def test_separation_is_level_invariant(tiny_model, gain_db):
  magnitude = np.abs(np.random.default_rng(2).standard_normal((1, 12, 513))).astype(np.float32)
  gain = 10 ** (gain_db / 20)
  expected = np.asarray(tiny_model(magnitude))
  # float32 rounding, which oneDNN's thread split varies from run to run, passes through the network:
  # equal to 1e-4 of the output's scale.
  np.testing.assert_allclose(np.asarray(tiny_model(magnitude * gain)) / gain, expected, rtol=1e-3,
                             atol=1e-4 * np.abs(expected).max())


def test_features_standardize_training_statistics():
  layer = model_lib.SpectralFeatures()
  magnitudes = np.abs(np.random.default_rng(3).standard_normal((500, 513))).astype(np.float32)
  layer.set_statistics(magnitudes)
  features = np.asarray(layer(magnitudes))
  np.testing.assert_allclose(features.mean(0), 0, atol=1e-3)
  np.testing.assert_allclose(features.std(0), 1, atol=1e-2)


def test_the_audio_config_is_saved_with_the_model_and_read_back(tmp_path):
  import keras
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG, AudioConfig
  other = AudioConfig(sample_rate=8000, n_fft=512, hop_length=256)
  model = model_lib.build_model("dnn", context=1, num_layers=1, hidden_units=4, config=other)
  assert model.input_shape[-1] == 257 and model_lib.audio_config(model) == other
  model.save(tmp_path / "m.keras")
  assert model_lib.audio_config(keras.models.load_model(tmp_path / "m.keras")) == other
  # A file saved before the config was recorded (no "audio_config" key) was trained with the default.
  layer = model_lib.SpectralFeatures.from_config({"name": "features", "floor": 1e-3, "epsilon": 1e-9,
                                                  "level_feature": False, "level_clip": 5.0})
  assert layer.audio_config == DEFAULT_AUDIO_CONFIG


def test_a_model_of_a_removed_experiment_is_refused_with_the_commit_that_has_it():
  with pytest.raises(ValueError, match="--level_feature.*commit 441b507"):
    model_lib.SpectralFeatures(level_feature=True)


def test_the_bundled_models_record_their_audio_config():
  """The paper's STFT for drnn2 and drnn2_compact; the live model's 128-sample hop, asymmetric windows
  and causal context, as its training options say."""
  import json
  import os

  from tf_drnn.config import DEFAULT_AUDIO_CONFIG, AudioConfig
  from tf_drnn.models import BUNDLED_MODELS, PRETRAINED_DIR, load_model
  expected = {"drnn2": (DEFAULT_AUDIO_CONFIG, 1), "drnn2_compact": (DEFAULT_AUDIO_CONFIG, 1),
              "drnn2_live": (AudioConfig(hop_length=128, window="asymmetric_sine"), 0)}
  assert set(BUNDLED_MODELS) == set(expected)
  for name in BUNDLED_MODELS:
    if not os.path.isfile(os.path.join(PRETRAINED_DIR, name + ".keras")):
      continue  # checked by tests/test_separate.py's registry test
    model = load_model(name)
    assert (model_lib.audio_config(model), model_lib.describe(model)["lookahead"]) == expected[name]
    with open(os.path.join(PRETRAINED_DIR, name + ".json")) as f:
      options = json.load(f)["options"]
    assert model_lib.describe(model_lib.build_model_from_options(options)) == model_lib.describe(model)


def test_save_and_load_roundtrip(tiny_model, tmp_path):
  import keras
  path = str(tmp_path / "model.keras")
  tiny_model.save(path)
  loaded = keras.models.load_model(path)
  magnitude = np.abs(np.random.default_rng(4).standard_normal((1, 6, 513))).astype(np.float32)
  np.testing.assert_allclose(loaded(magnitude), tiny_model(magnitude), rtol=1e-6)
  assert model_lib.describe(loaded) == model_lib.describe(tiny_model)


def test_bundle_names_a_missing_input_before_writing_anything(tmp_path):
  import types

  from tf_drnn.errors import UserError
  from tools.bundle import _check_inputs
  (tmp_path / "model.keras").write_bytes(b"")
  values = dict(model_dir=str(tmp_path), flagfile_path=str(tmp_path / "run.flags"), evaluation=None,
                tflite_evaluation=None, benchmark=None, produced_evaluation=None, produced_tflite_evaluation=None)
  with pytest.raises(UserError, match="best.json: no such file"):
    _check_inputs(types.SimpleNamespace(**values))
  (tmp_path / "best.json").write_text("{}")
  (tmp_path / "run.flags").write_text("")
  _check_inputs(types.SimpleNamespace(**values))


def test_bundle_records_the_measured_figures(tmp_path):
  import json

  from tools.bundle import record_figures

  def evaluation(method, gnsdr):
    return {"method": method, "num_clips": 2, "clips": [{"name": "Ani_1_01"}, {"name": "annar_2_03"}],
            "global": {"vocals": {"GNSDR": gnsdr, "GSIR": 15.004, "GSAR": 11.0, "GSDR": 9.0}}}
  latency = {"1t_xnnpack": {"p50_ms": 0.03141}, "2t_xnnpack": {"p50_ms": 0.02}}
  benchmark = {"environment": {"cpu_model": "AMD EPYC", "machine": "x86_64", "ai_edge_litert": "2.3.0",
                               "date_utc": "2026-12-02T14:25:54+00:00"},
               "variants": {"int8": {"size_bytes": 1281760, "latency": {"separate_frame": latency,
                                                                         "separate_pcm": {}}}}}
  paths = []
  for name, document in (("e", evaluation("model", 7.954)), ("t", evaluation("tflite", 7.9449)), ("b", benchmark)):
    paths.append(tmp_path / f"{name}.json")
    paths[-1].write_text(json.dumps(document))
  (tmp_path / "m.json").write_text(json.dumps({"step": 4000}))
  record_figures("m", *paths, output_dir=tmp_path)
  record = json.loads((tmp_path / "m.json").read_text())
  assert record["step"] == 4000
  assert record["figures"]["quality"] == {
      "keras": {"clips": 2, "singers": ["Ani", "annar"], "method": "model", "GNSDR": 7.95, "GSIR": 15.0, "GSAR": 11.0},
      "int8_streamed": {"clips": 2, "singers": ["Ani", "annar"], "method": "tflite", "GNSDR": 7.94, "GSIR": 15.0,
                        "GSAR": 11.0}}
  assert record["figures"]["speed"] == {
      "machine": "AMD EPYC (x86_64), one thread, XNNPACK, ai-edge-litert 2.3.0, 2026-12-02",
      "variants": {"int8": {"bytes": 1281760, "separate_frame_p50_ms": 0.031}}}
  assert "quality_produced" not in record["figures"]
  produced = lambda mean: {"num_tracks": 14, "selection": "split dev", "mono": True, "global": {"vocals": {  # noqa: E731
      "mean_SDR": mean, "median_SDR": 4.004, "GNSDR": 8.0, "GSIR": 10.0, "GSAR": 7.0, "GSDR": mean}}}
  for name, document in (("p", produced(5.126)), ("q", produced(5.004))):
    (tmp_path / f"{name}.json").write_text(json.dumps(document))
  record_figures("m", *paths, output_dir=tmp_path, produced_paths=(tmp_path / "p.json", tmp_path / "q.json"))
  quality = json.loads((tmp_path / "m.json").read_text())["figures"]["quality_produced"]
  assert quality["keras"] == {"songs": 14, "selection": "split dev", "mono": True, "mean_SDR": 5.13,
                              "median_SDR": 4.0, "GNSDR": 8.0, "GSIR": 10.0, "GSAR": 7.0}
  assert quality["int8_streamed"]["mean_SDR"] == 5.0


def test_bundle_leaves_out_the_optimizer(tmp_path):
  import io
  import zipfile

  import h5py
  from tf_drnn.model import build_model
  from tf_drnn.models import load_model
  from tools.bundle import store_weights_as_float16
  model = build_model(hidden_units=8)
  model.compile(optimizer="adam", loss="mse")
  model.fit(np.ones((2, 5, 513), np.float32), np.ones((2, 5, 2, 513), np.float32), epochs=1, verbose=0)
  model.save(tmp_path / "trained.keras")
  store_weights_as_float16(tmp_path / "trained.keras", tmp_path / "bundled.keras")
  def groups(path):
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
      return set(f)
  assert "optimizer" in groups(tmp_path / "trained.keras")
  assert "optimizer" not in groups(tmp_path / "bundled.keras")
  restored = load_model(str(tmp_path / "bundled.keras"))
  for weight, restored_weight in zip(model.get_weights(), restored.get_weights()):
    np.testing.assert_array_equal(restored_weight, weight.astype(np.float16).astype(np.float32))


def test_float16_bundle_loads_into_float32_variables(tiny_model, tmp_path):
  import keras
  from tools.bundle import store_weights_as_float16
  tiny_model.save(tmp_path / "full.keras")
  store_weights_as_float16(tmp_path / "full.keras", tmp_path / "half.keras")
  half = keras.models.load_model(tmp_path / "half.keras")
  assert ModelParts(half).hidden[0].kernel.dtype == "float32"
  for full_weight, half_weight in zip(tiny_model.get_weights(), half.get_weights()):
    np.testing.assert_array_equal(half_weight, full_weight.astype(np.float16).astype(np.float32))
