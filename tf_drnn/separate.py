"""Separation of waveforms and files: the :class:`Separator` API and `tf-drnn-separate`.

Every path runs the trained model through :class:`tf_drnn.streaming.PcmStream` in blocks
of `block_frames` hops, so memory stays bounded whatever the input length, and the
result equals the offline model on the whole signal (:func:`offline_estimates`).
"""
import os

import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.errors import AudioFileError, OutputError, UserError

STEMS = ("vocals", "accompaniment")
PRETRAINED_DIR = os.path.join(os.path.dirname(__file__), "pretrained")
# Bundled pretrained models by name (tf_drnn/pretrained/<name>.keras; README "Results" has their scores).
BUNDLED_MODELS = {
    "drnn2": "the default: DRNN-2, 3 x 1000 units, best quality",
    "drnn2_compact": "DRNN-2, 3 x 320 units: under 0.1 ms per frame as int8 on one x86 core",
}
BUNDLED_MODEL = os.path.join(PRETRAINED_DIR, "drnn2.keras")


def masks_from_magnitudes(source_magnitudes, mixture_magnitude, binary=False):
  """Source magnitudes [..., S, bins] and |X| [..., bins] -> masks [..., 2, bins] (vocals, accompaniment).

  A one-source model's accompaniment mask is what the vocals leave: max(1 - m_vocals, 0).
  """
  import tensorflow as tf
  masks = source_magnitudes / (mixture_magnitude[..., None, :] + 1e-12)
  if masks.shape[-2] == 1:
    masks = tf.concat([masks, tf.nn.relu(1.0 - masks)], axis=-2)
  if binary:
    vocals_win = tf.cast(masks[..., 0, :] >= masks[..., 1, :], masks.dtype)
    masks = tf.stack([vocals_win, 1.0 - vocals_win], axis=-2)
  return masks


def offline_estimates(model, mixture, binary=False, config=DEFAULT_AUDIO_CONFIG):
  """Separates a whole mono waveform [samples] at once -> (vocals, accompaniment) [samples].

  The reference the streaming paths are tested against.
  """
  import tensorflow as tf
  from tf_drnn import spectral
  spectrum = spectral.stft(mixture, config)
  magnitude = tf.abs(spectrum)
  sources = model(magnitude[None], training=False)[0]
  masks = masks_from_magnitudes(sources, magnitude, binary)
  masked = tf.cast(masks, tf.complex64) * spectrum[:, None, :]  # [frames, 2, bins]
  estimates = spectral.istft(tf.transpose(masked, [1, 0, 2]), len(mixture), config)
  return np.asarray(estimates[0]), np.asarray(estimates[1])


def resolve_model_path(path=None):
  """The .keras file for `path`: a .keras file, a training model_dir, a bundled model's name
  (see BUNDLED_MODELS) or None (the default bundled model)."""
  if path is None or os.fspath(path) == "":
    if not os.path.isfile(BUNDLED_MODEL):
      raise UserError(f"{BUNDLED_MODEL}: the bundled model is not installed; pass --model=PATH "
                      "(a .keras file or a training model_dir)")
    return BUNDLED_MODEL
  path = os.fspath(path)
  if path in BUNDLED_MODELS and not os.path.exists(path):
    bundled = os.path.join(PRETRAINED_DIR, path + ".keras")
    if not os.path.isfile(bundled):
      raise UserError(f"{bundled}: the bundled model {path!r} is not installed")
    return bundled
  if os.path.isdir(path):
    candidate = os.path.join(path, "model.keras")
    if not os.path.isfile(candidate):
      raise UserError(f"{path}: no such model file (no model.keras in this directory)")
    return candidate
  if not os.path.exists(path):
    raise UserError(f"{path}: no such model file")
  if not path.endswith(".keras"):
    raise UserError(f"{path}: expected a .keras model file or a training model_dir")
  return path


def load_model(model=None):
  """A Keras model from None (the bundled one), a .keras file, a training model_dir, or a model."""
  if model is not None and not isinstance(model, (str, os.PathLike)):
    return model
  path = resolve_model_path(model)
  import zipfile
  if not zipfile.is_zipfile(path):
    raise UserError(f"{path}: cannot load model: not a Keras model file (a .keras file is a zip archive; this is not one)")
  import keras
  import tf_drnn.model  # noqa: F401  (registers the custom layers)
  import tf_drnn.losses  # noqa: F401
  try:
    return keras.models.load_model(path, compile=False)
  except Exception as error:  # A corrupt or foreign file: one line, no traceback.
    message = str(error).strip().splitlines()
    raise UserError(f"{path}: cannot load model ({message[0][:200] if message else type(error).__name__})") from None


class Separator:
  """Separates vocals from accompaniment with a trained DRNN.

  Args:
    model: None (the bundled pretrained model), a .keras path, a training model_dir, or a
      Keras model from :func:`tf_drnn.model.build_model`.
    binary_mask: Use a binary instead of the soft time-frequency mask.
    block_frames: STFT hops processed per model call (memory vs. call overhead).
    high_band: How the band the model does not see (above its Nyquist, at input rates over
      the model's) is split: "hold" (default), "average" or "accompaniment"; see
      tf_drnn.fullband.HIGH_BAND_RULES.
  """

  def __init__(self, model=None, binary_mask=False, block_frames=512, config=DEFAULT_AUDIO_CONFIG,
               high_band=None):
    from tf_drnn import fullband
    self.model = load_model(model)
    self.binary_mask = binary_mask
    self.config = config
    self.block_samples = block_frames * config.hop_length
    self.high_band = fullband.check_rule(high_band or fullband.DEFAULT_HIGH_BAND)
    self._streams = {}

  def stream(self, channels, with_masks=False):
    """(PcmStream, compiled step) for a channel count; built once and reused.

    with_masks: the step is PcmStream.separate_with_masks (also returns the masks).
    """
    if (channels, with_masks) not in self._streams:
      import tensorflow as tf
      from tf_drnn.streaming import PcmStream
      stream = (self._streams[channels, False][0] if (channels, False) in self._streams
                else PcmStream(self.model, channels, self.binary_mask, self.config))
      step = tf.function(stream.separate_with_masks if with_masks else stream.__call__, input_signature=[
          tf.TensorSpec([channels, self.block_samples], tf.float32),
          tf.TensorSpec([1, stream.state_size], tf.float32)], reduce_retracing=True)
      self._streams[channels, with_masks] = (stream, step)
    return self._streams[channels, with_masks]

  def separate(self, waveform, sample_rate):
    """waveform [samples] or [samples, channels] at `sample_rate` Hz -> {"vocals", "accompaniment"}.

    Outputs have the input's shape and rate, and add up to the input; at rates above the
    model's, the band it does not see is split by `high_band` (tf_drnn.fullband). Stereo
    input is separated with a mask computed from the channel mean and applied to each channel.
    """
    from tf_drnn.audio import fit_length
    from tf_drnn.fullband import FullBandRunner
    waveform = np.asarray(waveform, np.float32)
    if waveform.ndim not in (1, 2) or waveform.shape[0] == 0:
      raise ValueError(f"waveform must be [samples] or [samples, channels], got shape {waveform.shape}")
    if not np.all(np.isfinite(waveform)):
      raise ValueError("waveform contains NaN or infinite samples")
    _check_waveform_limits(waveform)
    multichannel = waveform.reshape(len(waveform), -1)
    runner = FullBandRunner(self, sample_rate, multichannel.shape[1])
    parts = [runner.process(multichannel), runner.finish()]
    result = {}
    for i, name in enumerate(STEMS):
      stem = fit_length(np.concatenate([part[i] for part in parts]), len(waveform))
      result[name] = stem.reshape(waveform.shape)
    return result

  def separate_file(self, path, output_dir, overwrite=False, subtype=None, progress=None):
    """Separates one audio file into DIR/<stem>_vocals.<ext> and DIR/<stem>_accompaniment.<ext>.

    Reads, resamples, separates and writes in blocks (bounded memory); outputs keep the
    input's sample rate, channels and length, and appear only when complete.
    Returns the two output paths.
    """
    return _separate_file(self, path, output_dir, overwrite, subtype, progress)


def _check_waveform_limits(waveform):
  """ValueError for an absurd amplitude or too many channels (tf_drnn.audio.MAX_PEAK, MAX_CHANNELS)."""
  from tf_drnn.audio import MAX_CHANNELS, MAX_PEAK
  if np.max(np.abs(waveform)) > MAX_PEAK:
    raise ValueError(f"waveform has samples of magnitude over {MAX_PEAK:g} (full scale is 1)")
  if waveform.ndim == 2 and waveform.shape[1] > MAX_CHANNELS:
    raise ValueError(f"waveform has {waveform.shape[1]} channels; at most {MAX_CHANNELS} are supported")


class BlockRunner:
  """Feeds samples at the model rate through a PcmStream in fixed blocks, trimming the latency.

  process(samples [n, channels]) and finish() return lists of (vocals, accompaniment)
  arrays [m, channels], aligned with the input (latency removed). with_masks: also keep
  each offline frame's vocal mask and mixture magnitude, in order, for take_masks().
  """

  def __init__(self, separator, channels, with_masks=False):
    self.channels = channels
    self.with_masks = with_masks
    self.stream, self.step = separator.stream(channels, with_masks)
    self._masks, self._magnitudes = [], []
    self.preroll_frames = self.stream.delay  # mask rows before offline frame 0
    self.block = separator.block_samples
    self.state = self.stream.initial_state()
    self.pending = np.zeros((0, channels), np.float32)
    self.to_skip = self.stream.latency_samples
    self.consumed = 0
    self.emitted = 0

  def take_masks(self):
    """(vocal mask, magnitude) [frames, bins] of the offline frames since the last call."""
    bins = self.stream.frames.num_bins
    masks = np.concatenate(self._masks) if self._masks else np.zeros((0, bins), np.float32)
    magnitudes = np.concatenate(self._magnitudes) if self._magnitudes else np.zeros((0, bins), np.float32)
    self._masks, self._magnitudes = [], []
    return masks, magnitudes

  def _run(self, block):
    if self.with_masks:
      vocals, accompaniment, self.state, mask, magnitude = self.step(block.T, self.state)
      skip = min(self.preroll_frames, len(mask))
      self.preroll_frames -= skip
      self._masks.append(np.asarray(mask)[skip:])
      self._magnitudes.append(np.asarray(magnitude)[skip:])
    else:
      vocals, accompaniment, self.state = self.step(block.T, self.state)
    out = [np.asarray(vocals).T, np.asarray(accompaniment).T]
    skip = min(self.to_skip, len(out[0]))
    self.to_skip -= skip
    out = [o[skip:] for o in out]
    self.emitted += len(out[0])
    return tuple(out)

  def process(self, samples):
    self.consumed += len(samples)
    self.pending = np.concatenate([self.pending, samples.astype(np.float32)])
    outputs = []
    while len(self.pending) >= self.block:
      outputs.append(self._run(self.pending[:self.block]))
      self.pending = self.pending[self.block:]
    return outputs

  def finish(self):
    """Flushes: pads with zeros until every input sample has come out."""
    outputs = []
    flush = np.zeros((self.stream.latency_samples, self.channels), np.float32)
    self.pending = np.concatenate([self.pending, flush])
    while self.emitted < self.consumed:
      if len(self.pending) < self.block:
        self.pending = np.concatenate(
            [self.pending, np.zeros((self.block - len(self.pending), self.channels), np.float32)])
      outputs.append(self._run(self.pending[:self.block]))
      self.pending = self.pending[self.block:]
    excess = self.emitted - self.consumed
    if excess > 0 and outputs:
      last = outputs[-1]
      outputs[-1] = tuple(o[:len(o) - excess] for o in last)
      self.emitted -= excess
    return outputs


def output_paths(path, output_dir):
  stem, extension = os.path.splitext(os.path.basename(path))
  extension = extension.lower() if extension.lower() in (".wav", ".flac", ".ogg") else ".wav"
  return [os.path.join(output_dir, f"{stem}_{name}{extension}") for name in STEMS]


def plan_outputs(paths, output_dir, overwrite=False, subtype=None, extra_targets=None):
  """Every output of a run, checked before any work -> [(input path, its target paths)].

  Targets are output_paths(path) plus `extra_targets(path)` (the demo's figure). Raises one
  UserError (the first problem, and how many more) when: the output folder cannot be written;
  `subtype` is unknown or cannot be written in a target's format; a target is one of the inputs
  (never replaced, even with `overwrite`); two inputs would write the same target (inputs with
  the same name, e.g. a/song.wav and b/song.wav, or song.wav and song.mp3: separate them into
  different folders); a target exists and is not a regular file; or it exists and not `overwrite`.
  """
  import soundfile
  from tf_drnn.atomic import check_output_dir
  check_output_dir(output_dir)
  paths = [os.fspath(p) for p in paths]
  problems = []
  if subtype is not None and subtype.upper() not in soundfile.available_subtypes():
    problems.append(f"unknown --subtype={subtype} (choose one of {', '.join(sorted(soundfile.available_subtypes()))})")
  inputs = set()
  for path in paths:
    try:
      status = os.stat(path)
      inputs.add((status.st_dev, status.st_ino))
    except OSError:
      pass  # A missing input is reported when its turn comes.
  owners, plan, existing = {}, [], []
  for path in paths:
    audio = output_paths(path, output_dir)
    targets = audio + list(extra_targets(path) if extra_targets else [])
    for target in targets:
      key = os.path.realpath(target)
      if key in owners:
        problems.append(f"{target}: both {owners[key]} and {path} would write it (inputs with the same name); "
                        "separate them into different --output_dir folders")
        continue
      owners[key] = path
      if target in audio and subtype is not None and not problems and not soundfile.check_format(
          os.path.splitext(target)[1].lstrip(".").upper(), subtype.upper()):
        problems.append(f"{target}: --subtype={subtype} cannot be written as "
                        f"{os.path.splitext(target)[1].lstrip('.').upper()}")
      if not os.path.lexists(target):
        continue
      try:
        status = os.stat(target)
        is_input = (status.st_dev, status.st_ino) in inputs
      except OSError:
        is_input = False
      if is_input:
        problems.append(f"{target}: is an input of this run, never overwritten; choose another --output_dir")
      elif not os.path.isfile(target):
        problems.append(f"{target}: exists and is not a regular file; it cannot be replaced")
      elif not overwrite:
        existing.append(f"{target}: already exists (pass --overwrite to replace it)")
    plan.append((path, targets))
  problems += existing  # Last: --overwrite is suggested only where it loses nothing but old outputs.
  if problems:
    more = f" (and {len(problems) - 1} more problem(s) with the outputs)" if len(problems) > 1 else ""
    raise UserError(problems[0] + more)
  return plan


def _separate_file(separator, path, output_dir, overwrite, subtype, progress):
  import soundfile
  from tf_drnn.audio import check_channels, check_not_silent, check_readable, read_audio, truncation_warning

  path = os.fspath(path)
  targets = plan_outputs([path], output_dir, overwrite, subtype)[0][1]
  check_readable(path)
  try:
    info = soundfile.info(path)
    blockwise = info.frames > 0
  except Exception:
    blockwise = False
  if blockwise:
    if info.samplerate <= 0:
      raise AudioFileError(path, f"invalid sample rate {info.samplerate} in the header")
    check_channels(path, info.channels)
    note = truncation_warning(path, info.frames)
    if note:
      import sys
      print(f"warning: {note}", file=sys.stderr)
  else:  # Formats only librosa/audioread decode: whole file in memory.
    waveform, rate = read_audio(path)
    check_channels(path, waveform.shape[1])
    check_not_silent(path, waveform)
    info = None
  with _AtomicStemWriters(targets, info, path, subtype) as writers:
    if blockwise:
      _separate_blocks(separator, path, info, writers, progress)
    else:
      stems = separator.separate(waveform, rate)
      writers.open(rate, waveform.shape[1])
      writers.write([stems[name] for name in STEMS])
  return targets


def _separate_blocks(separator, path, info, writers, progress):
  import soundfile
  from tf_drnn.audio import check_samples
  from tf_drnn.fullband import FullBandRunner
  channels, rate, total = info.channels, info.samplerate, info.frames
  writers.open(rate, channels)
  runner = FullBandRunner(separator, rate, channels)
  written = 0
  any_sound = False

  def emit(stems):
    nonlocal written
    stems = [stem[:max(total - written, 0)] for stem in stems]
    writers.write(stems)
    written += len(stems[0])

  read_block = max(rate * 10, 1)
  try:
    with soundfile.SoundFile(path) as f:
      for block in f.blocks(blocksize=read_block, dtype="float32", always_2d=True):
        check_samples(path, block)
        any_sound = any_sound or bool(np.any(block))
        emit(runner.process(block))
        if progress is not None:
          progress(len(block))
  except AudioFileError:
    raise
  except Exception as error:
    raise AudioFileError(path, f"corrupt audio ({str(error).splitlines()[0][:120]})") from None
  if not any_sound:
    raise AudioFileError(path, "silent audio (all samples are zero)")
  emit(runner.finish())
  if written < total:
    pad = np.zeros((total - written, channels), np.float32)
    writers.write([pad, pad])


class _AtomicStemWriters:
  """Writes the stems to temporary files; both are renamed into place together, only when all is
  written (tf_drnn.atomic.atomic_outputs). A failed write is an OutputError naming the target."""

  def __init__(self, targets, info, source_path, subtype):
    import contextlib
    self.targets, self.info, self.subtype = targets, info, subtype
    self.files = []
    self._stack = contextlib.ExitStack()

  def open(self, rate, channels):
    import soundfile
    for target, tmp in zip(self.targets, self.tmps):
      fmt = os.path.splitext(target)[1].lstrip(".").upper()
      subtype = self.subtype or (self.info.subtype if self.info is not None and fmt == self.info.format
                                 else None)
      if subtype is not None and not soundfile.check_format(fmt, subtype):
        subtype = None  # The input's subtype does not fit this format (--subtype is checked up front).
      try:
        self.files.append(self._stack.enter_context(
            soundfile.SoundFile(tmp, "w", samplerate=rate, channels=channels, format=fmt, subtype=subtype)))
      except (OSError, RuntimeError) as error:
        raise output_error(target, error) from None

  def write(self, stems):
    for target, f, stem in zip(self.targets, self.files, stems):
      try:
        f.write(np.clip(stem, -1.0, 1.0) if f.subtype.startswith("PCM") else stem)
      except (OSError, RuntimeError) as error:
        raise output_error(target, error) from None

  def __enter__(self):
    from tf_drnn.atomic import atomic_outputs
    self._stack.__enter__()
    try:
      self.tmps = self._stack.enter_context(atomic_outputs(self.targets))
    except OSError as error:
      self._stack.__exit__(None, None, None)
      raise output_error(self.targets[0], error) from None
    return self

  def __exit__(self, exc_type, exc, tb):
    try:
      return self._stack.__exit__(exc_type, exc, tb)
    except (OSError, RuntimeError) as error:  # Flushing or renaming into place failed.
      if exc is not None:
        raise exc
      raise output_error(getattr(error, "filename", None) or self.targets[0], error) from None


def output_error(target, error):
  """An OSError or libsndfile error while writing `target` -> OutputError (fatal: full disk, read-only)."""
  import errno
  import shutil
  fatal_codes = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM)
  code = getattr(error, "errno", None)
  if isinstance(error, OSError) and code:
    return OutputError(target, f"cannot write: {os.strerror(code)}", fatal=code in fatal_codes)
  line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  try:
    full = shutil.disk_usage(os.path.dirname(os.path.abspath(target))).free < 1 << 20
  except OSError:
    full = False
  if full:
    return OutputError(target, f"cannot write: {os.strerror(errno.ENOSPC)}", fatal=True)
  # libsndfile reports every failed write(2) as "System error." (the errno is not kept).
  return OutputError(target, f"cannot write ({line})", fatal="System error" in line)


# --- command line -------------------------------------------------------------------------------

def define_flags():
  from absl import flags
  flags.DEFINE_string("model", None, "A .keras model, a tf-drnn-train model_dir, or a bundled "
                      "model's name: drnn2 (default) or drnn2_compact (faster, smaller).")
  flags.DEFINE_string("output_dir", None, "Where <name>_vocals and <name>_accompaniment files go. Every "
                      "output is checked before any file is separated: two inputs with the same name "
                      "(a/song.wav b/song.wav, or song.wav song.mp3) are an error, not renamed; separate "
                      "them into different folders.")
  flags.DEFINE_bool("binary_mask", False, "Binary instead of soft time-frequency mask.")
  flags.DEFINE_string("subtype", None, "Output subtype, e.g. PCM_16, PCM_24, FLOAT (default: the input's); "
                      "an unknown one, or one the output format cannot hold, is an error.")
  flags.DEFINE_bool("overwrite", False, "Replace existing outputs, both stems together or neither (an input "
                    "of the run is never overwritten).")
  from tf_drnn.fullband import DEFAULT_HIGH_BAND, HIGH_BAND_RULES
  flags.DEFINE_enum("high_band", DEFAULT_HIGH_BAND, list(HIGH_BAND_RULES),
                    "How the band above the model's 8 kHz is split at higher input rates: "
                    + "; ".join(f"{k}: {v}" for k, v in HIGH_BAND_RULES.items()) + ".")
  flags.mark_flag_as_required("output_dir")


def main(argv, values=None):
  """The command; `values` (default: the parsed absl flags) has the define_flags() attributes."""
  import sys
  from absl import flags
  from tqdm import tqdm
  from tf_drnn.cli_util import run_guarded
  paths = argv[1:]
  if not paths:
    print("error: no input files (usage: tf-drnn-separate --output_dir=DIR FILE...)", file=sys.stderr)
    sys.exit(2)
  values = values or flags.FLAGS
  run_guarded(lambda: plan_outputs(paths, values.output_dir, values.overwrite, values.subtype))
  separator = run_guarded(lambda: Separator(values.model, binary_mask=values.binary_mask,
                                            high_band=values.high_band))
  failures = 0
  interactive = sys.stderr.isatty()  # progress bars for people, clean lines for logs
  for path in tqdm(paths, desc="files", unit="file", disable=len(paths) < 2 or not interactive):
    frames = _frame_count(path)
    bar = tqdm(total=frames, desc=os.path.basename(path), unit="sample", unit_scale=True, leave=False,
               disable=frames is None or not interactive)
    try:
      outputs = separator.separate_file(path, values.output_dir, values.overwrite, values.subtype, bar.update)
      tqdm.write(f"{path} -> {', '.join(outputs)}")
    except UserError as error:
      failures += 1
      tqdm.write(f"error: {error}", file=sys.stderr)
      if getattr(error, "fatal", False):  # Full disk, read-only folder: the next files would fail too.
        bar.close()
        print(f"stopped: {len(paths) - paths.index(path) - 1} file(s) not attempted", file=sys.stderr)
        sys.exit(1)
    finally:
      bar.close()
  if failures:
    print(f"{failures} of {len(paths)} file(s) failed", file=sys.stderr)
    sys.exit(1)


def _frame_count(path):
  try:
    import soundfile
    if not os.path.isfile(path):  # Never open a pipe or a device (it may block).
      return None
    return soundfile.info(path).frames
  except Exception:
    return None


def run():
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main)


if __name__ == "__main__":
  run()
