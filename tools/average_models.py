"""Averages the weights of trained models into one model: a model soup (Wortsman et al., ICML 2022).

Models fine-tuned from one starting model stay in one basin of the loss, and their weighted mean
often scores at least as well as each on every dev set: a free step along a trade-off between
collections. Each model is a .keras file, a model_dir, a bundled name, or a run's latest training
state (RUN/state.npz). Models recurring on fewer layers than the first are grown into its structure
first (tf_drnn.models.warm_start: zero recurrent kernels), so their function is unchanged.

    python -m tools.average_models --output=soup.keras --models=runs/a,runs/b [--weights=0.5,0.5]

Score the result like any model (tf-drnn-evaluate), or as a run's step 0 on its dev sets:
tf-drnn-train --flagfile=F --init_model=soup.keras --train_steps=0 --model_dir=runs/soup.
"""
import os

import numpy as np

from tf_drnn.errors import UserError


def load_any(path):
  """A model file, model_dir or bundled name (tf_drnn.models.load_model), or a run's RUN/state.npz."""
  from tf_drnn.models import load_model
  from tf_drnn.train import model_from_state
  return model_from_state(path) if os.path.basename(path) == "state.npz" else load_model(path)


def average_models(paths, weights=None):
  """The first model of `paths` carrying the weighted mean of all their weights (weights: relative,
  default equal); each model grown into the first one's structure first."""
  import keras

  from tf_drnn.models import copy_weights
  weights = np.full(len(paths), 1.0) if not weights else np.asarray(weights, np.float64)
  if len(weights) != len(paths) or np.any(weights < 0) or weights.sum() <= 0:
    raise UserError(f"--weights={','.join(map(str, weights))}: one non-negative weight per model, not all 0")
  structure = load_any(paths[0])
  arrays = [structure.get_weights()]
  for path in paths[1:]:
    grown = keras.models.clone_model(structure)
    if copy_weights(grown, load_any(path), path):
      raise UserError(f"{path}: its audio settings differ from the first model's: no mean of their weights")
    arrays.append(grown.get_weights())
  shares = weights / weights.sum()
  structure.set_weights([sum(share * model[i] for share, model in zip(shares, arrays))
                         for i in range(len(arrays[0]))])
  return structure


def _weights(texts):
  """--weights as numbers (an empty list: equal weights)."""
  try:
    return [float(text) for text in texts] or None
  except ValueError:
    raise UserError(f"--weights={','.join(texts)}: one number per model") from None


def main(argv):
  del argv
  from absl import flags

  from tf_drnn.cli_util import run_guarded
  from tf_drnn.models import save_model
  f = flags.FLAGS
  run_guarded(lambda: save_model(average_models(f.models, _weights(f.weights)), f.output))
  print(f"wrote {f.output}: the mean of {', '.join(f.models)}")


def define_flags():
  from absl import flags
  flags.DEFINE_list("models", None, "The models to average (.keras, model_dir, bundled name, RUN/state.npz).",
                    required=True)
  flags.DEFINE_list("weights", [], "Relative weight of each model (default: equal).")
  flags.DEFINE_string("output", None, "The averaged .keras file.", required=True)


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main)
