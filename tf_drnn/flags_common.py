"""The flags several commands share, each defined here once with one help text.

tf-drnn-separate, -separate-beam, -evaluate, -train, -export, -demo, the benchmarks and the tools
call these instead of writing their own `--model`, `--data_dir`, `--dataset`, `--dev_clips` or
`--output_dir`. A command that takes a narrower value (export: no .tflite file) says so in `note`,
a sentence appended to the shared text. The flags belong to the command that defines them (its
--help lists them as its own): this module disclaims them.
"""
from absl import flags as _flags

_flags.disclaim_key_flags()

DATA_DIR_HELP = ("The dataset's folder: for mir1k the MIR-1K root (the folder holding Wavfile/), for musdb18hq "
                 "and stems the collection's root")
DEV_CLIPS_HELP = ("Clips or songs held out of training as the dev split: MIR-1K clips or song prefixes "
                  "(e.g. amy_9), or multitrack song names; empty: each dataset's own dev split (MIR-1K: the "
                  "paper's abjones_5_08, abjones_5_09, amy_9_08, amy_9_09; MUSDB18-HQ and stems: musdb's "
                  "validation songs).")
OUTPUT_DIR_HELP = "The folder the outputs go to"


def model_help():
  from tf_drnn.models import bundled_names_help
  return (f"The model: a .keras file, a tf-drnn-train model_dir holding model.keras, a bundled model's name "
          f"({bundled_names_help()}), or a .tflite file from tf-drnn-export (its sidecar .json beside it) "
          "where the command runs one under LiteRT.")


def _help(text, note):
  return f"{text} {note}".strip() if note else text


def define_model(default=None, note="", required=False):
  """--model: which trained model a command runs."""
  from absl import flags
  flags.DEFINE_string("model", default, _help(model_help(), note), required=required)


def define_data_dir(default=None, note="", several=False, required=False):
  """--data_dir: the dataset folder; `several`: one folder per --dataset collection, comma-separated."""
  from absl import flags
  text = DATA_DIR_HELP + ("; with several --dataset collections, one folder each, comma-separated, in the "
                          "same order." if several else ".")
  flags.DEFINE_string("data_dir", default, _help(text, note), required=required)


def define_dataset(default="mir1k", several=False):
  """--dataset: a reader of tf_drnn.data.DATASETS; `several`: a comma-separated list of them."""
  from absl import flags

  from tf_drnn.data import DATASETS
  text = (f"Dataset layout: {', '.join(DATASETS)}. mir1k: MIR-1K clips, scored on 0 dB remixes at 16 kHz; "
          "musdb18hq, stems: one folder of stems per song, scored as released at each song's own rate and "
          "channels (tf_drnn.evaluate_multitrack).")
  if several:
    flags.DEFINE_string("dataset", default, text + " Several, comma-separated (e.g. mir1k,stems), train on "
                        "examples drawn from each, per --dataset_weights.")
  else:
    flags.DEFINE_enum("dataset", default, list(DATASETS), text)


def define_dev_clips(default=()):
  """--dev_clips: the dev split; empty: each reader's own (SeparationDataset.DEFAULT_DEV)."""
  from absl import flags
  flags.DEFINE_list("dev_clips", list(default), DEV_CLIPS_HELP)


def define_output_dir(what, default=None, required=False):
  """--output_dir: `what` names what the command writes there."""
  from absl import flags
  flags.DEFINE_string("output_dir", default, f"{OUTPUT_DIR_HELP}: {what}.", required=required)
