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


# --- training never starts over on top of a trained model; impossible flags stop before any work ----

def _tiny_options(data_dir, model_dir, **changes):
  from tf_drnn.train import TrainOptions
  return TrainOptions(**{**dict(data_dir=data_dir, model_dir=str(model_dir), architecture="drnn2", num_layers=2,
                                hidden_units=8, batch_size=2, sequence_length=8, warmup_steps=1, eval_every=1,
                                train_steps=2, circular_shift=4000, jit_compile=False), **changes})


def _snapshot(directory):
  """{relative path: bytes} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      files[os.path.relpath(path, directory)] = open(path, "rb").read()
  return files


@pytest.fixture(scope="module")
def trained_run(fake_data, tmp_path_factory):
  """A tiny run trained in this process for 2 steps: model.keras, best.json, training.json,
  options.json and checkpoints ckpt-1, ckpt-2."""
  from tf_drnn.train import train
  model_dir = str(tmp_path_factory.mktemp("trained") / "run")
  train(_tiny_options(fake_data, model_dir))
  assert sorted(f for f in os.listdir(os.path.join(model_dir, "checkpoints")) if f.endswith(".index")) == [
      "ckpt-1.index", "ckpt-2.index"]
  return model_dir


@pytest.fixture
def run_copy(trained_run, tmp_path):
  import shutil
  return shutil.copytree(trained_run, str(tmp_path / "run"))


@pytest.fixture
def cli(monkeypatch):
  """Defines tf-drnn-train-jax's flags (tf-drnn-train's and three more) for in-process command lines;
  parse(*args) returns what absl leaves over (the argv main gets). The flags are removed afterwards."""
  import logging
  from absl import flags
  from tf_drnn import train_jax
  monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)
  before = set(flags.FLAGS)
  train_jax.define_flags()
  yield lambda *args: flags.FLAGS(["tf-drnn-train", *args])
  flags.FLAGS.unparse_flags()
  for name in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, name)


def _exit_line(main, argv, capsys):
  """Runs main(argv); returns (exit code, the lines it wrote to stderr)."""
  with pytest.raises(SystemExit) as stop:
    main(argv)
  return stop.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("tamper,problem", [
    ("garbage_list", "checkpoints/checkpoint: not a TensorFlow checkpoint list"),
    ("no_checkpoints", "holds an earlier run (model.keras, best.json, training.json) but no checkpoints/"),
    ("no_options", "holds an earlier run but no options.json"),
    ("all_corrupt", "no intact checkpoint to resume from (none of ckpt-1, ckpt-2 can be read)"),
])
def test_a_run_that_cannot_be_resumed_is_refused_and_left_as_it_was(fake_data, run_copy, cli, capsys, tamper,
                                                                     problem):
  import shutil
  from tf_drnn import train
  checkpoints = os.path.join(run_copy, "checkpoints")
  if tamper == "garbage_list":
    open(os.path.join(checkpoints, "checkpoint"), "w").write("garbage\n")
  elif tamper == "no_checkpoints":
    shutil.rmtree(checkpoints)
  elif tamper == "no_options":
    os.remove(os.path.join(run_copy, "options.json"))
  else:
    for name in ("ckpt-1.index", "ckpt-2.index"):
      open(os.path.join(checkpoints, name), "r+b").write(b"\0" * 64)
  before = _snapshot(run_copy)
  argv = cli(f"--data_dir={fake_data}", f"--model_dir={run_copy}", "--train_steps=4", *TINY, "--num_layers=2",
             "--eval_every=1")
  code, lines = _exit_line(train.main, argv, capsys)
  assert code == 2 and len(lines) == 1, lines
  assert lines[0].startswith("error: ") and problem in lines[0] and "--restart" in lines[0] and "--model_dir" in lines[0]
  assert _snapshot(run_copy) == before  # model.keras, best.json, training.json: byte for byte


def test_restart_trains_over_an_earlier_run_from_step_0(fake_data, run_copy, capsys):
  import shutil
  from tf_drnn.train import train
  shutil.rmtree(os.path.join(run_copy, "checkpoints"))
  train(_tiny_options(fake_data, run_copy, train_steps=1, restart=True))
  assert "Resuming" not in capsys.readouterr().out
  assert json.load(open(os.path.join(run_copy, "best.json")))["step"] == 1
  assert json.load(open(os.path.join(run_copy, "training.json")))["steps"] == 1
  assert sorted(os.listdir(os.path.join(run_copy, "checkpoints"))) == [
      "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]


@pytest.mark.parametrize("part,damage", [("data-00000-of-00001", "truncate"), ("index", "garble")])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(fake_data, run_copy, capsys, caplog, part,
                                                                    damage):
  from tf_drnn.train import train
  path = os.path.join(run_copy, "checkpoints", f"ckpt-2.{part}")
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2] if damage == "truncate" else data[:8] + b"\xff" * (len(data) - 8))
  with caplog.at_level("WARNING", logger="tf_drnn.train"):
    train(_tiny_options(fake_data, run_copy, train_steps=3))
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "tf_drnn.train"]
  assert len(warnings) == 1 and "\n" not in warnings[0], warnings
  assert f"ckpt-2.{part}" in warnings[0] and warnings[0].endswith("falling back to the previous one, ckpt-1")
  assert "Resuming from checkpoint at step 1" in capsys.readouterr().out
  assert json.load(open(os.path.join(run_copy, "training.json")))["steps"] == 3


def test_options_json_is_written_with_the_first_checkpoint_only(fake_data, tmp_path):
  from tf_drnn.errors import UserError
  from tf_drnn.train import checked_tracks, train
  model_dir = tmp_path / "run"
  with pytest.raises(UserError, match="no such model file"):  # fails before its first step
    train(_tiny_options(fake_data, model_dir, init_model=str(tmp_path / "missing.keras")))
  assert os.listdir(model_dir) == []
  # An options.json left by such a run (before it was written late) does not block other flags.
  (model_dir / "options.json").write_text(json.dumps({"architecture": "dnn", "hidden_units": 4}))
  train_tracks, _ = checked_tracks(_tiny_options(fake_data, model_dir, hidden_units=16))
  assert len(train_tracks) == 3


def test_the_jax_trainer_refuses_a_run_it_cannot_resume(fake_data, run_copy):
  """A tf-drnn-train run (checkpoints, no state.npz) cannot be resumed by tf-drnn-train-jax."""
  from tf_drnn.errors import UserError
  from tf_drnn.train import check_model_dir
  with pytest.raises(UserError, match=r"holds an earlier run \(model.keras, best.json, training.json, checkpoints/\) "
                                      r"but no state.npz, which tf-drnn-train-jax resumes from; .*--restart"):
    check_model_dir(_tiny_options(fake_data, run_copy), trainer="jax")
  assert check_model_dir(_tiny_options(fake_data, run_copy), trainer="tensorflow") == "resume"


@pytest.mark.parametrize("changes,flag", [
    ({"batch_size": 0}, "batch_size=0"), ({"hidden_units": 0}, "hidden_units=0"), ({"num_layers": 0}, "num_layers=0"),
    ({"context": 2}, "context=2"), ({"dropout": 1.5}, "dropout=1.5"), ({"dropout": 1.0}, "dropout=1.0"),
    ({"sequence_length": 0}, "sequence_length=0"), ({"eval_every": 0}, "eval_every=0"),
    ({"train_steps": -5}, "train_steps=-5"), ({"train_steps": 0}, "train_steps=0"),
    ({"learning_rate": 0.0}, "learning_rate=0.0"), ({"learning_rate": float("nan")}, "learning_rate=nan"),
    ({"warmup_steps": -1}, "warmup_steps=-1"), ({"clip_norm": -1.0}, "clip_norm=-1.0"),
    ({"remix_probability": 1.5}, "remix_probability=1.5"), ({"circular_shift": -1}, "circular_shift=-1"),
    ({"speed_factors": (1.1, 0.0)}, "speed_factors=1.1,0.0"), ({"level_range_db": -3.0}, "level_range_db=-3.0"),
    ({"discriminative_weight": 1.0}, "discriminative_weight=1.0"), ({"seed": -1}, "seed=-1"),
    ({"architecture": "drnn3", "num_layers": 2}, "num_layers=2"), ({"architecture": "lstm"}, "architecture=lstm"),
])
def test_impossible_options_name_their_flag(tmp_path, changes, flag):
  from tf_drnn.errors import UserError
  from tf_drnn.train import check_options
  check_options(_tiny_options("data", tmp_path / "run"))  # the tiny options themselves are fine
  with pytest.raises(UserError) as error:
    check_options(_tiny_options("data", tmp_path / "run", **changes))
  assert str(error.value).startswith(f"--{flag}: ") and "\n" not in str(error.value)


def test_a_file_is_no_model_dir(tmp_path):
  from tf_drnn.errors import UserError
  from tf_drnn.train import check_options
  (tmp_path / "file").write_text("x")
  with pytest.raises(UserError, match="is a file, not a folder"):
    check_options(_tiny_options("data", tmp_path / "file"))
  with pytest.raises(UserError, match=f"{tmp_path / 'file'} is a file, not a folder"):
    check_options(_tiny_options("data", tmp_path / "file" / "run"))


def test_restart_refuses_to_discard_its_own_init_model(tmp_path):
  from tf_drnn.errors import UserError
  from tf_drnn.train import check_options
  with pytest.raises(UserError, match="--init_model=.*is the model that --restart discards"):
    check_options(_tiny_options("data", tmp_path / "run", restart=True, init_model=str(tmp_path / "run")))


@pytest.mark.parametrize("trainer", ["tf_drnn.train", "tf_drnn.train_jax"])
@pytest.mark.parametrize("args,message", [
    (["--train_steps=-5"], "error: --train_steps=-5: must be a whole number of at least 1"),
    (["--batch_size=0"], "error: --batch_size=0: must be a whole number of at least 1"),
    (["--random_shift", "false"], "error: unexpected argument 'false': this command takes flags only"),
])
def test_command_line_errors_are_one_line_before_tensorflow_loads(cli, capsys, monkeypatch, tmp_path, trainer,
                                                                   args, message):
  import importlib
  from tf_drnn import cli_util
  monkeypatch.setattr(cli_util, "import_tensorflow_quietly", lambda: pytest.fail("TensorFlow loaded first"))
  argv = cli("--data_dir=/nonexistent/mir1k", f"--model_dir={tmp_path / 'run'}", *args)
  code, lines = _exit_line(importlib.import_module(trainer).main, argv, capsys)
  assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines
  assert not os.path.exists(tmp_path / "run")


def test_jax_only_flags_are_checked(tmp_path):
  from tf_drnn.errors import UserError
  from tf_drnn.train_jax import train_jax
  with pytest.raises(UserError, match=r"^--max_seconds=-1: must be at least 0"):
    train_jax(_tiny_options("data", tmp_path / "run"), max_seconds=-1)
