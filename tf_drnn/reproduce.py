"""Trains and evaluates a list of flagfiles (the paper's rows) and writes docs/reproduction.md.

    python -m tf_drnn.reproduce --data_dir=../shared/MIR-1K --runs_dir=runs/paper \
        --configs=configs/paper/table2_drnn2_mse_discriminative.flags --train_steps=2500

Resumable: each config trains into RUNS_DIR/<config name> (a killed run resumes from its
checkpoint) and a config whose test results exist for the same step count is not redone.
Uses the GPU when TensorFlow sees one.
"""
import glob
import json
import os
import platform
import subprocess
import sys
import time

# Vocal GNSDR / GSIR / GSAR (dB) on MIR-1K's 825 test clips, Huang et al. (ISMIR 2014).
PAPER = {
    "table2_dnn_mse": (6.93, 10.99, 10.15),
    "table2_drnn2_mse": (7.27, 11.98, 9.99),
    "table2_drnn2_mse_discriminative": (7.45, 13.08, 9.68),
}


def config_name(flagfile):
  return os.path.splitext(os.path.basename(flagfile))[0]


def describe_config(flagfile):
  with open(flagfile) as f:
    first = f.readline().strip()
  return first.lstrip("# ") if first.startswith("#") else config_name(flagfile)


def run_config(flagfile, data_dir, runs_dir, train_steps):
  """Trains (resuming) and evaluates one config; returns its row dict."""
  from tf_drnn.evaluate import evaluate_command
  name = config_name(flagfile)
  model_dir = os.path.join(runs_dir, name)
  results_path = os.path.join(model_dir, "test_results.json")
  if os.path.exists(results_path):
    with open(results_path) as f:
      done = json.load(f)
    if done.get("train_steps") == train_steps:
      return done
  started = time.time()
  subprocess.run([sys.executable, "-m", "tf_drnn.train", f"--flagfile={flagfile}", f"--data_dir={data_dir}",
                  f"--model_dir={model_dir}", f"--train_steps={train_steps}"], check=True)
  training_seconds = time.time() - started
  document = evaluate_command(data_dir, model=model_dir, split="test",
                              output=os.path.join(model_dir, "test_evaluation.json"), progress=False)
  row = {"name": name, "description": describe_config(flagfile), "train_steps": train_steps,
         "training_seconds": training_seconds, "vocals": document["global"]["vocals"],
         "hardware": _hardware()}
  with open(results_path, "w") as f:
    json.dump(row, f, indent=2)
  return row


def _hardware():
  import tensorflow as tf
  gpus = tf.config.list_physical_devices("GPU")
  return f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def markdown(rows):
  lines = ["# Reproduction of Huang et al. (ISMIR 2014) on MIR-1K", "",
           "Ours: the 120 public test clips (singers Ani, annar, heycat); paper: 825 test clips. "
           "Vocal GNSDR / GSIR / GSAR in dB.", "",
           "| config | paper GNSDR / GSIR / GSAR | ours GNSDR / GSIR / GSAR | Δ GNSDR | steps | time | hardware |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for row in rows:
    paper = PAPER.get(row["name"])
    ours = row["vocals"]
    paper_text = " / ".join(f"{v:.2f}" for v in paper) if paper else "not transcribed"
    delta = f"{ours['GNSDR'] - paper[0]:+.2f}" if paper else ""
    lines.append(f"| {row['description']} | {paper_text} | {ours['GNSDR']:.2f} / {ours['GSIR']:.2f} / "
                 f"{ours['GSAR']:.2f} | {delta} | {row['train_steps']} | {row['training_seconds'] / 60:.0f} min | "
                 f"{row['hardware']} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  from absl import flags
  from tf_drnn.atomic import write_text
  values = flags.FLAGS
  configs = sorted(sum((glob.glob(pattern) for pattern in values.configs), []))
  rows = [run_config(c, values.data_dir, values.runs_dir, values.train_steps) for c in configs]
  write_text(values.output, markdown(rows))
  print(markdown(rows))


def define_flags():
  from absl import flags
  flags.DEFINE_string("data_dir", None, "MIR-1K root.", required=True)
  flags.DEFINE_string("runs_dir", "runs/paper", "One model_dir per config goes here.")
  flags.DEFINE_list("configs", ["configs/paper/*.flags"], "Flagfiles (globs allowed).")
  flags.DEFINE_integer("train_steps", 2500, "Steps per config (fewer on a CPU; stated in the table).")
  flags.DEFINE_string("output", "docs/reproduction.md", "The Markdown table.")


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main)
