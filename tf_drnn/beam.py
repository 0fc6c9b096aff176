"""`tf-drnn-separate-beam`: separates a whole catalogue with Apache Beam (the `beam` extra).

    pip install "tf-drnn[beam]"      # in a checkout: pip install ".[beam]"
    tf-drnn-separate-beam --input_pattern='songs/*.wav,songs/*.flac' --output_dir=out \
        --direct_num_workers=2 --direct_running_mode=multi_processing

Each song is separated as tf-drnn-separate separates it (Separator.separate_file: full band,
blockwise, the same names, formats and bytes): the input is copied to a local temporary folder
when it is not local, separated there, and its two stems are copied to --output_dir (a prefix any
Beam filesystem writes: a folder, gs://...) under temporary names, then renamed into place, so a
retried bundle never leaves half a stem. The model is loaded once per worker (DoFn.setup).

Resumable: a song whose two stems exist already is skipped (unless --overwrite), so a rerun after
a crash does only what is left. Nothing lost: a bad song (a tf_drnn.errors.UserError: corrupt,
silent, too many channels...) becomes a line of OUTPUT_DIR/failures-*.jsonl ({"path", "reason"})
and the others go on; OUTPUT_DIR/manifest-*.jsonl has a line for every output (new or existing)
with its duration. Beam Metrics counters (namespace "tf_drnn"): songs_done, songs_skipped,
songs_failed, audio_milliseconds. Flags this command does not define go to Beam's
PipelineOptions (--runner, --direct_num_workers, Flink, Spark and Dataflow flags).

Only this module imports apache_beam; the core package never imports it.
"""
import json
import logging
import os
import shutil
import sys
import tempfile
import time

from tf_drnn.errors import UserError, first_line
from tf_drnn.stems import STEMS, output_paths

_logging_disabled = logging.root.manager.disable
logging.disable(logging.WARNING)  # Beam warns on import about optional GCP clients it does not find.
try:
  import apache_beam as beam
  from apache_beam.io.filesystem import CompressionTypes
  from apache_beam.io.filesystems import FileSystems
except ImportError:  # The extra is not installed: run() says so in one line.
  beam = None
finally:
  logging.disable(_logging_disabled)

NAMESPACE = "tf_drnn"
COUNTERS = ("songs_done", "songs_skipped", "songs_failed", "audio_milliseconds")
FAILURES = "failures"
USAGE = "tf-drnn-separate-beam --input_pattern=PATTERN[,PATTERN...] --output_dir=DIR [flags] [Beam pipeline flags]"
INSTALL_HINT = ('tf-drnn-separate-beam needs Apache Beam: pip install "tf-drnn[beam]" '
                '(in a checkout: pip install ".[beam]")')

# This command's flags (name -> boolean?); every other flag goes to Beam.
_OWN_FLAGS = {"input_pattern": False, "output_dir": False, "model": False, "overwrite": True, "subtype": False,
              "high_band": False, "binary_mask": True}
_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "h", "?")
_BEAM_ARGS = []  # Filled by run() from the command line.


def is_local(path):
  """True for a path of the local file system (no scheme://)."""
  return FileSystems.get_scheme(path) is None


def output_names(path):
  """The file names of `path`'s stems, as tf-drnn-separate names them (tf_drnn.stems.output_paths)."""
  return [os.path.basename(p) for p in output_paths(path.rstrip("/").rsplit("/", 1)[-1], "")]


def output_targets(path, output_dir):
  return [FileSystems.join(output_dir, name) for name in output_names(path)]


def _copy(source, target):
  """Copies one file between any two Beam filesystems, byte for byte."""
  with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as src, \
       FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED) as dst:
    shutil.copyfileobj(src, dst, 1 << 20)


def put_in_place(local_file, target):
  """Copies `local_file` to `target` under a temporary name beside it, then renames it into place:
  readers (and a rerun) see the whole file or none of it."""
  import uuid
  folder, name = FileSystems.split(target)
  tmp = FileSystems.join(folder, f".tmp-{uuid.uuid4().hex[:12]}-{name}")
  try:
    _copy(local_file, tmp)
    FileSystems.rename([tmp], [target])
  except BaseException:
    try:
      if FileSystems.exists(tmp):
        FileSystems.delete([tmp])
    except Exception:  # The first error is the one to report.
      pass
    raise


def _audio_facts(path):
  """{"duration_s", "sample_rate", "channels"} of an audio file on any filesystem; None if unreadable."""
  import soundfile
  try:
    if is_local(path):
      info = soundfile.info(path)
    else:
      with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        info = soundfile.info(f)
    return {"duration_s": round(info.frames / info.samplerate, 6), "sample_rate": info.samplerate,
            "channels": info.channels}
  except Exception:
    return None


class SeparateSongs(beam.DoFn if beam else object):
  """(output name, [input paths]) -> manifest rows; failures ({"path", "reason"}) tagged FAILURES.

  Two inputs that would write the same outputs (a/song.wav and b/song.wav, song.wav and song.mp3)
  are both failures, as tf-drnn-separate refuses them. A UserError of the song is a failure; any
  other error (the model, the worker, full temporary disk) propagates, so Beam retries the bundle.
  """

  def __init__(self, output_dir, model=None, overwrite=False, subtype=None, high_band=None, binary_mask=False):
    super().__init__()
    self.output_dir, self.model, self.overwrite, self.subtype = output_dir, model, overwrite, subtype
    self.high_band, self.binary_mask = high_band, binary_mask
    self.counters = {name: beam.metrics.Metrics.counter(NAMESPACE, name) for name in COUNTERS}

  def setup(self):
    from tf_drnn.separate import Separator
    self.work = tempfile.mkdtemp(prefix="tf_drnn_beam_")
    self.separator = Separator(self._local_model(), binary_mask=self.binary_mask, high_band=self.high_band)

  def teardown(self):
    shutil.rmtree(getattr(self, "work", ""), ignore_errors=True)

  def _local_model(self):
    """--model, copied (with a .tflite file's sidecar .json) into the worker's folder when remote."""
    if not self.model or is_local(self.model):
      return self.model
    folder = os.path.join(self.work, "model")
    os.makedirs(folder, exist_ok=True)
    local = os.path.join(folder, FileSystems.split(self.model)[1])
    _copy(self.model, local)
    if local.endswith(".tflite"):
      from tf_drnn.litert import sidecar_path
      _copy(sidecar_path(self.model), sidecar_path(local))
    return local

  def process(self, element):
    key, paths = element
    paths = sorted(set(paths))  # One file matched by two patterns is one song.
    if len(paths) > 1:
      for path in paths:
        self.counters["songs_failed"].inc()
        others = ", ".join(p for p in paths if p != path)
        yield beam.pvalue.TaggedOutput(FAILURES, {
            "path": path, "reason": f"{path}: {others} would write the same outputs ({key}...); "
            "separate inputs with the same name into different --output_dir folders"})
      return
    yield from self._song(paths[0])

  def _song(self, path):
    targets = output_targets(path, self.output_dir)
    if not self.overwrite and all(FileSystems.exists(t) for t in targets):
      self.counters["songs_skipped"].inc()
      for name, target in zip(STEMS, targets):
        yield manifest_row(path, name, target, "existing", _audio_facts(target))
      return
    song = tempfile.mkdtemp(dir=self.work)
    try:
      local = path
      if not is_local(path):
        local = os.path.join(song, "in", FileSystems.split(path)[1])
        os.makedirs(os.path.dirname(local))
        _copy(path, local)
      try:
        outputs = self.separator.separate_file(local, os.path.join(song, "out"), overwrite=True,
                                               subtype=self.subtype)
      except UserError as error:
        if getattr(error, "fatal", False):  # This worker's temporary disk is full or read-only.
          raise
        self.counters["songs_failed"].inc()
        yield beam.pvalue.TaggedOutput(FAILURES, {"path": path, "reason": str(error).replace(local, path)})
        return
      facts = _audio_facts(outputs[0])
      for output, target in zip(outputs, targets):
        put_in_place(output, target)
      self.counters["songs_done"].inc()
      self.counters["audio_milliseconds"].inc(int(round(1000 * facts["duration_s"])))
      for name, target in zip(STEMS, targets):
        yield manifest_row(path, name, target, "separated", facts)
    finally:
      shutil.rmtree(song, ignore_errors=True)


def manifest_row(path, stem, output, status, facts):
  return {"input": path, "stem": stem, "output": output, "status": status, **(facts or {"duration_s": None})}


def _keyed(path, output_dir):
  """(name of the vocals output, path); nothing for a file inside --output_dir (an earlier output)."""
  inside = output_dir.rstrip("/") + "/"
  if not path.startswith(inside):
    yield output_names(path)[0], path


def _match_path(metadata):
  return metadata.path


def _to_json(row):
  return json.dumps(row, sort_keys=True)


def build_pipeline(pipeline, patterns, output_dir, **separation):
  """Adds the catalogue's separation to `pipeline`: match `patterns`, group by output name, separate,
  write OUTPUT_DIR/manifest-*.jsonl and OUTPUT_DIR/failures-*.jsonl (one file each, replaced per run).
  separation: SeparateSongs's keyword arguments (model, overwrite, subtype, high_band, binary_mask)."""
  from apache_beam.io import fileio
  songs = (pipeline
           | "Patterns" >> beam.Create(list(patterns))
           | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
           | "Paths" >> beam.Map(_match_path)
           | "KeyByOutput" >> beam.FlatMap(_keyed, output_dir)
           | "GroupByOutput" >> beam.GroupByKey())  # Also spreads the songs over the workers.
  results = songs | "Separate" >> beam.ParDo(SeparateSongs(output_dir, **separation)).with_outputs(
      FAILURES, main="manifest")
  for tag, name in (("manifest", "manifest"), (FAILURES, "failures")):
    (results[tag]
     | f"{name.title()}Json" >> beam.Map(_to_json)
     | f"Write{name.title()}" >> beam.io.WriteToText(FileSystems.join(output_dir, name), file_name_suffix=".jsonl",
                                                     num_shards=1))
  return results


def run_pipeline(patterns, output_dir, beam_args=(), **separation):
  """Runs the pipeline to its end -> {counter: value, "wall_seconds": s}. beam_args: PipelineOptions'
  command line (--runner...). separation: see build_pipeline."""
  from apache_beam.metrics.metric import MetricsFilter
  from apache_beam.options.pipeline_options import PipelineOptions
  start = time.perf_counter()
  beam_args = list(beam_args)
  if not any(arg.lstrip("-").startswith("default_sdk_harness_log_level") for arg in beam_args):
    beam_args.append("--default_sdk_harness_log_level=WARNING")  # Workers' INFO lines are no news.
  pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
  build_pipeline(pipeline, patterns, output_dir, **separation)
  result = pipeline.run()
  result.wait_until_finish()
  summary = dict.fromkeys(COUNTERS, 0)
  for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
    value = counter.committed if counter.committed is not None else counter.attempted
    summary[counter.key.metric.name] = summary.get(counter.key.metric.name, 0) + (value or 0)
  summary["wall_seconds"] = time.perf_counter() - start
  return summary


# --- command line -------------------------------------------------------------------------------


def define_flags():
  from absl import flags
  from tf_drnn import separate
  separate.define_flags()  # --model, --output_dir, --subtype, --overwrite, --high_band, --binary_mask
  flags.adopt_module_key_flags(separate)  # listed by --help as this command's own
  flags.DEFINE_list("input_pattern", None, "Input files: one or more comma-separated patterns (songs/*.wav, "
                    "gs://bucket/songs/*.flac), matched with Beam's FileSystems.")
  flags.FLAGS["output_dir"].help = ("Where <name>_vocals and <name>_accompaniment files, manifest-*.jsonl and "
                                    "failures-*.jsonl go: a folder or any Beam filesystem's prefix (gs://...).")
  flags.FLAGS["overwrite"].help = "Separate songs again whose two stems exist already (default: skip them)."
  flags.mark_flag_as_required("input_pattern")


def split_args(argv):
  """(argv for absl, args for Beam's PipelineOptions): the flags this command defines (and absl's
  own) stay; every other flag, with its value (`--runner DirectRunner` or `--runner=...`), and
  everything after `--`, goes to Beam."""
  from absl import flags
  ours, rest = [argv[0]], []
  args, i, last = list(argv[1:]), 0, ours
  while i < len(args):
    arg = args[i]
    if arg == "--":
      rest += args[i + 1:]
      break
    if arg.startswith("-") and len(arg) > 1:
      kind = _flag_kind(flags.FLAGS, arg.lstrip("-").split("=", 1)[0])
      last = rest if kind is None else ours
      last.append(arg)
      if kind == "value" and "=" not in arg and i + 1 < len(args):  # --model NAME
        last.append(args[i + 1])
        i += 1
    else:
      last.append(arg)  # A Beam flag's value, or a stray argument (refused by main).
    i += 1
  return ours, rest


def _flag_kind(defined, name):
  """"bool" or "value" for a flag of this command or absl's; None for any other (Beam's)."""
  kinds = {n: "bool" if boolean else "value" for n, boolean in _OWN_FLAGS.items()}
  kinds.update(dict.fromkeys(_HELP_FLAGS, "bool"))
  for n in defined:
    kinds.setdefault(n, "bool" if defined[n].boolean else "value")
  if name in kinds:
    return kinds[name]
  return "bool" if name.startswith("no") and kinds.get(name[2:]) == "bool" else None


def check_settings(values):
  """(patterns, output_dir), checked before the pipeline starts: local paths made absolute, every
  pattern matching a file, a local output folder writable, --subtype known, --model found. UserError."""
  import soundfile
  absolute = lambda path: os.path.abspath(path) if is_local(path) else path
  patterns = [absolute(p.strip()) for p in values.input_pattern if p.strip()]
  if not patterns:
    raise UserError("--input_pattern is empty")
  output_dir = absolute(values.output_dir)
  if is_local(output_dir):
    from tf_drnn.atomic import check_output_dir
    check_output_dir(output_dir)
  subtype = values.subtype
  if subtype is not None and subtype.upper() not in soundfile.available_subtypes():
    raise UserError(f"unknown --subtype={subtype} (choose one of {', '.join(sorted(soundfile.available_subtypes()))})")
  for pattern in patterns:
    try:
      found = FileSystems.match([pattern], limits=[1])[0].metadata_list
    except Exception as error:  # A filesystem Beam lacks (gs:// without apache-beam[gcp]), no access...
      raise UserError(f"--input_pattern {pattern}: {first_line(error, 300, empty='')}") from None
    if not found:
      raise UserError(f"--input_pattern {pattern}: matches no file")
  model = values.model
  if model and not is_local(model):
    if not FileSystems.exists(model):
      raise UserError(f"{model}: no such model file")
  elif model and model.endswith(".tflite"):
    from tf_drnn.audio import check_readable
    from tf_drnn.errors import AudioFileError
    from tf_drnn.litert import read_sidecar
    try:
      check_readable(model)
    except AudioFileError as error:
      raise UserError(f"{model}: {error.problem}") from None
    read_sidecar(model)
  else:
    from tf_drnn.models import resolve_model_path
    resolve_model_path(model)
  return patterns, output_dir


def main(argv, values=None, beam_args=None):
  """The command; `values` (default: the parsed absl flags) has the define_flags() attributes;
  beam_args (default: what run() set aside) go to Beam's PipelineOptions."""
  from absl import flags
  from tf_drnn.cli_util import check_arguments, run_guarded
  values = values or flags.FLAGS
  run_guarded(lambda: check_arguments(argv))
  logging.getLogger("apache_beam").setLevel(logging.WARNING)  # Beam's INFO lines bury the summary.
  patterns, output_dir = run_guarded(lambda: check_settings(values))
  try:
    summary = run_pipeline(patterns, output_dir, _BEAM_ARGS if beam_args is None else beam_args,
                           model=values.model, overwrite=values.overwrite, subtype=values.subtype,
                           high_band=values.high_band, binary_mask=values.binary_mask)
  except (KeyboardInterrupt, SystemExit):
    raise
  except Exception as error:
    line = first_line(error, 300, empty="")
    print(f"error: the pipeline failed ({type(error).__name__}: {line}); finished songs are kept, run the "
          "same command again to do the rest", file=sys.stderr)
    sys.exit(1)
  print(f"{summary['songs_done']} song(s) separated, {summary['songs_skipped']} skipped (outputs exist), "
        f"{summary['songs_failed']} failed; {summary['audio_milliseconds'] / 1000:.1f} s of audio in "
        f"{summary['wall_seconds']:.1f} s; manifest and failures: {FileSystems.join(output_dir, '*.jsonl')}")
  if summary["songs_failed"]:
    print(f"{summary['songs_failed']} song(s) failed: see {FileSystems.join(output_dir, 'failures-*.jsonl')}",
          file=sys.stderr)
    sys.exit(1)


def run():
  from tf_drnn.cli_util import run_app
  if beam is None:
    print(f"error: {INSTALL_HINT}", file=sys.stderr)
    sys.exit(2)

  def define_and_split():  # run_app parses sys.argv after defining the flags: keep only ours there.
    define_flags()
    sys.argv[:], _BEAM_ARGS[:] = split_args(sys.argv)

  run_app(define_and_split, main, import_tensorflow=False, usage=USAGE)


if __name__ == "__main__":
  run()
