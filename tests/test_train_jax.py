"""The Keras JAX trainer: its schedule against tf_drnn.train's, and (where JAX is installed) a run."""
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import REPO, write_fake_mir1k
from tf_drnn.train_jax import learning_rate_at

HAS_JAX = importlib.util.find_spec("jax") is not None


@pytest.mark.parametrize("steps,warmup", [(1000, 100), (50, 10), (300, 0)])
def test_schedule_matches_keras_cosine_decay(steps, warmup):
  """The host-side rate equals the CosineDecay (with warm-up) that tf_drnn.train uses."""
  schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(steps - warmup, 1), alpha=0.05,
                                                    warmup_target=1e-3, warmup_steps=warmup)
  for step in sorted({0, 1, warmup // 2, warmup, warmup + 1, (steps + warmup) // 2, steps - 1, steps}):
    decay = (step - warmup) / max(steps - warmup, 1)
    expected = float(keras.ops.convert_to_numpy(schedule(step)))
    assert learning_rate_at(step, decay, 1e-3, warmup) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_time_budget_only_moves_the_decay_forward():
  assert learning_rate_at(50, 2.0, 1e-3, 10) == pytest.approx(5e-5)  # past the end: floor, not below
  assert learning_rate_at(5, 0.9, 1e-3, 10) == pytest.approx(5e-4)  # warm-up counts steps only


def _jax_train(args, timeout=600):
  env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-m", "tf_drnn.train_jax"] + args, cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, env=env)


@pytest.mark.skipif(not HAS_JAX, reason="needs JAX (pip install jax): the trainer for machines without TensorFlow")
def test_jax_training_writes_a_model_tensorflow_loads_then_resumes(tmp_path):
  data = write_fake_mir1k(str(tmp_path / "mir1k"))
  model_dir = str(tmp_path / "run")
  tiny = [f"--data_dir={data}", f"--model_dir={model_dir}", "--hidden_units=8", "--batch_size=2",
          "--sequence_length=8", "--warmup_steps=1", "--eval_every=2", "--circular_shift=4000", "--scan_unroll=4"]
  first = _jax_train(tiny + ["--train_steps=2"])
  assert first.returncode == 0, first.stderr[-2000:]
  training = json.load(open(os.path.join(model_dir, "training.json")))
  assert training["steps"] == 2 and training["complete"] and training["trainer"] == "keras-jax"
  second = _jax_train(tiny + ["--train_steps=4"])
  assert second.returncode == 0, second.stderr[-2000:]
  assert "Resuming from step 2" in second.stdout
  import tf_drnn.model  # noqa: F401
  model = keras.models.load_model(os.path.join(model_dir, "model.keras"))  # TensorFlow backend here
  assert model(np.ones((1, 5, 513), np.float32)).shape == (1, 5, 2, 513)
  # --init_model: a new run starts from those weights (a tiny learning rate keeps them).
  warm_dir = str(tmp_path / "warm")
  warm = _jax_train([a for a in tiny if not a.startswith("--model_dir")] + [
      f"--model_dir={warm_dir}", f"--init_model={model_dir}", "--train_steps=1", "--learning_rate=1e-9"])
  assert warm.returncode == 0, warm.stderr[-2000:]
  assert f"Starting from the weights of {model_dir}" in warm.stdout
  warmed = keras.models.load_model(os.path.join(warm_dir, "model.keras"))
  for before, after in zip(model.get_weights(), warmed.get_weights()):
    np.testing.assert_allclose(after, before, atol=1e-6)
  wrong = _jax_train([a for a in tiny if not a.startswith(("--model_dir", "--hidden_units"))] + [
      f"--model_dir={tmp_path / 'wrong'}", f"--init_model={model_dir}", "--hidden_units=4", "--train_steps=1"])
  assert wrong.returncode == 2
  assert wrong.stderr.strip().splitlines()[-1].startswith(f"error: {model_dir}: its structure")


def test_jax_trainer_refuses_another_backend(tmp_path):
  if keras.backend.backend() == "jax":
    pytest.skip("this process runs Keras on JAX")
  from tf_drnn.errors import UserError
  from tf_drnn.train import TrainOptions
  from tf_drnn.train_jax import train_jax
  data = write_fake_mir1k(str(tmp_path / "mir1k"))
  with pytest.raises(UserError, match="KERAS_BACKEND=jax"):
    train_jax(TrainOptions(data_dir=data, model_dir=str(tmp_path / "run")))


def test_reproduce_scores_runs_trained_elsewhere_without_retraining(tmp_path, monkeypatch):
  """A run dir whose training.json shows the steps done is not trained again."""
  from tf_drnn import reproduce
  run = tmp_path / "runs" / "table2_dnn_mse"
  os.makedirs(run)
  (run / "training.json").write_text(json.dumps({"steps": 30, "train_steps": 30, "complete": True,
                                                 "training_seconds": 5.0, "hardware": "GPU"}))
  monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"trained again: {a}"))
  flagfile = os.path.join(REPO, "configs", "paper", "table2_dnn_mse.flags")
  assert reproduce.run_config(flagfile, "unused", str(tmp_path / "runs"), 30, evaluate=False) is None
  (run / "training.json").write_text(json.dumps({"steps": 10, "train_steps": 30, "complete": False}))
  assert reproduce._read_training(str(run), 30) is None


def test_importing_the_jax_trainer_leaves_the_backend_alone():
  """Only the command sets KERAS_BACKEND=jax: importing the module must not switch later subprocesses."""
  env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
  out = subprocess.run([sys.executable, "-c", "import os, tf_drnn.train_jax; print(os.environ.get('KERAS_BACKEND'))"],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
  assert out.stdout.strip() == "None", out.stderr[-1000:]


@pytest.mark.skipif(not HAS_JAX, reason="needs JAX (pip install jax): the trainer for machines without TensorFlow")
def test_jax_state_falls_back_to_the_previous_one_and_never_starts_over(tmp_path):
  data = write_fake_mir1k(str(tmp_path / "mir1k"))
  model_dir = tmp_path / "run"
  tiny = [f"--data_dir={data}", f"--model_dir={model_dir}", "--hidden_units=8", "--num_layers=2", "--batch_size=2",
          "--sequence_length=8", "--warmup_steps=1", "--eval_every=1", "--circular_shift=4000"]
  failed = _jax_train(tiny + ["--train_steps=1", f"--init_model={tmp_path / 'missing'}"])
  assert failed.returncode == 2 and not os.path.exists(model_dir / "options.json")  # stopped before a state
  first = _jax_train(tiny + ["--train_steps=2"])
  assert first.returncode == 0, first.stderr[-2000:]
  assert os.path.exists(model_dir / "state.previous.npz")  # step 1's state, beside step 2's
  (model_dir / "state.npz").write_bytes(b"garbage")
  second = _jax_train(tiny + ["--train_steps=3"])
  assert second.returncode == 0, second.stderr[-2000:]
  assert "Resuming from step 1" in second.stdout
  warnings = [line for line in second.stderr.splitlines() if "cannot be read" in line]
  assert len(warnings) == 1 and f"{model_dir / 'state.npz'} cannot be read" in warnings[0]
  assert warnings[0].endswith("falling back to state.previous.npz")
  assert json.load(open(model_dir / "training.json"))["steps"] == 3
  os.remove(model_dir / "state.npz")
  os.remove(model_dir / "state.previous.npz")
  before = {name: (model_dir / name).read_bytes() for name in ("model.keras", "training.json", "options.json")}
  refused = _jax_train(tiny + ["--train_steps=4"])
  assert refused.returncode == 2
  last = refused.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: {model_dir}: holds an earlier run") and "--restart" in last
  assert "Traceback" not in refused.stderr
  assert {name: (model_dir / name).read_bytes() for name in before} == before
