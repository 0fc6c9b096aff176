"""Int8 packing of trained runs: bounded weight error, and a model that unpacks to the same shape."""
import json
import os

import numpy as np
import pytest

from tools import compact_weights


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (6,)])
def test_quantize_error_is_half_a_step_per_output_channel(shape):
  weight = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  values, scale = compact_weights.quantize(weight)
  restored = compact_weights.dequantize(values, scale)
  if len(shape) < 2:
    assert scale is None
    np.testing.assert_array_equal(restored, weight)
    return
  assert values.dtype == np.int8 and scale.shape == (shape[-1],)
  step = np.abs(weight.reshape(-1, shape[-1])).max(axis=0) / 127
  assert np.all(np.abs(restored - weight) <= step / 2 + 1e-7)


def test_pack_unpack_round_trip(tmp_path, tiny_model):
  run = tmp_path / "run"
  os.makedirs(run)
  tiny_model.save(str(run / "model.keras"))
  options = {"architecture": "drnn2", "context": 3, "num_layers": 3, "hidden_units": 16,
             "output_format": "masked"}
  (run / "options.json").write_text(json.dumps(options))
  (run / "training.json").write_text(json.dumps({"steps": 7, "complete": True}))
  compact_weights.pack(str(run), str(tmp_path / "run.npz"))
  compact_weights.unpack(str(tmp_path / "run.npz"), str(tmp_path / "back"))
  import keras
  restored = keras.models.load_model(str(tmp_path / "back" / "model.keras"))
  assert json.loads((tmp_path / "back" / "training.json").read_text())["steps"] == 7
  for original, copy in zip(tiny_model.weights, restored.weights):
    original, copy = np.asarray(original.value), np.asarray(copy.value)
    bound = np.abs(original).max(axis=tuple(range(original.ndim - 1)), keepdims=True) / 254 + 1e-7
    assert np.all(np.abs(original - copy) <= bound)
