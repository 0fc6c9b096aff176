"""Training from absl flags: writes a model, resumes, rejects bad input, runs distributed."""
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO, write_fake_mir1k

TINY = ["--architecture=drnn2", "--hidden_units=8", "--batch_size=2", "--sequence_length=8",
        "--warmup_steps=1", "--eval_every=100", "--circular_shift=4000", "--jit_compile=false"]


def _train(args, env=None, timeout=300):
  return subprocess.run([sys.executable, "-m", "tf_drnn.train"] + args, cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
  return write_fake_mir1k(str(tmp_path_factory.mktemp("mir1k")))


def test_train_writes_model_then_resumes(fake_data, tmp_path):
  model_dir = str(tmp_path / "run")
  first = _train([f"--data_dir={fake_data}", f"--model_dir={model_dir}", "--train_steps=3"] + TINY)
  assert first.returncode == 0, first.stderr[-2000:]
  assert os.path.isfile(os.path.join(model_dir, "model.keras"))
  best = json.load(open(os.path.join(model_dir, "best.json")))
  assert best["step"] == 3 and "GNSDR" in best["dev"]["vocals"]
  training = json.load(open(os.path.join(model_dir, "training.json")))
  assert (training["trainer"], training["steps"], training["train_steps"], training["complete"]) == (
      "keras-tensorflow", 3, 3, True)
  assert training["training_seconds"] > 0 and training["hardware"].startswith(("CPU", "1 GPU"))
  second = _train([f"--data_dir={fake_data}", f"--model_dir={model_dir}", "--train_steps=5"] + TINY)
  assert second.returncode == 0, second.stderr[-2000:]
  assert "Resuming from checkpoint at step 3" in second.stdout
  assert os.path.exists(os.path.join(model_dir, "checkpoints", "ckpt-5.index"))
  resumed = json.load(open(os.path.join(model_dir, "training.json")))
  assert (resumed["steps"], resumed["train_steps"], resumed["complete"]) == (5, 5, True)
  assert resumed["training_seconds"] > training["training_seconds"]  # the first session's time is kept


def test_flagfile_works(fake_data, tmp_path):
  flagfile = tmp_path / "run.flags"
  flagfile.write_text("\n".join([f"--data_dir={fake_data}", f"--model_dir={tmp_path / 'run'}",
                                 "--train_steps=1", "--architecture=dnn", "--target=phase_sensitive",
                                 "--speed_factors=0.9,1.1"] + TINY[1:]))
  result = _train([f"--flagfile={flagfile}"])
  assert result.returncode == 0, result.stderr[-2000:]
  options = json.load(open(tmp_path / "run" / "options.json"))
  assert options["architecture"] == "dnn" and options["target"] == "phase_sensitive"
  assert options["speed_factors"] == [0.9, 1.1]
  # 3 training clips in the fake data (abjones_1_01/02, amy_1_01), plus one copy per factor.
  assert "speed perturbation [0.9, 1.1]: 9 training clips" in result.stderr


@pytest.mark.parametrize("args,message", [
    (["--data_dir=/nonexistent/mir1k"], "error: /nonexistent/mir1k: data directory does not exist"),
    (["--architecture=lstm"], "flag --architecture=lstm: value should be one of"),
    (["--speed_factors=1.1,-0.9"], "speed factors must be positive numbers"),
])
def test_bad_input_is_one_clear_line(fake_data, tmp_path, args, message):
  base = [f"--data_dir={fake_data}", f"--model_dir={tmp_path / 'run'}", "--train_steps=1"]
  result = _train(base + args, timeout=120)
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "run" / "model.keras")


def test_mono_training_file_is_reported(tmp_path):
  import numpy as np
  import soundfile
  root = write_fake_mir1k(str(tmp_path / "data"), clips=["amy_1_01", "amy_1_02"])
  soundfile.write(os.path.join(root, "Wavfile", "amy_1_02.wav"), np.full(8000, 0.1, np.float32), 16000)
  result = _train([f"--data_dir={root}", f"--model_dir={tmp_path / 'run'}", "--train_steps=1"] + TINY)
  assert result.returncode == 2
  assert "amy_1_02.wav: expected a stereo file" in result.stderr.strip().splitlines()[-1]
  assert "Traceback" not in result.stderr


def test_mirrored_strategy_on_two_cpu_devices(fake_data, tmp_path):
  script = f"""
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tf_drnn.train import TrainOptions, train
result = train(TrainOptions(data_dir={fake_data!r}, model_dir={str(tmp_path / 'run')!r}, strategy="mirrored",
                            architecture="drnn2", hidden_units=8, batch_size=4, sequence_length=8, train_steps=2,
                            warmup_steps=1, circular_shift=4000))
print("replicas", tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")]).num_replicas_in_sync)
"""
  result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "replicas 2" in result.stdout
  assert os.path.isfile(tmp_path / "run" / "model.keras")


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _run_two_workers(args):
  """Runs two tf-drnn-train workers on free loopback ports; returns [(returncode, stderr)]."""
  cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
  workers = [subprocess.Popen([sys.executable, "-m", "tf_drnn.train"] + args, cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "TF_CONFIG": json.dumps(
                                  {"cluster": cluster, "task": {"type": "worker", "index": i}})})
             for i in range(2)]
  return [(w.returncode, out_err[1]) for w, out_err in zip(workers, [w.communicate(timeout=600) for w in workers])]


def test_multi_worker_strategy_two_processes(fake_data, tmp_path):
  model_dir = str(tmp_path / "run")
  args = [f"--data_dir={fake_data}", f"--model_dir={model_dir}", "--train_steps=2", "--strategy=multi_worker",
          "--batch_size=4"] + [a for a in TINY if not a.startswith("--batch_size")]
  for _ in range(3):  # The free ports are released before the workers bind: another process may take one.
    results = _run_two_workers(args)
    if not any(code != 0 and "Address already in use" in err for code, err in results):
      break
  for code, err in results:
    assert code == 0, err[-3000:]
  assert os.path.isfile(os.path.join(model_dir, "model.keras"))  # written by the chief (worker 0) only
  assert not os.path.exists(os.path.join(model_dir, ".worker-1", "model.keras"))


def test_init_model_fine_tunes_from_a_trained_model(fake_data, tmp_path):
  first_dir = str(tmp_path / "first")
  first = _train([f"--data_dir={fake_data}", f"--model_dir={first_dir}", "--train_steps=2"] + TINY)
  assert first.returncode == 0, first.stderr[-2000:]
  second_dir = str(tmp_path / "second")
  second = _train([f"--data_dir={fake_data}", f"--model_dir={second_dir}", "--train_steps=2",
                   f"--init_model={first_dir}"] + TINY)
  assert second.returncode == 0, second.stderr[-2000:]
  assert f"step 0 ({first_dir}): dev vocal GNSDR" in second.stdout  # the start is scored and kept
  assert json.load(open(os.path.join(second_dir, "best.json")))["step"] in (0, 2)
  wrong = _train([f"--data_dir={fake_data}", f"--model_dir={tmp_path / 'third'}", "--train_steps=2",
                  f"--init_model={first_dir}"] + TINY + ["--hidden_units=4"])
  assert wrong.returncode == 2
  assert wrong.stderr.strip().splitlines()[-1].startswith(f"error: {first_dir}: its structure")


def test_reproduce_trains_a_config_and_reads_the_trainers_record(fake_data, tmp_path):
  """tf_drnn.reproduce runs tf_drnn.train and takes steps, time and hardware from its training.json."""
  from tf_drnn import reproduce
  flagfile = tmp_path / "tiny.flags"
  flagfile.write_text("\n".join(TINY) + "\n")
  runs = tmp_path / "runs"
  assert reproduce.run_config(str(flagfile), fake_data, str(runs), 2, evaluate=False) is None
  training = reproduce._read_training(str(runs / "tiny"), 2)
  assert training["trainer"] == "keras-tensorflow" and training["steps"] == 2 and training["complete"]


def test_bundled_flagfiles_give_the_bundled_models_options():
  """configs/bundled.flags (stage 2, reading stage 1's flagfile) parses to what the shipped model records."""
  code = ("import json, dataclasses; from absl import flags; from tf_drnn import train; train.define_flags(); "
          "flags.FLAGS(['x', '--flagfile=configs/bundled.flags', '--data_dir=d', '--model_dir=m']); "
          "print(json.dumps(dataclasses.asdict(train.options_from_flags())))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  parsed = json.loads(result.stdout.strip().splitlines()[-1])
  shipped = json.load(open(os.path.join(REPO, "tf_drnn", "pretrained", "drnn2.json")))
  assert parsed["init_model"] == "runs/bundled_stage1" and parsed["train_steps"] == shipped["training"]["steps"]
  differing = {key for key, value in shipped["options"].items()
               if key in parsed and json.loads(json.dumps(parsed[key])) != value}
  # Where and how long it ran (a time budget on the GPU), and how often the JAX trainer saved its state.
  assert differing == {"data_dir", "model_dir", "init_model", "train_steps", "eval_every"}
