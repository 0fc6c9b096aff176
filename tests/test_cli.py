"""The console commands as a user meets them, in real processes: usage lines, one-line errors for
missing flags and stray arguments, bundled model names from the registry, a quiet Python API."""
import ast
import glob
import os
import subprocess
import sys

import pytest

from conftest import REPO, background_job, run_command


def _script(name, *args):
  """Runs an installed console script (its entry point, exactly as a user types it)."""
  code = ("import sys; from importlib.metadata import entry_points\n"
          f"sys.argv = [{name!r}, *{list(args)!r}]\n"
          f"next(iter(entry_points(group='console_scripts', name={name!r}))).load()()\n")
  return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_help_shows_the_positional_files_and_the_bundled_names():
  result = _script("tf-drnn-separate", "--help")
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("usage: tf-drnn-separate --output_dir=DIR [flags] FILE [FILE ...]")
  assert "drnn2 (default), drnn2_compact or drnn2_live" in " ".join(result.stdout.split())
  assert "--output_dir" in result.stdout and "--high_band" in result.stdout


def test_a_missing_required_flag_is_one_error_line():
  result = _script("tf-drnn-separate", "song.wav")
  assert (result.returncode, result.stderr) == (2, "error: --output_dir is required (see --help)\n")


@pytest.mark.parametrize("module,args", [
    ("tf_drnn.evaluate", ["--data_dir=x", "stray"]),
    ("tf_drnn_export.cli", ["--output=x.tflite", "stray"]),
    ("tf_drnn.demo", ["--output_dir=x", "stray"]),
    ("tf_drnn.train", ["--data_dir=x", "--model_dir=y", "--random_shift", "false"]),
])
def test_stray_arguments_are_an_error_in_every_flags_only_command(module, args, tmp_path):
  result = run_command(module, *args)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      result.stderr.strip()] and result.stderr.startswith("error: unexpected argument"), result.stderr


def test_an_unknown_flag_is_one_error_line():
  result = run_command("tf_drnn.evaluate", "--data_dirr=x")
  assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
  assert "data_dirr" in result.stderr


@background_job("quiet_api")
def _quiet_api_job(work):
  code = ("import tf_drnn, numpy; "
          "stems = tf_drnn.Separator().separate(numpy.zeros(16000) + 0.1, 16000); print(sorted(stems))")
  return ["-c", code], {"TF_CPP_MIN_LOG_LEVEL": None}  # as a user's fresh interpreter has it


@pytest.mark.background("quiet_api")
def test_separating_from_python_prints_nothing_on_stderr(background):
  assert background.returncode == 0, background.stderr
  assert background.stdout == "['accompaniment', 'vocals']\n"
  assert background.stderr == ""


# Scripts meant to run on a device without the package (NumPy and LiteRT only): argparse, no runner;
# and the child process benchmarks.run starts to measure streaming memory (positional arguments).
_STANDALONE_SCRIPTS = {"benchmarks/on_device.py", "benchmarks/arm64_report.py", "benchmarks/memory.py"}


def _functions(path):
  tree = ast.parse(open(path).read())
  return tree, {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _entry_calls(path):
  """Names called by a module's `if __name__ == "__main__":` block, followed into the functions it
  calls that are defined in that module or imported from the package's modules."""
  tree, functions = _functions(path)
  guards = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
  called, pending = set(), list(guards)
  while pending:
    node = pending.pop()
    for child in ast.walk(node):
      if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("tf_drnn."):
        module_path = os.path.join(REPO, *child.module.split(".")) + ".py"
        imported = _functions(module_path)[1] if os.path.exists(module_path) else {}
        functions = {**imported, **functions}  # the imported functions, and what they call there
      if isinstance(child, ast.Call):
        name = ast.unparse(child.func).split(".")[-1]
        if name not in called and name in functions:
          pending.append(functions[name])
        called.add(name)
  return bool(guards), called


def test_every_command_runs_through_the_one_runner():
  paths = [p for folder in ("tf_drnn", "tools", "benchmarks")
           for p in sorted(glob.glob(os.path.join(REPO, folder, "*.py")))]
  commands = {os.path.relpath(p, REPO): _entry_calls(p)[1] for p in paths if _entry_calls(p)[0]}
  assert len(commands) >= 14, sorted(commands)
  bypassing = [p for p, called in commands.items()
               if p not in _STANDALONE_SCRIPTS and "run_app" not in called]
  assert not bypassing, f"commands not started by tf_drnn.cli_util.run_app: {bypassing}"
