"""Objectives against NumPy references."""
import numpy as np
import pytest

from tf_drnn.losses import DiscriminativeLoss


def _divergence(kind, estimate, target):
  if kind == "mse":
    return 0.5 * np.sum((estimate - target) ** 2, -1)
  estimate, target = estimate + 1e-6, target + 1e-6
  return np.sum(target * np.log(target / estimate) - target + estimate, -1)


@pytest.mark.parametrize("kind", ["mse", "kl"])
@pytest.mark.parametrize("gamma", [0.0, 0.05, 0.2])
def test_discriminative_objective_matches_numpy(kind, gamma):
  rng = np.random.default_rng(0)
  y_true = np.abs(rng.standard_normal((2, 3, 2, 513))).astype(np.float32)
  y_pred = np.abs(rng.standard_normal((2, 3, 2, 513))).astype(np.float32)
  d = lambda a, b: _divergence(kind, y_pred[..., a, :], y_true[..., b, :])
  expected = d(0, 0) + d(1, 1) - gamma * (d(0, 1) + d(1, 0))
  got = DiscriminativeLoss(kind, gamma).call(y_true, y_pred)
  np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_one_source_uses_the_vocals_term_only():
  rng = np.random.default_rng(1)
  y_true = np.abs(rng.standard_normal((1, 4, 2, 513))).astype(np.float32)
  y_pred = np.abs(rng.standard_normal((1, 4, 1, 513))).astype(np.float32)
  expected = _divergence("mse", y_pred[..., 0, :], y_true[..., 0, :])
  np.testing.assert_allclose(DiscriminativeLoss("mse", 0.05).call(y_true, y_pred), expected, rtol=1e-5)


def test_perfect_estimate_has_zero_kl():
  y = np.abs(np.random.default_rng(2).standard_normal((1, 2, 2, 513))).astype(np.float32)
  np.testing.assert_allclose(DiscriminativeLoss("kl", 0.0).call(y, y), 0.0, atol=1e-3)


def test_unknown_loss_is_rejected():
  with pytest.raises(ValueError, match="unknown loss"):
    DiscriminativeLoss("l1")
