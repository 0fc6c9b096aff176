r"""`tf-drnn-export`: a trained model -> streaming TFLite file + JSON sidecar.

    tf-drnn-export --output=drnn2.tflite                                  # bundled model, float32
    tf-drnn-export --model=runs/bundled --output=out/drnn2_int8.tflite \
        --quantization=int8 --data_dir=/data/MIR-1K

See tf_drnn_export.convert for what the file holds and docs/on_device.md for its use.
"""
import json
import os
import sys

from absl import flags, logging

from tf_drnn.cli_util import run_app, run_guarded
from tf_drnn.errors import UserError
from .conversion import QUANTIZATIONS  # TensorFlow-free at import time.

FLAGS = flags.FLAGS


def define_flags():
  from tf_drnn.flags_common import define_data_dir, define_model
  define_model(note="Not a .tflite file: this command writes one from a Keras model.")
  flags.DEFINE_string("output", None, "The TFLite file to write (FILE.tflite); the sidecar goes to FILE.json, "
                      "which may replace only a previous sidecar of the same FILE.tflite. Both are checked before "
                      "conversion.")
  flags.DEFINE_enum("quantization", "float32", QUANTIZATIONS,
                    "float32: none; float16: float16 weights; dynamic: int8 weights, float activations; "
                    "int8: int8 dense layers calibrated on --data_dir.")
  define_data_dir(note="MIR-1K only: its training-singer mixtures calibrate --quantization=int8.")
  flags.DEFINE_integer("calibration_frames", 2000, "Calibration steps per signature for int8 (STFT frames / hops).")
  flags.mark_flag_as_required("output")


def export(model, output, quantization, data_dir=None, calibration_frames=2000):
  """Loads the model, calibrates if needed and writes FILE.tflite + FILE.json. Returns the sidecar."""
  if quantization not in QUANTIZATIONS:
    raise UserError(f"unknown quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
  if not output.endswith(".tflite"):
    raise UserError(f"{output}: the output file must end in .tflite")
  if quantization == "int8" and not data_dir:
    raise UserError("--quantization=int8 needs --data_dir (MIR-1K training audio for calibration)")
  if data_dir and not os.path.isdir(data_dir):
    raise UserError(f"{data_dir}: data directory does not exist")
  if calibration_frames < 1:
    raise UserError("--calibration_frames must be at least 1")
  from tf_drnn.models import load_model, resolve_model_path
  from .calibration import calibration_audio_from_data_dir
  from .convert import export_tflite
  from .sidecar import check_output_paths
  model_path = resolve_model_path(model)
  check_output_paths(output, model_path)  # Before loading, calibrating and converting.
  audio = None
  if quantization == "int8":
    audio = calibration_audio_from_data_dir(data_dir, calibration_frames)
  keras_model = load_model(model_path)
  return export_tflite(keras_model, output, quantization, calibration_audio=audio,
                       model_path=model_path, max_calibration_steps=calibration_frames)


def main(argv):
  del argv  # run_app refuses stray arguments
  logging.set_verbosity(logging.WARNING)  # TensorFlow's SavedModel/converter INFO chatter.
  sidecar = run_guarded(lambda: export(FLAGS.model, FLAGS.output, FLAGS.quantization, FLAGS.data_dir,
                                       FLAGS.calibration_frames))
  summary = {key: sidecar[key] for key in ("quantization", "tflite_bytes", "latency_samples", "state_size")}
  print(f"wrote {FLAGS.output} and {os.path.splitext(FLAGS.output)[0]}.json: {json.dumps(summary)}")


def run():
  run_app(define_flags, main)


if __name__ == "__main__":
  sys.exit(run())
