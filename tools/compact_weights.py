"""Trained runs as one small file: int8 weights (per output channel) plus the run's JSON records.

For moving models off a machine with a small transfer budget (e.g. a remote GPU machine whose
results come back through a size-limited folder): a 3 x 1000 DRNN-2 packs into about 5.6 MB
instead of 22 MB. Unpacking rebuilds the model from its options.json with the dequantized
weights (each weight within half a step, 1/254 of its output channel's largest magnitude).

    python -m tools.compact_weights --pack=RUN_DIR[,RUN_DIR...] --output_dir=OUT
    python -m tools.compact_weights --unpack=OUT/NAME.npz[,...] --runs_dir=runs/gpu
"""
import json
import os

import numpy as np

_RECORDS = ("options.json", "training.json")


def quantize(weight):
  """float [..., out] -> (int8 values, float32 scale per output channel [out])."""
  weight = np.asarray(weight, np.float32)
  if weight.ndim < 2:
    return weight, None
  scale = np.abs(weight.reshape(-1, weight.shape[-1])).max(axis=0) / 127.0
  scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
  return np.clip(np.round(weight / scale), -127, 127).astype(np.int8), scale


def dequantize(values, scale):
  return values.astype(np.float32) if scale is None else values.astype(np.float32) * scale


def pack(run_dir, path):
  """Writes RUN_DIR's model.keras (int8) and JSON records into the .npz `path`."""
  import keras
  import tf_drnn.model  # noqa: F401  (registers the layers)
  model = keras.models.load_model(os.path.join(run_dir, "model.keras"), compile=False)
  arrays = {}
  for i, variable in enumerate(model.weights):
    values, scale = quantize(keras.ops.convert_to_numpy(variable.value))
    arrays[f"w{i}"] = values
    if scale is not None:
      arrays[f"s{i}"] = scale
  for record in _RECORDS:
    record_path = os.path.join(run_dir, record)
    if os.path.exists(record_path):
      with open(record_path) as f:
        arrays[record] = np.array(f.read())
  from tf_drnn.atomic import atomic_output
  with atomic_output(path) as tmp:
    with open(tmp, "wb") as f:
      np.savez_compressed(f, **arrays)


def unpack(path, run_dir):
  """Rebuilds RUN_DIR/model.keras (float32) and the JSON records from a packed .npz."""
  from tf_drnn.atomic import write_text
  from tf_drnn.model import build_model_from_options
  from tf_drnn.models import save_model as save_model_atomically
  with np.load(path) as packed:
    model = build_model_from_options(json.loads(str(packed["options.json"])))
    for i, variable in enumerate(model.weights):
      variable.assign(dequantize(packed[f"w{i}"], packed[f"s{i}"] if f"s{i}" in packed else None))
    for record in _RECORDS:
      if record in packed:
        write_text(os.path.join(run_dir, record), str(packed[record]))
  save_model_atomically(model, os.path.join(run_dir, "model.keras"))


def main(argv):
  del argv
  from absl import flags
  values = flags.FLAGS
  for run_dir in values.pack:
    path = os.path.join(values.output_dir, os.path.basename(os.path.normpath(run_dir)) + ".npz")
    pack(run_dir, path)
    print(f"{run_dir} -> {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
  for path in values.unpack:
    run_dir = os.path.join(values.runs_dir, os.path.splitext(os.path.basename(path))[0])
    unpack(path, run_dir)
    print(f"{path} -> {run_dir}/model.keras")


def define_flags():
  from absl import flags

  from tf_drnn.flags_common import define_output_dir
  flags.DEFINE_list("pack", [], "Run directories (holding model.keras) to pack.")
  define_output_dir("packed .npz files (one per run, named after it)", default=".")
  flags.DEFINE_list("unpack", [], "Packed .npz files to unpack.")
  flags.DEFINE_string("runs_dir", "runs", "Where unpacked runs go (one directory per file).")


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)
