"""Packs a trained model as the bundled pretrained model: float16 weights inside a .keras file.

    python -m tools.bundle --model_dir=runs/bundled --flagfile_path=configs/bundled.flags

writes tf_drnn/pretrained/drnn2.keras (weights stored as float16, loaded back into float32
variables: half the size), drnn2.flags (the flagfile that trained it) and drnn2.json (its
dev scores and training options).
"""
import io
import json
import os
import shutil
import zipfile

import numpy as np

from tf_drnn.atomic import atomic_output, write_json
from tf_drnn.models import PRETRAINED_DIR


def store_weights_as_float16(source, destination):
  """Copies a .keras file, casting its float32 weight arrays to float16; written atomically."""
  import h5py
  with zipfile.ZipFile(source) as archive:
    blobs = {name: archive.read(name) for name in archive.namelist()}
  packed = io.BytesIO()
  with h5py.File(io.BytesIO(blobs["model.weights.h5"]), "r") as weights_in, h5py.File(packed, "w") as weights_out:
    def copy(name, item):
      if isinstance(item, h5py.Dataset):
        data = item[()]
        weights_out.create_dataset(name, data=data.astype(np.float16) if data.dtype == np.float32 else data)
      else:
        weights_out.require_group(name)
      for key, value in item.attrs.items():
        weights_out[name].attrs[key] = value
    weights_in.visititems(copy)
    for key, value in weights_in.attrs.items():
      weights_out.attrs[key] = value
  blobs["model.weights.h5"] = packed.getvalue()
  with atomic_output(destination) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
    for name, blob in blobs.items():
      archive.writestr(name, blob)


def bundle(model_dir, flagfile, name="drnn2", output_dir=PRETRAINED_DIR):
  """Writes <name>.keras (float16 weights), <name>.flags and <name>.json into output_dir."""
  os.makedirs(output_dir, exist_ok=True)
  store_weights_as_float16(os.path.join(model_dir, "model.keras"), os.path.join(output_dir, name + ".keras"))
  shutil.copyfile(flagfile, os.path.join(output_dir, name + ".flags"))
  with open(os.path.join(model_dir, "best.json")) as f:
    best = json.load(f)
  record = {"dev": best["dev"], "step": best["step"], "options": best["options"]}
  training_path = os.path.join(model_dir, "training.json")  # steps, time and hardware, when recorded
  if os.path.exists(training_path):
    with open(training_path) as f:
      record["training"] = json.load(f)
  write_json(os.path.join(output_dir, name + ".json"), record)


def main(argv):
  del argv
  from absl import flags
  bundle(flags.FLAGS.model_dir, flags.FLAGS.flagfile_path, flags.FLAGS.name)


if __name__ == "__main__":
  from absl import app, flags
  flags.DEFINE_string("model_dir", None, "A tf-drnn-train model_dir.", required=True)
  flags.DEFINE_string("flagfile_path", None, "The flagfile that trained it.", required=True)
  flags.DEFINE_string("name", "drnn2", "Bundled model name (a key of tf_drnn.models.BUNDLED_MODELS).")
  app.run(main)
