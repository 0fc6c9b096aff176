"""tools.average_models: the weighted mean of models' weights, models grown to the first one's structure."""
import numpy as np
import pytest

from conftest import run_command
from tf_drnn.errors import UserError
from tf_drnn.model import ModelParts, build_model
from tf_drnn.models import load_model, save_model
from tools.average_models import average_models


def _saved(tmp_path, name, architecture, seed):
  import keras
  keras.utils.set_random_seed(seed)
  model = build_model(architecture, num_layers=2, hidden_units=8)
  ModelParts(model).features.set_statistics(np.abs(np.random.default_rng(0).standard_normal((50, 513))))
  path = str(tmp_path / f"{name}.keras")
  save_model(model, path)
  return path, model.get_weights()


def test_the_weighted_mean_of_two_models(tmp_path):
  (a, weights_a), (b, weights_b) = _saved(tmp_path, "a", "drnn2", 1), _saved(tmp_path, "b", "drnn2", 2)
  soup = average_models([a, b], [3.0, 1.0])
  for mean, x, y in zip(soup.get_weights(), weights_a, weights_b, strict=True):
    np.testing.assert_allclose(mean, 0.75 * x + 0.25 * y, rtol=1e-6, atol=1e-7)
  save_model(soup, str(tmp_path / "soup.keras"))
  np.testing.assert_allclose(load_model(str(tmp_path / "soup.keras")).get_weights()[3],
                             0.75 * weights_a[3] + 0.25 * weights_b[3], rtol=1e-6)


def test_a_model_with_fewer_recurrences_joins_with_zero_recurrent_kernels(tmp_path):
  (grown, _), (plain, _) = _saved(tmp_path, "s", "srnn", 1), _saved(tmp_path, "d", "drnn2", 2)
  soup = average_models([grown, plain])
  first = ModelParts(soup).hidden[0]
  assert first.recurrent_kernel.shape == (8, 8)  # hidden_1 recurs in the first model only: half its kernel
  np.testing.assert_allclose(first.recurrent_kernel.numpy(), 0.5 * ModelParts(load_model(grown)).hidden[0]
                             .recurrent_kernel.numpy(), rtol=1e-6)
  with pytest.raises(UserError, match="its structure"):
    average_models([plain, grown])  # a DRNN-2 cannot take the sRNN's recurrence on hidden_1
  with pytest.raises(UserError, match="one non-negative weight per model"):
    average_models([plain, plain], [1.0])


@pytest.mark.parametrize("weights,message", [("1,abc", "error: --weights=1,abc: one number per model"),
                                             ("1", "error: --weights=1.0: one non-negative weight per model")])
def test_the_command_writes_the_soup_or_says_what_is_wrong_in_one_line(tmp_path, weights, message):
  (a, weights_a), (b, weights_b) = _saved(tmp_path, "a", "drnn2", 1), _saved(tmp_path, "b", "drnn2", 2)
  output = tmp_path / "soup.keras"
  result = run_command("tools.average_models", f"--models={a},{b}", f"--weights={weights}", f"--output={output}")
  assert (result.returncode, result.stderr.strip().splitlines()[-1].startswith(message)) == (2, True)
  assert "Traceback" not in result.stderr and not output.exists()
  result = run_command("tools.average_models", f"--models={a},{b}", f"--output={output}")
  assert result.returncode == 0 and f"wrote {output}" in result.stdout
  np.testing.assert_allclose(load_model(str(output)).get_weights()[3], 0.5 * weights_a[3] + 0.5 * weights_b[3],
                             rtol=1e-6)
