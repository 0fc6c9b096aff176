"""The files of an export: FILE.tflite and its sidecar FILE.json (what an app needs to stream the
file, see docs/on_device.md), their paths checked before any conversion and both written together.
"""
import json
import os

from tf_drnn.errors import UserError
from tf_drnn.litert import sidecar_path

FORMAT = "tf_drnn.streaming/1"


def check_output_paths(output_path, model_path=None):
  """Raises UserError, before any conversion, unless FILE.tflite and its sidecar FILE.json can be written.

  FILE.tflite must not be a directory, the input model, or under a file; FILE.json may replace only
  a previous sidecar of the same FILE.tflite (never, say, a training run's best.json or options.json).
  """
  from tf_drnn.atomic import check_output_file
  output_path = os.fspath(output_path)
  if not output_path.endswith(".tflite"):
    raise UserError(f"{output_path}: the output file must end in .tflite")
  sidecar = sidecar_path(output_path)
  if model_path is not None and (_same_file(output_path, model_path) or _same_file(sidecar, model_path)):
    raise UserError(f"{output_path}: would overwrite the input model")
  check_output_file(output_path)
  check_output_file(sidecar)
  if os.path.lexists(sidecar) and not _is_previous_sidecar(sidecar, output_path):
    raise UserError(f"{sidecar}: exists and is not the sidecar of a previous {os.path.basename(output_path)} "
                    "export; it is kept: choose another --output")


def _same_file(a, b):
  return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def _is_previous_sidecar(sidecar, output_path):
  """Whether the file `sidecar` is a sidecar this exporter wrote for a file named like output_path."""
  try:
    with open(sidecar) as f:
      previous = json.load(f)
  except (OSError, ValueError):
    previous = None
  return (isinstance(previous, dict) and previous.get("format") == FORMAT
          and previous.get("tflite_file") == os.path.basename(output_path))


def sidecar_record(source_model, config, endpoints, quantization, model_path, output_path, content, ops, layout):
  """The sidecar dict of a converted file (FILE.json): what an app needs to stream it."""
  from tf_drnn.model import describe
  from tf_drnn.models import bundled_figures, bundled_name
  description = describe(source_model)
  sidecar = {
      "format": FORMAT,
      **config.as_dict(),
      "num_bins": config.num_bins,
      "latency_samples": endpoints.pcm.latency_samples,
      "algorithmic_latency_samples": endpoints.pcm.algorithmic_latency_samples,
      "frame_delay": endpoints.frames.delay,
      "state_size": {"separate_frame": endpoints.frames.state_size,
                     "separate_pcm": endpoints.pcm.state_size},
      "quantization": quantization,
      "model": {"path": os.path.abspath(model_path) if model_path else None,
                "name": source_model.name,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in description.items()}},
      "tflite_file": os.path.basename(output_path),
      "tflite_bytes": len(content),
      "ops": ops,
      "signatures": layout,
  }
  bundled = bundled_name(model_path)
  if bundled is not None:  # What this file and the other bundled models measured, side by side.
    sidecar["reference_figures"] = {"model": bundled, "models": bundled_figures()}
  return sidecar


def write_export(output_path, content, sidecar):
  """Writes FILE.tflite (`content`) and FILE.json (the `sidecar` dict) together: see write_together."""
  write_together({output_path: content,
                  sidecar_path(output_path): (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode()})


def write_together(files):
  """Writes {path: bytes} atomically and together (tf_drnn.atomic.atomic_outputs): all or none.

  An OSError (full disk, read-only folder, name too long) is one OutputError naming the file,
  "PATH: cannot write (No space left on device)"; no partial or temporary file is left.
  """
  from tf_drnn.atomic import atomic_outputs
  from tf_drnn.errors import OutputError
  paths = list(files)
  current = paths[0]
  try:
    with atomic_outputs(paths) as tmps:
      for current, tmp in zip(paths, tmps):
        with open(tmp, "wb") as f:
          f.write(files[current])
  except OSError as error:
    path = error.filename if error.filename in paths else current
    raise OutputError(path, f"cannot write ({error.strerror or error})") from None
