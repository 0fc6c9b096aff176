"""Shared fixtures: tiny models and signals made by the tests; real MIR-1K only where present."""
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread per process for BLAS and TensorFlow's ops: the models here are tiny, and the suite shares
# two cores with its background jobs, where idle worker threads spinning for work cost more than they give.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np
import pytest

from tf_drnn.synth import sung_like_mixture  # noqa: F401  (re-exported for the tests)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIR1K_DIR = os.path.join(REPO, "..", "shared", "MIR-1K")


@pytest.fixture
def mir1k_dir():
  """The real MIR-1K clips in ../shared/MIR-1K; skips when that folder is absent."""
  if not os.path.isdir(os.path.join(MIR1K_DIR, "Wavfile")):
    pytest.skip("needs real audio: ../shared/MIR-1K/Wavfile is not present on this machine")
  return MIR1K_DIR


@pytest.fixture(scope="session")
def tiny_model():
  """A tiny DRNN-2 (context 3, 3 x 16 units) with feature statistics set; untrained."""
  from tf_drnn.model import ModelParts, build_model
  model = build_model("drnn2", context=3, num_layers=3, hidden_units=16)
  rng = np.random.default_rng(0)
  ModelParts(model).features.set_statistics(np.abs(rng.standard_normal((200, 513))).astype(np.float32))
  return model


def run_in_process(define_flags, main, args, import_tensorflow=True, usage=None, program="command"):
  """Runs a command as its console script would, in this process: defines its flags, parses `args`
  with the one-line errors (tf_drnn.cli_util.parse_flags), runs it through cli_util.command_main,
  then removes the flags. Returns the exit code."""
  import signal
  from absl import flags
  from tf_drnn import cli_util
  before = set(flags.FLAGS)
  define_flags()
  try:
    argv = cli_util.parse_flags([program, *args])
    cli_util.command_main(main, import_tensorflow, usage)(argv)
    return 0
  except SystemExit as stop:
    return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
  finally:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    flags.FLAGS.unparse_flags()
    for name in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, name)


def run_command(module, *args):
  """A console command (a module with define_flags and main) run in this process as its script
  runs it (run_in_process) -> an object with returncode, stdout and stderr."""
  import contextlib
  import importlib
  import io
  import types
  module = importlib.import_module(module) if isinstance(module, str) else module
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = run_in_process(module.define_flags, module.main, [str(a) for a in args],
                          usage=getattr(module, "USAGE", None), program=module.__name__)
  return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def write_fake_mir1k(root, clips=None, seconds=0.6, sample_rate=16000):
  """Writes stereo clips (left = accompaniment, right = voice) in MIR-1K's layout under root/Wavfile."""
  import soundfile
  clips = clips or ["abjones_1_01", "abjones_1_02", "amy_1_01", "amy_9_08", "Ani_1_01", "heycat_2_03"]
  os.makedirs(os.path.join(root, "Wavfile"), exist_ok=True)
  for i, name in enumerate(clips):
    vocals, accompaniment = sung_like_mixture(seconds, sample_rate, seed=i)
    soundfile.write(os.path.join(root, "Wavfile", name + ".wav"), np.stack([accompaniment, vocals], 1),
                    sample_rate, subtype="PCM_16")
  return root


# --- the garbage collector ---------------------------------------------------------------------------
# TensorFlow and Keras leave millions of long-lived objects, and each full collection walks all of them
# (about half a second on two cores, dozens of times a session). What is still alive when a test module
# ends (imports, session fixtures) is collected once and frozen: later full collections walk only what
# the next modules make.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
  yield  # the module's fixtures are finalized by now
  if nextitem is None or nextitem.module is not item.module:
    gc.collect()
    gc.freeze()


# --- slow commands in other processes, started when the session starts ------------------------------
# A few tests must run a command in a process of its own (another Keras backend, two training
# workers, a fresh interpreter's stderr). Each such test is marked @pytest.mark.background(NAME) and
# NAME's builder is registered with @background_job(NAME): the processes of the selected tests start
# as soon as collection ends and run beside the rest of the suite; the test waits for its own.

_JOB_BUILDERS = {}
_JOBS = {}


def background_job(name):
  """Registers builder(work_dir) -> (python argv, env changes; None unsets a variable) as the
  command of background job `name`."""
  def register(builder):
    _JOB_BUILDERS[name] = builder
    return builder
  return register


def pytest_configure(config):
  config.addinivalue_line("markers", "background(name): the test checks background job `name` (conftest)")


def pytest_collection_modifyitems(items):
  """Tests that wait for a background job run last, when their job has had the whole suite's time."""
  items.sort(key=lambda item: item.get_closest_marker("background") is not None)


def pytest_collection_finish(session):
  import subprocess
  import sys
  import tempfile
  names = {m.args[0] for item in session.items for m in item.iter_markers("background")}
  for name in sorted(names):
    work = tempfile.mkdtemp(prefix=f"tf_drnn_{name}_")
    argv, env = _JOB_BUILDERS[name](work)
    out, err = open(os.path.join(work, "stdout"), "w"), open(os.path.join(work, "stderr"), "w")
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}  # None: unset it
    # Niced: they take the cores the suite leaves idle instead of slowing it down.
    process = subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=out, stderr=err, env=env,
                               preexec_fn=lambda: os.nice(10))
    _JOBS[name] = (process, work, out, err)


def pytest_sessionfinish(session):
  import shutil
  for process, work, out, err in _JOBS.values():
    if process.poll() is None:
      process.kill()
    out.close()
    err.close()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def background(request):
  """The finished background job of this test's @pytest.mark.background(NAME) (see finished_job)."""
  return finished_job(request.node.get_closest_marker("background").args[0])


def finished_job(name):
  """Background job `name`, waited for: an object with returncode, stdout, stderr and work (its folder)."""
  import types
  process, work, out, err = _JOBS[name]
  process.wait(timeout=900)
  out.flush()
  err.flush()
  read = lambda file: open(os.path.join(work, file)).read()
  return types.SimpleNamespace(returncode=process.returncode, stdout=read("stdout"), stderr=read("stderr"),
                               work=work)


# Prepended to a `python -c` program: importing TensorFlow, Keras or librosa fails, as where they are not
# installed (the runtime install: NumPy, soundfile, soxr, LiteRT).
IMPORT_BLOCKER = ("import sys\n"
                  "class Blocked:\n"
                  "  def find_spec(self, name, path=None, target=None):\n"
                  "    if name.split('.')[0] in ('tensorflow', 'keras', 'librosa'):\n"
                  "      raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
                  "sys.meta_path.insert(0, Blocked())\n")
