"""The README's table of the bundled models, generated from their records (tf_drnn/pretrained/<name>.json).

    python -m tools.readme_tables            # print the table
    python -m tools.readme_tables --write    # replace it in README.md (between its markers)

A retrain updates one place: `python -m tools.bundle` writes a model's record (dev scores, latency),
`--evaluation ... --benchmark ...` its measured figures; this script turns the records into the table.
tests/test_readme.py checks that README.md holds what this script prints.
"""
import json
import os
import re

from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.models import BUNDLED_MODELS, PRETRAINED_DIR

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
BEGIN, END = "<!-- models table: python -m tools.readme_tables --write -->", "<!-- end of models table -->"
HEADER = ("| model | latency | int8 size | per hop, 1 thread | real-time factor "
          "| MIR-1K vocal GNSDR (Keras / int8) | produced music vocal SDR (Keras / int8) |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")


def _pair(quality, key):
  if not quality:
    return "—"
  return f"{quality['keras'][key]:.2f} / {quality['int8_streamed'][key]:.2f}"


def model_row(name, record):
  """One Markdown row from a bundled model's record."""
  options, figures, latency = record["options"], record.get("figures", {}), record["latency"]
  hop = options.get("hop_length", DEFAULT_AUDIO_CONFIG.hop_length)  # records made before hop was an option
  rate = DEFAULT_AUDIO_CONFIG.sample_rate  # every model's rate
  int8 = figures.get("speed", {}).get("variants", {}).get("int8", {})
  per_hop = int8.get("separate_pcm_p50_ms")
  hop_ms = 1000 * hop / rate
  cells = [f"`{name}`: {options['num_layers']} × {options['hidden_units']}, hop {hop}",
           f"{latency['algorithmic_ms']:g} ms ({latency['algorithmic_samples']} samples)",
           f"{int8['bytes'] / 1e6:.2f} MB" if int8 else "—",
           f"{per_hop:.3f} ms of {hop_ms:g} ms" if per_hop else "—",
           f"{hop_ms / per_hop:.0f}×" if per_hop else "—",
           _pair(figures.get("quality"), "GNSDR"), _pair(figures.get("quality_produced"), "mean_SDR")]
  return "| " + " | ".join(cells) + " |"


def models_table(pretrained_dir=PRETRAINED_DIR):
  """The Markdown table of every bundled model with a record."""
  rows = []
  for name in BUNDLED_MODELS:
    path = os.path.join(pretrained_dir, name + ".json")
    if os.path.isfile(path):
      with open(path) as f:
        rows.append(model_row(name, json.load(f)))
  return "\n".join([HEADER] + rows)


def readme_with_table(text, table):
  """README text with the block between the markers replaced by `table`."""
  pattern = re.compile(re.escape(BEGIN) + r"\n.*?\n" + re.escape(END), re.S)
  if not pattern.search(text):
    raise ValueError(f"README.md lacks the markers {BEGIN} ... {END}")
  return pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text)


def main(argv):
  del argv
  from absl import flags
  table = models_table()
  if flags.FLAGS.write:
    from tf_drnn.atomic import atomic_output
    with open(README) as f:
      text = readme_with_table(f.read(), table)
    with atomic_output(README) as tmp, open(tmp, "w") as f:
      f.write(text)
  print(table)


def define_flags():
  from absl import flags
  flags.DEFINE_bool("write", False, "Replace the table in README.md.")


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)
