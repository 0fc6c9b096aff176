"""Packs a trained model as the bundled pretrained model: float16 weights inside a .keras file.

    python -m tools.bundle --model_dir=runs/bundled --flagfile_path=configs/bundled.flags

writes tf_drnn/pretrained/drnn2.keras (weights stored as float16, loaded back into float32
variables: half the size), drnn2.flags (the flagfile that trained it) and drnn2.json (its
dev scores and training options).

    python -m tools.bundle --name=drnn2_compact --evaluation=test.json \
        --tflite_evaluation=test_int8.json --benchmark=docs/benchmarks/compact/results.json

records a bundled model's measured figures in its <name>.json (`figures`: vocal G-metrics of the
Keras model and of its int8 file streamed, from `tf-drnn-evaluate` documents; every exported
variant's size and one-thread p50 per call, from `benchmarks/run.py`'s results.json). With
`--produced_evaluation=val.json --produced_tflite_evaluation=val_int8.json` (`tf-drnn-evaluate
--dataset=stems --mono` documents of the Keras model and its int8 file) also the produced-music
figures (`quality_produced`: mean vocal SDR over songs, its median and the G-metrics).
`tf-drnn-export` copies them into the sidecar of every file it exports from a bundled model.
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
  """Copies a .keras file, casting its float32 weight arrays to float16 and leaving out the
  optimizer's variables (a trained run's model.keras carries Adam's moments: twice the weights,
  of no use to a bundled model, which loads uncompiled); written atomically."""
  import h5py
  with zipfile.ZipFile(source) as archive:
    blobs = {name: archive.read(name) for name in archive.namelist()}
  packed = io.BytesIO()
  with h5py.File(io.BytesIO(blobs["model.weights.h5"]), "r") as weights_in, h5py.File(packed, "w") as weights_out:
    def copy(name, item):
      if name.split("/")[0] == "optimizer":
        return
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


def latency_record(model_path):
  """The model's latency: its stream's output delay (what an impulse measures) and the algorithmic
  latency a live caller sees (one hop more: the wait for each hop to fill), samples and ms."""
  from tf_drnn.models import load_model
  from tf_drnn.streaming import PcmStream
  stream = PcmStream(load_model(model_path))
  rate = stream.config.sample_rate
  return {"stream_samples": stream.latency_samples, "algorithmic_samples": stream.algorithmic_latency_samples,
          "algorithmic_ms": 1000 * stream.algorithmic_latency_samples / rate}


def bundle(model_dir, flagfile, name="drnn2", output_dir=PRETRAINED_DIR):
  """Writes <name>.keras (float16 weights), <name>.flags and <name>.json into output_dir."""
  os.makedirs(output_dir, exist_ok=True)
  store_weights_as_float16(os.path.join(model_dir, "model.keras"), os.path.join(output_dir, name + ".keras"))
  shutil.copyfile(flagfile, os.path.join(output_dir, name + ".flags"))
  with open(os.path.join(model_dir, "best.json")) as f:
    best = json.load(f)
  record = {"dev": best["dev"], "step": best["step"], "options": best["options"],
            "latency": latency_record(os.path.join(output_dir, name + ".keras"))}
  training_path = os.path.join(model_dir, "training.json")  # steps, time and hardware, when recorded
  if os.path.exists(training_path):
    with open(training_path) as f:
      record["training"] = json.load(f)
  write_json(os.path.join(output_dir, name + ".json"), record)


def _quality(evaluation):
  """Vocal G-metrics of a tf-drnn-evaluate document, with the clips and singers they cover."""
  singers = sorted({clip["name"].split("_")[0] for clip in evaluation["clips"]})
  vocals = evaluation["global"]["vocals"]
  return {"clips": evaluation["num_clips"], "singers": singers, "method": evaluation["method"],
          **{key: round(vocals[key], 2) for key in ("GNSDR", "GSIR", "GSAR")}}


def _produced_quality(evaluation):
  """Vocal figures of a `tf-drnn-evaluate --dataset=stems --mono` document, with the songs they cover."""
  vocals = evaluation["global"]["vocals"]
  return {"songs": evaluation["num_tracks"], "selection": evaluation["selection"], "mono": evaluation["mono"],
          **{key: round(vocals[key], 2) for key in ("mean_SDR", "median_SDR", "GNSDR", "GSIR", "GSAR")}}


def figures_record(evaluation, tflite_evaluation, benchmark):
  """The `figures` of a bundled model's record, from the documents named in the module docstring.

  Returns {"quality": {"keras": ..., "int8_streamed": ...}, "speed": {"machine": ...,
  "variants": {variant: {"bytes", "separate_frame_p50_ms", "separate_pcm_p50_ms"}}}}: dB, bytes
  and milliseconds per 512-sample call, one thread with XNNPACK.
  """
  environment = benchmark["environment"]
  variants = {}
  for variant, result in benchmark["variants"].items():
    latency = result.get("latency", {})
    variants[variant] = {"bytes": result["size_bytes"], **{
        f"{signature}_p50_ms": round(latency[signature]["1t_xnnpack"]["p50_ms"], 3)
        for signature in ("separate_frame", "separate_pcm") if "1t_xnnpack" in latency.get(signature, {})}}
  machine = (f"{environment['cpu_model']} ({environment['machine']}), one thread, XNNPACK, "
             f"ai-edge-litert {environment['ai_edge_litert']}, {environment['date_utc'][:10]}")
  return {"quality": {"keras": _quality(evaluation), "int8_streamed": _quality(tflite_evaluation)},
          "speed": {"machine": machine, "variants": variants}}


def record_figures(name, evaluation_path, tflite_evaluation_path, benchmark_path, output_dir=PRETRAINED_DIR,
                   produced_paths=()):
  """Writes figures_record(...) of the three JSON files into <name>.json (atomically); with
  produced_paths (the Keras and int8 produced-music documents), their `quality_produced` too."""
  documents = []
  for path in (evaluation_path, tflite_evaluation_path, benchmark_path, *produced_paths):
    with open(path) as f:
      documents.append(json.load(f))
  record_path = os.path.join(output_dir, name + ".json")
  with open(record_path) as f:
    record = json.load(f)
  record["figures"] = figures_record(*documents[:3])
  if produced_paths:
    record["figures"]["quality_produced"] = {"keras": _produced_quality(documents[3]),
                                             "int8_streamed": _produced_quality(documents[4])}
  write_json(record_path, record)
  return record["figures"]


def _check_inputs(f):
  """Every file the flags name exists, before anything is written. UserError."""
  from tf_drnn.errors import UserError
  needed = [os.path.join(f.model_dir, "model.keras"), os.path.join(f.model_dir, "best.json"),
            f.flagfile_path] if f.model_dir else []
  needed += [path for path in (f.evaluation, f.tflite_evaluation, f.benchmark, f.produced_evaluation,
                               f.produced_tflite_evaluation) if path]
  missing = [path for path in needed if not os.path.isfile(path)]
  if missing:
    raise UserError(f"{missing[0]}: no such file")


def main(argv):
  del argv
  from absl import flags

  from tf_drnn.cli_util import run_guarded
  f = flags.FLAGS
  run_guarded(lambda: _check_inputs(f))
  if f.model_dir:
    bundle(f.model_dir, f.flagfile_path, f.name)
  if f.evaluation or f.tflite_evaluation or f.benchmark:
    produced = (f.produced_evaluation, f.produced_tflite_evaluation) if f.produced_evaluation else ()
    print(json.dumps(record_figures(f.name, f.evaluation, f.tflite_evaluation, f.benchmark,
                                    produced_paths=produced), indent=2))


def define_flags():
  from absl import flags
  flags.DEFINE_string("model_dir", None, "A tf-drnn-train model_dir to bundle (with --flagfile_path).")
  flags.DEFINE_string("flagfile_path", None, "The flagfile that trained it.")
  flags.DEFINE_string("name", "drnn2", "Bundled model name (a key of tf_drnn.models.BUNDLED_MODELS).")
  flags.DEFINE_string("evaluation", None, "tf-drnn-evaluate JSON of the Keras model (for the figures).")
  flags.DEFINE_string("tflite_evaluation", None, "tf-drnn-evaluate --method=tflite JSON of its int8 file.")
  flags.DEFINE_string("benchmark", None, "benchmarks/run.py results.json of the model.")
  flags.DEFINE_string("produced_evaluation", None, "tf-drnn-evaluate --dataset=stems --mono JSON of the Keras model.")
  flags.DEFINE_string("produced_tflite_evaluation", None, "The same for its int8 file (--model=FILE.tflite).")
  flags.register_multi_flags_validator(
      ["produced_evaluation", "produced_tflite_evaluation", "evaluation"],
      lambda v: bool(v["produced_evaluation"]) == bool(v["produced_tflite_evaluation"])
      and (v["evaluation"] or not v["produced_evaluation"]),
      "--produced_evaluation and --produced_tflite_evaluation go together, with --evaluation")
  flags.register_multi_flags_validator(
      ["model_dir", "flagfile_path"], lambda v: bool(v["model_dir"]) == bool(v["flagfile_path"]),
      "--model_dir and --flagfile_path go together")
  flags.register_multi_flags_validator(
      ["model_dir", "evaluation", "tflite_evaluation", "benchmark"],
      lambda v: (all(v[k] for k in ("evaluation", "tflite_evaluation", "benchmark"))
                 or not any(v[k] for k in ("evaluation", "tflite_evaluation", "benchmark"))) and any(v.values()),
      "pass --model_dir (and --flagfile_path), or all of --evaluation, --tflite_evaluation and --benchmark")


if __name__ == "__main__":
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main, import_tensorflow=False)
