"""Training (tf_drnn.train): one Keras trainer on both backends. It writes a model, resumes, keeps
the best dev model, is deterministic for a seed, never trains over a run it cannot resume, refuses
impossible flags before TensorFlow loads, and runs distributed and under JAX."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, background_job, write_fake_mir1k

TINY = ["--architecture=drnn2", "--num_layers=2", "--hidden_units=8", "--batch_size=2", "--sequence_length=8",
        "--warmup_steps=1", "--eval_every=2", "--circular_shift=4000", "--jit_compile=false"]


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
  return write_fake_mir1k(str(tmp_path_factory.mktemp("mir1k")))


def _tiny_options(data_dir, model_dir, **changes):
  from tf_drnn.train import TrainOptions
  return TrainOptions(**{**dict(data_dir=data_dir, model_dir=str(model_dir), architecture="drnn2", num_layers=2,
                                hidden_units=8, batch_size=2, sequence_length=8, warmup_steps=1, eval_every=2,
                                train_steps=2, circular_shift=4000, jit_compile=False), **changes})


def _snapshot(directory):
  """{relative path: bytes} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      files[os.path.relpath(path, directory)] = open(path, "rb").read()
  return files


def _state(model_dir, name="state.npz"):
  with np.load(os.path.join(model_dir, name)) as state:
    return {key: state[key] for key in state.files}


@pytest.fixture(scope="module")
def trained_run(fake_data, tmp_path_factory):
  """A tiny run trained in this process for 2 steps (eval_every 1): model.keras, best.json,
  training.json, options.json, state.npz (step 2) and state.previous.npz (step 1)."""
  from tf_drnn.train import train
  model_dir = str(tmp_path_factory.mktemp("trained") / "run")
  train(_tiny_options(fake_data, model_dir, eval_every=1))
  return model_dir


@pytest.fixture
def run_copy(trained_run, tmp_path):
  return shutil.copytree(trained_run, str(tmp_path / "run"))


@pytest.fixture
def cli(monkeypatch):
  """Defines tf-drnn-train's flags for in-process command lines; parse(*args) returns what absl
  leaves over (the argv main gets). The flags are removed afterwards."""
  import logging
  from absl import flags
  from tf_drnn import train
  monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)
  before = set(flags.FLAGS)
  train.define_flags()
  yield lambda *args: flags.FLAGS(["tf-drnn-train", *args])
  flags.FLAGS.unparse_flags()
  for name in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, name)


def _exit_line(main, argv, capsys):
  """Runs main(argv); returns (exit code, the lines it wrote to stderr)."""
  with pytest.raises(SystemExit) as stop:
    main(argv)
  return stop.value.code, capsys.readouterr().err.strip().splitlines()


# --- a run: model, records, state; resume; the best dev model; determinism ------------------------

def test_a_run_writes_its_model_and_records_then_resumes(trained_run, fake_data, tmp_path, capsys):
  from tf_drnn.models import load_model
  from tf_drnn.train import train
  assert sorted(os.listdir(trained_run)) == ["best.json", "logs", "model.keras", "options.json", "state.npz",
                                             "state.previous.npz", "training.json"]
  best = json.load(open(os.path.join(trained_run, "best.json")))
  assert best["step"] in (1, 2) and "GNSDR" in best["dev"]["collections"]["mir1k"]["vocals"]
  training = json.load(open(os.path.join(trained_run, "training.json")))
  assert (training["trainer"], training["steps"], training["train_steps"], training["complete"]) == (
      "keras-tensorflow", 2, 2, True)
  assert training["training_seconds"] > 0 and training["hardware"].startswith(("CPU", "1 GPU"))
  assert (int(_state(trained_run)["step"]), int(_state(trained_run, "state.previous.npz")["step"])) == (2, 1)
  assert load_model(trained_run)(np.ones((1, 5, 513), np.float32)).shape == (1, 5, 2, 513)
  model_dir = shutil.copytree(trained_run, str(tmp_path / "run"))
  result = train(_tiny_options(fake_data, model_dir, train_steps=4, eval_every=2))
  assert "Resuming from step 2" in capsys.readouterr().out
  assert int(_state(model_dir)["step"]) == 4 and int(_state(model_dir, "state.previous.npz")["step"]) == 2
  resumed = json.load(open(os.path.join(model_dir, "training.json")))
  assert (resumed["steps"], resumed["train_steps"], resumed["complete"]) == (4, 4, True)
  assert resumed["training_seconds"] > training["training_seconds"]  # the first session's time is kept
  # model.keras is the best dev model of all steps: its score is the best the state records.
  best = json.load(open(os.path.join(model_dir, "best.json")))
  assert best["dev"]["score"] == pytest.approx(float(_state(model_dir)["best_dev"]))
  assert result["score"] == pytest.approx(best["dev"]["score"])


def test_seeded_training_is_deterministic(fake_data, tmp_path):
  from tf_drnn.train import train
  options = dict(train_steps=2, eval_every=2, random_shift=True, remix_probability=0.5, voice_db_range=(-5, 5))
  for name in ("a", "b"):
    train(_tiny_options(fake_data, tmp_path / name, **options))
  train(_tiny_options(fake_data, tmp_path / "c", seed=1, **options))
  a, b, c = (_state(tmp_path / name) for name in "abc")
  assert a.keys() == b.keys()
  for key in set(a) - {"seconds"}:  # every weight and optimizer slot, the step and the dev score
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  assert not np.array_equal(a["model_2"], c["model_2"])  # another seed, other weights


def test_max_seconds_stops_with_a_state_to_resume(fake_data, tmp_path, capsys):
  from tf_drnn.train import train
  train(_tiny_options(fake_data, tmp_path / "run", train_steps=50, eval_every=10, max_seconds=1e-6))
  assert "stopping at step 1: --max_seconds=1e-06 reached" in capsys.readouterr().out
  training = json.load(open(tmp_path / "run" / "training.json"))
  assert (training["steps"], training["complete"]) == (1, False) and int(_state(tmp_path / "run")["step"]) == 1


def test_init_model_fine_tunes_from_a_trained_model(trained_run, fake_data, tmp_path, capsys):
  from tf_drnn.errors import UserError
  from tf_drnn.train import train
  model_dir = tmp_path / "second"
  train(_tiny_options(fake_data, model_dir, init_model=trained_run))
  out = capsys.readouterr().out
  assert f"Starting from the weights of {trained_run}" in out
  assert f"step 0 ({trained_run}): dev score" in out  # the start is scored and kept until beaten
  starting = json.load(open(os.path.join(trained_run, "best.json")))
  best = json.load(open(model_dir / "best.json"))
  assert best["dev"]["score"] >= starting["dev"]["score"] - 1e-9
  with pytest.raises(UserError, match=f"^{trained_run}: its structure"):
    train(_tiny_options(fake_data, tmp_path / "third", init_model=trained_run, hidden_units=4))


def test_zero_steps_score_the_init_model_and_keep_it(trained_run, fake_data, tmp_path):
  """--train_steps=0 --init_model=M: M scored on the dev sets as step 0 and kept, e.g. an averaged model."""
  from tf_drnn.errors import UserError
  from tf_drnn.models import load_model
  from tf_drnn.train import train
  model_dir = tmp_path / "scored"
  result = train(_tiny_options(fake_data, model_dir, init_model=trained_run, train_steps=0))
  best = json.load(open(model_dir / "best.json"))
  assert best["step"] == 0 and best["dev"]["score"] == pytest.approx(result["score"])
  for kept, start in zip(load_model(str(model_dir)).get_weights(), load_model(trained_run).get_weights()):
    np.testing.assert_array_equal(kept, start)
  with pytest.raises(UserError, match="--train_steps=0: must be a whole number of at least 1"):
    train(_tiny_options(fake_data, tmp_path / "none", train_steps=0))


def test_the_example_generator_ends_with_training_and_the_data_has_no_autotuning_thread(tmp_path):
  """After fit, the endless example generator is stopped and the tf.data pipeline runs no autotuning
  thread: an iterator freed later by the garbage collector would wait for either, with the GIL held
  (stalls of 5-40 s were seen)."""
  import threading
  from tf_drnn.train import _Backend, until_set
  stop = threading.Event()
  batches = until_set(iter(range(10)), stop)
  assert [next(batches), next(batches)] == [0, 1]
  stop.set()
  assert list(batches) == []
  options = _tiny_options("data", tmp_path / "run")
  zeros = np.zeros((2, 8, 513), np.float32), np.zeros((2, 8, 2, 513), np.float32)
  dataset = _Backend(options).dataset(iter([zeros]), options, 513)
  assert dataset.options().autotune.enabled is False
  assert [mixture.shape for mixture, _ in dataset] == [(2, 8, 513)]


def test_speed_factors_add_clips(fake_data, tmp_path, caplog):
  from tf_drnn.train import train
  with caplog.at_level("INFO", logger="tf_drnn.train"):
    train(_tiny_options(fake_data, tmp_path / "run", train_steps=1, speed_factors=(0.9, 1.1)))
  # 3 training clips in the fake data (abjones_1_01/02, amy_1_01), plus one copy per factor.
  assert "speed perturbation [0.9, 1.1]: 9 training clips" in caplog.text


# --- command lines -----------------------------------------------------------------------------------

def test_flagfile_works(fake_data, tmp_path, cli):
  from tf_drnn.train import checked_options
  flagfile = tmp_path / "run.flags"
  flagfile.write_text("\n".join([f"--data_dir={fake_data}", f"--model_dir={tmp_path / 'run'}",
                                 "--train_steps=1", "--architecture=dnn", "--speed_factors=0.9,1.1"] + TINY[1:]))
  cli(f"--flagfile={flagfile}")
  options = checked_options()
  assert (options.architecture, options.speed_factors, options.train_steps, options.hidden_units) == (
      "dnn", (0.9, 1.1), 1, 8)


@pytest.mark.parametrize("flagfile,name,start,differing", [
    # differing: the options the shipped run set on its command line (where it ran), not in the flagfile.
    ("produced_soup2", "drnn2", "runs/produced_soup2.keras", {"data_dir", "model_dir"}),
    ("produced_compact_soup2", "drnn2_compact", "runs/produced_compact_soup2.keras", {"data_dir", "model_dir"}),
])
def test_bundled_flagfiles_give_the_bundled_models_options(cli, monkeypatch, flagfile, name, start, differing):
  """configs/<flagfile>.flags (the last stage, reading the earlier stages' flagfiles) parses to what the
  shipped model records."""
  import dataclasses
  from tf_drnn.train import options_from_flags
  monkeypatch.chdir(REPO)
  cli(f"--flagfile=configs/{flagfile}.flags", "--data_dir=d", "--model_dir=m")
  parsed = json.loads(json.dumps(dataclasses.asdict(options_from_flags())))
  shipped = json.load(open(os.path.join(REPO, "tf_drnn", "pretrained", name + ".json")))
  assert parsed["init_model"] == start and parsed["train_steps"] == shipped["training"]["train_steps"]
  assert {key for key, value in shipped["options"].items() if key in parsed and parsed[key] != value} == differing


@pytest.mark.parametrize("args,message", [
    (["--train_steps=-5"], "error: --train_steps=-5: must be a whole number of at least 1"),
    (["--batch_size=0"], "error: --batch_size=0: must be a whole number of at least 1"),
    (["--random_shift", "false"], "error: unexpected argument 'false': this command takes flags only"),
    (["--max_seconds=-1"], "error: --max_seconds=-1.0: must be a number of at least 0"),
])
def test_command_line_errors_are_one_line_before_tensorflow_loads(cli, capsys, monkeypatch, tmp_path, args, message):
  from tf_drnn import cli_util, train
  monkeypatch.setattr(cli_util, "import_tensorflow_quietly", lambda: pytest.fail("TensorFlow loaded first"))
  monkeypatch.setattr(cli_util, "install_sigterm_handler", lambda: None)  # Not this test's subject.
  argv = cli("--data_dir=/nonexistent/mir1k", f"--model_dir={tmp_path / 'run'}", *args)
  # What tf-drnn-train runs after parsing the flags (run_app): the stray-argument check, then main.
  code, lines = _exit_line(cli_util.command_main(train.main, import_tensorflow=False), argv, capsys)
  assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("data,message", [
    ("/nonexistent/mir1k", "error: /nonexistent/mir1k: data directory does not exist"),
    ("mono", "amy_1_02.wav: expected a stereo file"),
])
def test_bad_data_is_one_clear_line(tmp_path, cli, capsys, data, message):
  import soundfile
  from tf_drnn import train
  if data == "mono":
    data = write_fake_mir1k(str(tmp_path / "data"), clips=["amy_1_01", "amy_1_02"])
    soundfile.write(os.path.join(data, "Wavfile", "amy_1_02.wav"), np.full(8000, 0.1, np.float32), 16000)
  code, lines = _exit_line(train.main, cli(f"--data_dir={data}", f"--model_dir={tmp_path / 'run'}", *TINY), capsys)
  assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
  assert not os.path.exists(tmp_path / "run" / "model.keras")


# --- training never starts over on top of a trained model; impossible flags stop before any work ----

@pytest.mark.parametrize("tamper,problem", [
    ("no_state", "holds an earlier run (model.keras, best.json, training.json) but no state.npz"),
    ("old_checkpoints", "holds an earlier run (model.keras, best.json, training.json, checkpoints/) but no state.npz"),
    ("no_options", "holds an earlier run but no options.json"),
    ("all_corrupt", "no intact state to resume from (none of state.npz, state.previous.npz can be read)"),
])
def test_a_run_that_cannot_be_resumed_is_refused_and_left_as_it_was(fake_data, run_copy, cli, capsys, tamper,
                                                                     problem):
  from tf_drnn import train
  if tamper in ("no_state", "old_checkpoints"):
    for name in ("state.npz", "state.previous.npz"):
      os.remove(os.path.join(run_copy, name))
    if tamper == "old_checkpoints":  # what the TensorFlow-only trainer of before left
      os.makedirs(os.path.join(run_copy, "checkpoints"))
      open(os.path.join(run_copy, "checkpoints", "checkpoint"), "w").write('model_checkpoint_path: "ckpt-2"\n')
  elif tamper == "no_options":
    os.remove(os.path.join(run_copy, "options.json"))
  else:
    for name in ("state.npz", "state.previous.npz"):
      open(os.path.join(run_copy, name), "r+b").write(b"\0" * 64)
  before = _snapshot(run_copy)
  argv = cli(f"--data_dir={fake_data}", f"--model_dir={run_copy}", "--train_steps=4", *TINY)
  code, lines = _exit_line(train.main, argv, capsys)
  assert code == 2 and len(lines) == 1, lines
  assert lines[0].startswith("error: ") and problem in lines[0]
  assert "--restart" in lines[0] and "--model_dir" in lines[0]
  assert _snapshot(run_copy) == before  # model.keras, best.json, training.json: byte for byte


def test_restart_trains_over_an_earlier_run_from_step_0(fake_data, run_copy, capsys):
  from tf_drnn.train import train
  os.remove(os.path.join(run_copy, "state.npz"))
  train(_tiny_options(fake_data, run_copy, train_steps=1, restart=True))
  assert "Resuming" not in capsys.readouterr().out
  assert json.load(open(os.path.join(run_copy, "best.json")))["step"] == 1
  assert json.load(open(os.path.join(run_copy, "training.json")))["steps"] == 1
  assert not os.path.exists(os.path.join(run_copy, "state.previous.npz")) and int(_state(run_copy)["step"]) == 1


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_a_corrupt_latest_state_falls_back_to_the_previous_one(fake_data, run_copy, capsys, caplog, damage):
  from tf_drnn.train import train
  path = os.path.join(run_copy, "state.npz")
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2] if damage == "truncate" else data[:8] + b"\xff" * (len(data) - 8))
  with caplog.at_level("WARNING", logger="tf_drnn.train"):
    train(_tiny_options(fake_data, run_copy, train_steps=3))
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "tf_drnn.train"]
  assert len(warnings) == 1 and "\n" not in warnings[0], warnings
  assert "state.npz cannot be read" in warnings[0] and warnings[0].endswith("falling back to state.previous.npz")
  assert "Resuming from step 1" in capsys.readouterr().out
  assert json.load(open(os.path.join(run_copy, "training.json")))["steps"] == 3


def test_falling_back_keeps_the_best_score_of_the_model_on_disk(run_copy):
  """state.previous.npz knows the best score of its own step; the model.keras kept after it (its
  best.json) may be better, and a later, worse model must not replace it."""
  from tf_drnn.train import TrainingState, TrainOptions, compiled_model
  best_path = os.path.join(run_copy, "best.json")
  best = json.load(open(best_path))
  best["dev"]["score"] = 99.0
  open(best_path, "w").write(json.dumps(best))
  os.remove(os.path.join(run_copy, "state.npz"))
  options = TrainOptions(**{**json.load(open(os.path.join(run_copy, "options.json"))), "model_dir": run_copy})
  state = TrainingState(compiled_model(options), options)
  assert state.load() and state.step == 1 and state.best_dev == 99.0


def test_options_json_is_written_with_the_first_state_only(fake_data, tmp_path):
  from tf_drnn.errors import UserError
  from tf_drnn.train import checked_tracks, train
  model_dir = tmp_path / "run"
  for flag in ("init_model", "teacher_model"):  # checked before any work: the model_dir is not even made
    with pytest.raises(UserError, match="missing.keras: no such model file"):
      train(_tiny_options(fake_data, model_dir, **{flag: str(tmp_path / "missing.keras")}))
    assert not model_dir.exists()
  model_dir.mkdir()
  # An options.json left by such a run (before it was written late) does not block other flags.
  (model_dir / "options.json").write_text(json.dumps({"architecture": "dnn", "hidden_units": 4}))
  train_tracks = checked_tracks(_tiny_options(fake_data, model_dir, hidden_units=16))[0].train
  assert len(train_tracks) == 3


@pytest.mark.parametrize("changes,flag", [
    ({"batch_size": 0}, "batch_size=0"), ({"hidden_units": 0}, "hidden_units=0"), ({"num_layers": 0}, "num_layers=0"),
    ({"context": 2}, "context=2"), ({"sequence_length": 0}, "sequence_length=0"), ({"eval_every": 0}, "eval_every=0"),
    ({"train_steps": -5}, "train_steps=-5"), ({"train_steps": 0}, "train_steps=0"),
    ({"learning_rate": 0.0}, "learning_rate=0.0"), ({"learning_rate": float("nan")}, "learning_rate=nan"),
    ({"warmup_steps": -1}, "warmup_steps=-1"), ({"clip_norm": -1.0}, "clip_norm=-1.0"),
    ({"remix_probability": 1.5}, "remix_probability=1.5"),
    ({"remix_across_collections": -0.5}, "remix_across_collections=-0.5"),
    ({"equalizer_db": -3.0}, "equalizer_db=-3.0"),
    ({"circular_shift": -1}, "circular_shift=-1"),
    ({"speed_factors": (1.1, 0.0)}, "speed_factors=1.1,0.0"), ({"max_seconds": -1.0}, "max_seconds=-1.0"),
    ({"scan_unroll": -2}, "scan_unroll=-2"),
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


def test_reproduce_reads_the_trainers_record_and_does_not_train_a_finished_run(trained_run, tmp_path, monkeypatch):
  """tools/reproduce.py takes steps, time and hardware from training.json; a run dir whose
  training.json shows the steps done (trained elsewhere, e.g. under JAX) is not trained again."""
  from tools import reproduce
  training = reproduce._read_training(trained_run, 2)
  assert training["trainer"] == "keras-tensorflow" and training["steps"] == 2 and training["complete"]
  assert reproduce._read_training(trained_run, 3) is None
  run = tmp_path / "runs" / "table2_dnn_mse"
  shutil.copytree(trained_run, run)
  monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"trained again: {a}"))
  flagfile = os.path.join(REPO, "configs", "paper", "table2_dnn_mse.flags")
  assert reproduce.run_config(flagfile, "unused", str(tmp_path / "runs"), 2, evaluate=False) is None


# --- other processes: two CPU devices, two workers, the JAX backend without TensorFlow ----------------

def _python(code, env=None, timeout=600):
  return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, **(env or {})})


def test_mirrored_strategy_trains_and_writes_the_model(fake_data, tmp_path):
  """--strategy=mirrored over this machine's devices (one CPU here: one replica; the two-worker test
  below has two)."""
  from tf_drnn.train import train
  train(_tiny_options(fake_data, tmp_path / "run", strategy="mirrored", batch_size=4))
  training = json.load(open(tmp_path / "run" / "training.json"))
  assert training["steps"] == 2 and os.path.isfile(tmp_path / "run" / "model.keras")


_MULTI_WORKER = """
import json, os, socket, subprocess, sys
def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports
args = json.loads(sys.argv[1])
for _ in range(3):  # The free ports are released before the workers bind: another process may take one.
  cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
  workers = [subprocess.Popen([sys.executable, "-m", "tf_drnn.train"] + args, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**os.environ, "TF_CONFIG": json.dumps(
                                  {"cluster": cluster, "task": {"type": "worker", "index": i}})})
             for i in range(2)]
  results = [(w.returncode, out_err[1]) for w, out_err in zip(workers, [w.communicate(timeout=600) for w in workers])]
  if not any(code != 0 and "Address already in use" in err for code, err in results):
    break
for i, (code, err) in enumerate(results):
  print(f"worker {i} exit {code}")
  sys.stderr.write(err[-3000:] if code else "")
sys.exit(max(code for code, _ in results))
"""


@background_job("multi_worker")
def _multi_worker_job(work):
  data = write_fake_mir1k(os.path.join(work, "mir1k"))
  args = [f"--data_dir={data}", f"--model_dir={os.path.join(work, 'run')}", "--train_steps=2",
          "--strategy=multi_worker", "--batch_size=4"] + [a for a in TINY if not a.startswith("--batch_size")]
  return ["-c", _MULTI_WORKER, json.dumps(args)], {}


@pytest.mark.background("multi_worker")
def test_multi_worker_strategy_two_processes(background):
  assert background.returncode == 0, background.stderr[-3000:]
  assert background.stdout.split("\n")[:2] == ["worker 0 exit 0", "worker 1 exit 0"]
  model_dir = os.path.join(background.work, "run")
  assert json.load(open(os.path.join(model_dir, "training.json")))["steps"] == 2  # written by the chief only
  assert os.path.isfile(os.path.join(model_dir, "model.keras"))
  assert not [name for name in os.listdir(model_dir) if name.startswith(".worker")]


_JAX_TRAINING = """
import json, sys
class NoTensorFlow:
  def find_spec(self, name, path=None, target=None):
    if name == "tensorflow" or name.startswith("tensorflow."):
      raise ImportError("TensorFlow is blocked in this test")
sys.meta_path.insert(0, NoTensorFlow())
from tf_drnn.train import TrainOptions, run_jax, train
data, model_dir = sys.argv[1:3]
sys.argv = ["tf-drnn-train-jax", f"--data_dir={data}", f"--model_dir={model_dir}", *json.loads(sys.argv[3]),
            "--scan_unroll=4", "--train_steps=2"]
try:
  run_jax()
except SystemExit as stop:
  assert not stop.code, stop.code
options = dict(data_dir=data, model_dir=model_dir, num_layers=2, hidden_units=8, batch_size=2,
               sequence_length=8, warmup_steps=1, eval_every=2, circular_shift=4000, scan_unroll=4)
train(TrainOptions(train_steps=4, **options))  # the same run with more steps: it resumes
"""


@background_job("jax_training")
def _jax_training_job(work):
  import importlib.util
  if importlib.util.find_spec("jax") is None:
    return ["-c", "pass"], {}
  data = write_fake_mir1k(os.path.join(work, "mir1k"))
  return ["-c", _JAX_TRAINING, data, os.path.join(work, "run"), json.dumps(TINY)], {
      "JAX_PLATFORMS": "cpu", "KERAS_BACKEND": None}


@pytest.mark.background("jax_training")
def test_the_jax_backend_trains_resumes_and_needs_no_tensorflow(background):
  """tf-drnn-train-jax where TensorFlow cannot be imported (a GPU image with JAX only): it trains,
  scores the dev clips, keeps the best model, resumes; TensorFlow then loads the model it wrote."""
  pytest.importorskip("jax", reason="needs JAX (pip install 'jax[cpu]', in the test extras)")
  assert background.returncode == 0, background.stderr[-3000:]
  assert "step 2: dev score" in background.stdout
  assert "Resuming from step 2" in background.stdout and "step 4: dev score" in background.stdout
  model_dir = os.path.join(background.work, "run")
  training = json.load(open(os.path.join(model_dir, "training.json")))
  assert (training["trainer"], training["steps"], training["complete"]) == ("keras-jax", 4, True)
  assert "Keras JAX backend" in training["hardware"]
  from tf_drnn.models import load_model
  model = load_model(model_dir)  # TensorFlow backend here
  assert model(np.ones((1, 5, 513), np.float32)).shape == (1, 5, 2, 513)


def test_distillation_mixes_the_teachers_estimates_into_the_targets(trained_run, fake_data, tmp_path):
  """--teacher_model: targets = (1 - w) sources + w teacher(mixture), on both backends' data paths."""
  import keras
  from tf_drnn.errors import UserError
  from tf_drnn.models import load_model
  from tf_drnn.train import compiled_model, load_teacher, train
  options = _tiny_options(fake_data, tmp_path / "run", teacher_model=trained_run, teacher_weight=0.25)
  model = compiled_model(options)
  distill = load_teacher(options, model)
  rng = np.random.default_rng(0)
  mixture = np.abs(rng.standard_normal((2, 8, 513))).astype(np.float32)
  targets = np.abs(rng.standard_normal((2, 8, 2, 513))).astype(np.float32)
  _, distilled = distill(mixture, targets)
  teacher = keras.ops.convert_to_numpy(load_model(trained_run)(mixture))
  np.testing.assert_allclose(keras.ops.convert_to_numpy(distilled), 0.75 * targets + 0.25 * teacher, rtol=1e-5,
                             atol=1e-5)
  train(options)  # through tf.data's map
  assert json.load(open(tmp_path / "run" / "training.json"))["steps"] == 2
  assert json.load(open(tmp_path / "run" / "options.json"))["teacher_model"] == trained_run
  with pytest.raises(UserError, match="--teacher_weight=1.5: must be in"):
    train(_tiny_options(fake_data, tmp_path / "bad", teacher_model=trained_run, teacher_weight=1.5))


def test_warm_start_into_other_stft_settings_measures_the_feature_statistics_again(trained_run, fake_data, tmp_path,
                                                                                  capsys):
  """The live recipe: the same weights' shapes at a 128-sample hop, asymmetric windows and no look-ahead."""
  from tf_drnn.model import ModelParts, describe
  from tf_drnn.models import load_model
  from tf_drnn.train import train
  model_dir = tmp_path / "live"
  train(_tiny_options(fake_data, model_dir, init_model=trained_run, hop_length=128, window="asymmetric_sine",
                      lookahead=0, train_steps=1))
  assert "(other STFT settings: feature statistics measured again)" in capsys.readouterr().out
  live, start = load_model(str(model_dir)), load_model(trained_run)
  assert describe(live)["audio_config"] == {"sample_rate": 16000, "n_fft": 1024, "hop_length": 128,
                                            "window": "asymmetric_sine"}
  assert describe(live)["lookahead"] == 0 and describe(start)["lookahead"] == 1
  assert not np.allclose(ModelParts(live).features.mean.numpy(), ModelParts(start).features.mean.numpy())


def test_warm_start_grows_recurrence_onto_more_layers_as_the_same_function(trained_run):
  """drnn2 -> srnn: hidden_1 becomes recurrent with a zero recurrent kernel; the grown model starts as the
  trained one (same outputs), and a model cannot lose a recurrence it was trained with."""
  from tf_drnn.model import ModelParts, build_model, describe
  from tf_drnn.errors import UserError
  from tf_drnn.models import load_model, warm_start
  start = load_model(trained_run)
  grown = build_model("srnn", num_layers=2, hidden_units=8)
  assert warm_start(grown, trained_run) is False
  assert describe(grown)["recurrent_layers"] == (1, 2)
  assert not np.any(ModelParts(grown).hidden[0].recurrent_kernel.numpy())
  magnitude = np.random.default_rng(0).uniform(0, 2, (2, 7, 513)).astype(np.float32)
  np.testing.assert_allclose(grown(magnitude).numpy(), start(magnitude).numpy(), rtol=1e-5, atol=1e-6)
  with pytest.raises(UserError, match="its structure"):
    warm_start(build_model("drnn1", num_layers=2, hidden_units=8), trained_run)


def test_warm_start_widens_the_hidden_layers_as_the_same_function(trained_run):
  """8 -> 12 units per layer: the trained weights in the leading corner, the new units' output weights
  zero, so the wider model starts as the trained one; their input weights are not zero, so they learn.
  A model cannot get narrower."""
  from tf_drnn.model import ModelParts, build_model
  from tf_drnn.errors import UserError
  from tf_drnn.models import load_model, warm_start
  start = load_model(trained_run)
  wide = build_model("drnn2", num_layers=2, hidden_units=12)
  assert warm_start(wide, trained_run) is False
  first, second = ModelParts(wide).hidden
  assert np.any(first.kernel.numpy()[:, 8:]) and not np.any(second.kernel.numpy()[8:])
  np.testing.assert_array_equal(first.kernel.numpy()[:, :8], ModelParts(start).hidden[0].kernel.numpy())
  magnitude = np.random.default_rng(0).uniform(0, 2, (2, 7, 513)).astype(np.float32)
  np.testing.assert_allclose(wide(magnitude).numpy(), start(magnitude).numpy(), rtol=1e-5, atol=1e-6)
  with pytest.raises(UserError, match="its structure"):
    warm_start(build_model("drnn2", num_layers=2, hidden_units=6), trained_run)


@pytest.mark.parametrize("changes,message", [
    ({"window": "asymmetric_sine"}, "--window=asymmetric_sine: the asymmetric sine window needs 0 < hop < n_fft / 2"),
    ({"hop_length": 128}, "--window=sine: the sine window reconstructs exactly only with hop = n_fft / 2"),
    ({"lookahead": 3}, "--lookahead=3: must be -1 (centred) or 0 ... 2 frames (--context=3)"),
])
def test_impossible_stft_and_lookahead_flags_are_one_line(tmp_path, changes, message):
  from tf_drnn.errors import UserError
  from tf_drnn.train_options import check_options
  with pytest.raises(UserError) as error:
    check_options(_tiny_options("data", tmp_path / "run", **changes))
  assert str(error.value).startswith(message), str(error.value)


def test_training_sequences_longer_than_the_default_unroll_are_unrolled(tmp_path):
  """--sequence_length above ReluRecurrent.max_unroll (128): the trained model unrolls its recurrence over
  the whole training sequence (XLA cannot differentiate the scan loop: tf2xla fails on its gradient)."""
  from tf_drnn.model import ReluRecurrent
  from tf_drnn.train import compiled_model
  model = compiled_model(_tiny_options("data", tmp_path / "run", sequence_length=300))
  recurrent = [layer for layer in model.layers if isinstance(layer, ReluRecurrent)]
  assert recurrent and all(layer.max_unroll >= 300 + 3 for layer in recurrent)
  assert ReluRecurrent.max_unroll == 128  # other models (a whole song at once) still run as a loop
