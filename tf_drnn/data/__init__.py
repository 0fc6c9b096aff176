"""Datasets behind one interface (:class:`tf_drnn.data.base.SeparationDataset`).

A new layout is a reader class with `tracks(split)` plus one line in DATASETS; training and
evaluation code stay as they are. mir1k: MIR-1K's own layout (`mir1k.py`); musdb18hq and stems:
multitrack collections, one folder of stems per song (`multitrack.py`).
"""
import importlib

# Name -> "module:Class"; the class takes (data_dir, dev_clips=...).
DATASETS = {"mir1k": "tf_drnn.data.mir1k:MIR1K",
            "musdb18hq": "tf_drnn.data.multitrack:MUSDB18HQ",
            "stems": "tf_drnn.data.multitrack:StemsFolders"}


def load_dataset(name, data_dir, dev_clips):
  """The reader for dataset layout `name` over `data_dir`."""
  from tf_drnn.errors import UserError
  if name not in DATASETS:
    raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
  module, cls = DATASETS[name].split(":")
  return getattr(importlib.import_module(module), cls)(data_dir, dev_clips=dev_clips)
