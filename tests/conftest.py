"""Shared fixtures: tiny models and signals made by the tests; real MIR-1K only where present."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def run_command(module, *args):
  """A console command (a module with define_flags and main) run in this process as its script
  runs it (tf_drnn.cli_util.run_in_process) -> an object with returncode, stdout and stderr."""
  import contextlib
  import importlib
  import io
  import types
  from tf_drnn import cli_util
  module = importlib.import_module(module) if isinstance(module, str) else module
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli_util.run_in_process(module.define_flags, module.main, [str(a) for a in args],
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
