"""The README is a manual: its two first commands are the ones CI runs, its models table is what the
bundled models' records say (tools/readme_tables.py), and it points at no local data folder."""
import os
import pathlib
import re

import pytest

from conftest import REPO as _REPO

REPO = pathlib.Path(_REPO)

README = (REPO / "README.md").read_text()


def test_models_table_is_generated_from_the_bundled_models_records():
  from tools.readme_tables import models_table, readme_with_table
  assert readme_with_table(README, models_table()) == README


def test_models_table_rows_read_the_records():
  from tools.readme_tables import model_row
  record = {"options": {"num_layers": 3, "hidden_units": 320, "hop_length": 128},
            "latency": {"algorithmic_ms": 16.0, "algorithmic_samples": 256, "stream_samples": 128},
            "figures": {"speed": {"variants": {"int8": {"bytes": 1281760, "separate_pcm_p50_ms": 0.05}}},
                        "quality": {"keras": {"GNSDR": 9.0}, "int8_streamed": {"GNSDR": 8.987}}}}
  assert model_row("x", record) == ("| `x`: 3 × 320, hop 128 | 16 ms (256 samples) | 1.28 MB | 0.050 ms of 8 ms "
                                    "| 160× | 9.00 / 8.99 | — |")


def test_ci_runs_the_readme_test_command():
  commands = re.findall(r"^(pip install .*)$", README, re.M)
  assert commands[:2] == ['pip install ".[train]" && tf-drnn-demo --output_dir=demo_out',
                          'pip install -e ".[test]" && ruff check . && python -m pytest tests -q']
  ci = (REPO / ".ci" / "run").read_text()
  assert 'pip install --quiet -e ".[test]"' in ci and "ruff check ." in ci and "python -m pytest tests -q" in ci


def _local_folders():
  """This checkout's absolute path, and the folder holding it (with its separator) unless that is the root."""
  folders = [str(REPO)]
  if REPO.parent != REPO.parent.parent:
    folders.append(os.path.join(str(REPO.parent), ""))
  return folders


@pytest.mark.parametrize("text", ["../shared", "session", *_local_folders()])
def test_readme_names_no_local_folder_or_history(text):
  assert text not in README


def test_readme_is_short_enough_to_read():
  assert len(README.splitlines()) <= 170
