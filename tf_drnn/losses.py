"""Training objectives: MSE or generalized KL, each with the discriminative term.

With y_1, y_2 the target magnitudes and ŷ_1, ŷ_2 the estimates, per frame:

    J = D(ŷ_1, y_1) + D(ŷ_2, y_2) - γ D(ŷ_1, y_2) - γ D(ŷ_2, y_1)

with D the squared error (halved, as in the paper) or the generalized KL divergence
D(y || ŷ) = Σ y log(y / ŷ) - y + ŷ, summed over frequency bins. γ = 0 is the plain
objective; a one-source model is trained on the vocals term alone.
"""
import keras
from keras import ops

from tf_drnn.choices import LOSSES

_KL_EPSILON = 1e-6


def squared_error(estimate, target):
  """½ Σ_bins (ŷ - y)²: [..., bins] -> [...]."""
  return 0.5 * ops.sum(ops.square(estimate - target), axis=-1)


def generalized_kl(estimate, target):
  """Σ_bins y log(y / ŷ) - y + ŷ for non-negative magnitudes: [..., bins] -> [...]."""
  estimate = estimate + _KL_EPSILON
  target = target + _KL_EPSILON
  return ops.sum(target * ops.log(target / estimate) - target + estimate, axis=-1)


_DIVERGENCES = {"mse": squared_error, "kl": generalized_kl}


@keras.saving.register_keras_serializable(package="tf_drnn")
class DiscriminativeLoss(keras.losses.Loss):
  """y_true [B, T, 2, bins] (vocals, accompaniment); y_pred [B, T, S, bins], S in {1, 2}.

  Returns the per-frame objective [B, T]; Keras averages it over frames and batch.
  """

  def __init__(self, kind="mse", discriminative_weight=0.05, name="discriminative_loss", **kwargs):
    if kind not in LOSSES:
      raise ValueError(f"unknown loss {kind!r}: choose one of {', '.join(LOSSES)}")
    super().__init__(name=name, **kwargs)
    self.kind = kind
    self.discriminative_weight = float(discriminative_weight)

  def call(self, y_true, y_pred):
    divergence = _DIVERGENCES[self.kind]
    vocals, accompaniment = y_true[..., 0, :], y_true[..., 1, :]
    if y_pred.shape[-2] == 1:
      return divergence(y_pred[..., 0, :], vocals)
    vocals_hat, accompaniment_hat = y_pred[..., 0, :], y_pred[..., 1, :]
    loss = divergence(vocals_hat, vocals) + divergence(accompaniment_hat, accompaniment)
    if self.discriminative_weight:
      loss -= self.discriminative_weight * (divergence(vocals_hat, accompaniment) +
                                            divergence(accompaniment_hat, vocals))
    return loss

  def get_config(self):
    return {**super().get_config(), "kind": self.kind,
            "discriminative_weight": self.discriminative_weight}
