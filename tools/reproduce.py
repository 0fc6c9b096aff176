"""Trains and evaluates a list of flagfiles (the paper's rows) and writes docs/reproduction.md.

    python -m tools.reproduce --data_dir=../shared/MIR-1K --runs_dir=runs/paper \
        --configs=configs/paper/table2_drnn2_mse_discriminative.flags --train_steps=2500

Resumable: each config trains into RUNS_DIR/<config name> (a killed run resumes from its
checkpoint) and a config whose test results exist for the same step count is not redone.
Uses the GPU when TensorFlow sees one.
"""
import glob
import json
import os
import subprocess
import sys

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


def run_config(flagfile, data_dir, runs_dir, train_steps, trainer="tf", evaluate=True, extra_flags=()):
  """Trains (resuming) and, with `evaluate`, scores one config; returns its row dict (None if not scored).

  trainer: "tf" (`tf_drnn.train` under Keras' TensorFlow backend) or "jax" (the same trainer under
  Keras' JAX backend, for accelerators without TensorFlow). Either writes MODEL_DIR/training.json;
  a config whose training.json shows `train_steps` complete is not trained again (so models
  trained elsewhere are only scored).
  """
  name = config_name(flagfile)
  model_dir = os.path.join(runs_dir, name)
  results_path = os.path.join(model_dir, "test_results.json")
  if os.path.exists(results_path):
    with open(results_path) as f:
      done = json.load(f)
    if done.get("train_steps") == train_steps:
      return done
  training = _read_training(model_dir, train_steps)
  if training is None:
    module = "tf_drnn.train"
    backend = {"tf": "tensorflow", "jax": "jax"}[trainer]
    subprocess.run([sys.executable, "-m", module, f"--flagfile={flagfile}", f"--data_dir={data_dir}",
                    f"--model_dir={model_dir}", f"--train_steps={train_steps}", *extra_flags], check=True,
                   env={**os.environ, "KERAS_BACKEND": backend})
    training = _read_training(model_dir, train_steps)
    if training is None:
      raise RuntimeError(f"{model_dir}: {module} ended without recording {train_steps} steps in training.json")
  if not evaluate:
    return None
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  document = evaluate_command(EvaluateOptions(data_dir, model=model_dir, split="test",
                                              output=os.path.join(model_dir, "test_evaluation.json"), progress=False))
  row = {"name": name, "description": describe_config(flagfile), "train_steps": train_steps,
         "steps": training.get("steps", train_steps),
         "training_seconds": training["training_seconds"], "vocals": document["global"]["vocals"],
         "hardware": training["hardware"]}
  with open(results_path, "w") as f:
    json.dump(row, f, indent=2)
  return row


def _read_training(model_dir, train_steps):
  """MODEL_DIR/training.json if it records `train_steps` steps done, else None."""
  path = os.path.join(model_dir, "training.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    training = json.load(f)
  return training if training.get("complete") and training.get("train_steps") == train_steps else None


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
                 f"{ours['GSAR']:.2f} | {delta} | {row.get('steps', row['train_steps'])} | "
                 f"{row['training_seconds'] / 60:.1f} min | "
                 f"{row['hardware']} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  from concurrent.futures import ThreadPoolExecutor
  from absl import flags
  from tf_drnn.atomic import write_text
  values = flags.FLAGS
  if values.evaluate:
    from tf_drnn.cli_util import import_tensorflow_quietly
    import_tensorflow_quietly()
  configs = sorted(sum((glob.glob(pattern) for pattern in values.configs), []))
  extra = [f"--scan_unroll={values.scan_unroll}"] if values.scan_unroll else []

  def run(config):
    return run_config(config, values.data_dir, values.runs_dir, values.train_steps, values.trainer,
                      values.evaluate, extra)
  with ThreadPoolExecutor(max(values.jobs, 1)) as pool:  # Each job is its own process.
    rows = [row for row in pool.map(run, configs) if row]
  if values.evaluate:
    write_text(values.output, markdown(rows))
    print(markdown(rows))


def define_flags():
  from absl import flags

  from tf_drnn.flags_common import define_data_dir
  define_data_dir(note="MIR-1K only.", required=True)
  flags.DEFINE_string("runs_dir", "runs/paper", "One model_dir per config goes here.")
  flags.DEFINE_list("configs", ["configs/paper/*.flags"], "Flagfiles (globs allowed).")
  flags.DEFINE_integer("train_steps", 2500, "Steps per config (fewer on a CPU; stated in the table).")
  flags.DEFINE_string("output", "docs/reproduction.md", "The Markdown table.")
  flags.DEFINE_enum("trainer", "tf", ["tf", "jax"],
                    "tf: tf_drnn.train under TensorFlow; jax: the same under Keras' JAX backend "
                    "(no TensorFlow needed).")
  flags.DEFINE_bool("evaluate", True, "Score each trained config on the test clips (needs TensorFlow).")
  flags.DEFINE_integer("jobs", 1, "Configs trained (and scored) at once.")
  flags.DEFINE_integer("scan_unroll", 0, "Recurrences as a scan (tf-drnn-train --scan_unroll).")


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)  # --trainer=jax --noevaluate runs without TF.
