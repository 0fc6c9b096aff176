"""Datasets behind one interface (:class:`tf_drnn.data.base.SeparationDataset`).

A new layout is a reader class with `tracks(split)` plus one line in DATASETS; training and
evaluation code stay as they are. Training may draw from several collections at once
(:func:`load_collections`: `--dataset=mir1k,stems --data_dir=A,B`), each with its own dev split.
mir1k: MIR-1K's own layout (`mir1k.py`); musdb18hq and stems:
multitrack collections, one folder of stems per song (`multitrack.py`).
"""
import importlib

# Name -> "module:Class"; the class takes (data_dir, dev_clips=...).
DATASETS = {"mir1k": "tf_drnn.data.mir1k:MIR1K",
            "musdb18hq": "tf_drnn.data.multitrack:MUSDB18HQ",
            "stems": "tf_drnn.data.multitrack:StemsFolders"}


def load_dataset(name, data_dir, dev_clips=None):
  """The reader for dataset layout `name` over `data_dir`: the one way to a reader.

  dev_clips: the dev split's clips or songs (None or empty: the layout's own, DEFAULT_DEV)."""
  from tf_drnn.errors import UserError
  if name not in DATASETS:
    raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
  module, cls = DATASETS[name].split(":")
  return getattr(importlib.import_module(module), cls)(data_dir, dev_clips=dev_clips)


def load_collections(names, data_dirs, dev_clips, stem_channels="mean"):
  """[(name, reader)] for comma-separated `names` and `data_dirs` (one folder per collection).

  dev_clips: names given with --dev_clips (None or empty: each reader's own dev split,
  :meth:`SeparationDataset.dev_split`). With several collections each name goes to the collection that holds it
  (MIR-1K: a clip or song prefix; multitrack: a song), and a collection without any keeps its
  own default; a name no collection holds is a UserError.
  stem_channels: "mean" (multitrack songs train on their channel mean) or "each" (also on every
  channel alone: more mixes of the same song).
  """
  from tf_drnn.errors import UserError
  names, data_dirs = split_names(names), split_names(data_dirs)
  if len(names) != len(data_dirs):
    raise UserError(f"--dataset names {len(names)} collection(s) but --data_dir {len(data_dirs)} folder(s): "
                    "give one folder per collection, in the same order")
  if len(set(names)) != len(names):
    raise UserError(f"--dataset={','.join(names)}: a collection named twice")
  readers = [_reader(n, d, dev_clips if len(names) == 1 else None, stem_channels) for n, d in zip(names, data_dirs)]
  from tf_drnn.data.base import SeparationDataset
  if len(names) == 1 or not SeparationDataset.dev_split(dev_clips)[1]:
    return list(zip(names, readers))
  routed = [[c for c in dev_clips if reader.holds_clip(c)] for reader in readers]
  unknown = [c for c in dev_clips if not any(c in r for r in routed)]
  if unknown:
    raise UserError(f"--dev_clips: {', '.join(map(repr, unknown))} is in none of the collections "
                    f"{', '.join(f'{n} ({d})' for n, d in zip(names, data_dirs))}")
  return [(n, _reader(n, d, r or None, stem_channels) if r else reader)
          for n, d, r, reader in zip(names, data_dirs, routed, readers)]


def split_names(value):
  """A comma-separated flag value (or a list) as its non-empty, stripped items."""
  return [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]


def _reader(name, data_dir, dev_clips, stem_channels):
  reader = load_dataset(name, data_dir, dev_clips)
  if stem_channels == "each" and hasattr(reader, "channel"):
    reader.channel = "each"
  return reader
