"""Separation of waveforms and files: the :class:`Separator` API and `tf-drnn-separate`.

Every path runs the trained model through :class:`tf_drnn.streaming.PcmStream` in blocks
of `block_frames` hops, so memory stays bounded whatever the input length, and the
result equals the offline model on the whole signal (:func:`tf_drnn.models.offline_estimates`).
Only the package's public API (`tf_drnn.Separator`) and this command import this module.
"""
import os

import numpy as np

from tf_drnn.errors import AudioFileError, UserError, first_line
from tf_drnn.stems import STEMS, AtomicStemWriters, plan_outputs


class Separator:
  """Separates vocals from accompaniment with a trained DRNN.

  Args:
    model: None (the bundled pretrained model), a .keras path, a training model_dir, a Keras
      model from :func:`tf_drnn.model.build_model`, or a .tflite file from tf-drnn-export (run
      under LiteRT, frame by frame through its `separate_frame` signature; its sidecar FILE.json
      beside it gives the audio settings).
    binary_mask: Use a binary instead of the soft time-frequency mask.
    block_frames: STFT hops processed per model call (memory vs. call overhead).
    config: None (the AudioConfig saved with the model), or one that must equal it.
    high_band: How the band the model does not see (above its Nyquist, at input rates over
      the model's) is split: "hold" (default), "average" or "accompaniment"; see
      tf_drnn.fullband.HIGH_BAND_RULES.
  """

  def __init__(self, model=None, binary_mask=False, block_frames=512, config=None, high_band=None):
    from tf_drnn import fullband
    self.model, self.config = _load(model)
    if config is not None and config != self.config:
      raise ValueError(f"config {config} differs from the model's own {self.config} (saved with it)")
    self.binary_mask = binary_mask
    self.block_samples = block_frames * self.config.hop_length
    self.high_band = fullband.check_rule(high_band or fullband.DEFAULT_HIGH_BAND)
    self._streams = {}

  def stream(self, channels, with_masks=False, block_samples=None):
    """(stream, step) for a channel count and block (default: self.block_samples model-rate samples);
    built once and reused.

    with_masks: the step is PcmStream.separate_with_masks (also returns the masks).
    """
    block = block_samples or self.block_samples
    key = (channels, with_masks, block)
    if key not in self._streams and isinstance(self.model, str):  # a .tflite file
      from tf_drnn.litert import LiteRTPcmStream
      stream = LiteRTPcmStream(self.model, channels, self.binary_mask)
      self._streams[key] = (stream, stream if with_masks else lambda *a: stream(*a)[:3])
    if key not in self._streams:
      import tensorflow as tf
      from tf_drnn.streaming import PcmStream
      plain = (channels, False, block)
      stream = (self._streams[plain][0] if plain in self._streams
                else PcmStream(self.model, channels, self.binary_mask, self.config))
      step = tf.function(stream.separate_with_masks if with_masks else stream.__call__, input_signature=[
          tf.TensorSpec([channels, block], tf.float32),
          tf.TensorSpec([1, stream.state_size], tf.float32)], reduce_retracing=True)
      self._streams[key] = (stream, step)
    return self._streams[key]

  def separate(self, waveform, sample_rate):
    """waveform [samples] or [samples, channels] at `sample_rate` Hz -> {"vocals", "accompaniment"}.

    Outputs have the input's shape and rate, and add up to the input; at rates above the
    model's, the band it does not see is split by `high_band` (tf_drnn.fullband). Stereo
    input is separated with a mask computed from the channel mean and applied to each channel.
    waveform: real float or signed-integer values (integers are taken as they are, not rescaled),
    more samples than channels, not silent; sample_rate: an integer of
    tf_drnn.audio.MIN_SAMPLE_RATE ... MAX_SAMPLE_RATE. Anything else is a ValueError, before any work.
    Runs in blocks of tf_drnn.audio.block_frames(channels), as separate_file does.
    """
    from tf_drnn.audio import block_frames, fit_length
    from tf_drnn.fullband import FullBandRunner
    waveform = _checked_waveform(waveform, sample_rate)
    multichannel = waveform.reshape(len(waveform), -1)
    runner = FullBandRunner(self, int(sample_rate), multichannel.shape[1])
    step = block_frames(multichannel.shape[1])
    parts = [runner.process(multichannel[i:i + step]) for i in range(0, len(multichannel), step)]
    parts.append(runner.finish())
    result = {}
    for i, name in enumerate(STEMS):
      stem = fit_length(np.concatenate([part[i] for part in parts]), len(waveform))
      result[name] = stem.reshape(waveform.shape)
    return result

  def separate_pair(self, waveform, sample_rate=None):
    """(vocals, accompaniment) of :meth:`separate`: what scoring code takes as a separator
    (`mixture -> (vocals, accompaniment)`). sample_rate None: the model's own rate (no resampling)."""
    stems = self.separate(waveform, self.config.sample_rate if sample_rate is None else sample_rate)
    return stems["vocals"], stems["accompaniment"]

  def separate_file(self, path, output_dir, overwrite=False, subtype=None, progress=None):
    """Separates one audio file into DIR/<stem>_vocals.<ext> and DIR/<stem>_accompaniment.<ext>.

    Reads, resamples, separates and writes in blocks (bounded memory); outputs keep the
    input's sample rate, channels and length, and appear only when complete.
    Returns the two output paths.
    """
    return _separate_file(self, path, output_dir, overwrite, subtype, progress)


def _load(model):
  """(model, AudioConfig): a Keras model, or the path of a .tflite file (no TensorFlow loaded)."""
  if isinstance(model, (str, os.PathLike)) and os.fspath(model).endswith(".tflite"):
    from tf_drnn.audio import check_readable
    from tf_drnn.litert import read_sidecar, sidecar_audio_config
    path = os.fspath(model)
    check_readable(path)  # AudioFileError, a UserError: one line naming the file
    return path, sidecar_audio_config(read_sidecar(path))
  from tf_drnn.cli_util import import_tensorflow_quietly, quiet_tensorflow
  quiet_tensorflow()  # TensorFlow's native start-up lines (CUDA probes) are no news to a user.
  import_tensorflow_quietly()  # before tf_drnn.model, which imports Keras (and so TensorFlow)
  from tf_drnn.model import audio_config
  from tf_drnn.models import load_model
  keras_model = load_model(model)
  return keras_model, audio_config(keras_model)


def _checked_waveform(waveform, sample_rate):
  """The API's input as float32 [samples] or [samples, channels]; ValueError (one clear line) for a
  sample rate outside tf_drnn.audio's range, a complex, bool, unsigned or non-numeric array, an
  ambiguous or empty shape, NaN, an absurd amplitude, too many channels or silence."""
  from tf_drnn.audio import sample_rate_problem, silence_problem
  problem = sample_rate_problem(sample_rate)
  if problem:
    raise ValueError(problem)
  array = np.asarray(waveform)
  if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.signedinteger)):
    raise ValueError(f"waveform has dtype {array.dtype}: pass real float samples in [-1, 1] (or signed "
                     "integers); complex, bool and unsigned (offset) arrays are refused")
  if array.ndim not in (1, 2) or array.shape[0] == 0 or (array.ndim == 2 and array.shape[0] <= array.shape[1]):
    hint = " (a [channels, samples] array? pass waveform.T)" if array.ndim == 2 and array.shape[0] else ""
    raise ValueError("waveform must be [samples] or [samples, channels] with more samples than channels, "
                     f"got shape {array.shape}{hint}")
  waveform = array.astype(np.float32)
  if not np.all(np.isfinite(waveform)):
    raise ValueError("waveform contains NaN or infinite samples")
  _check_waveform_limits(waveform)
  problem = silence_problem(waveform)
  if problem:
    raise ValueError(f"waveform: {problem}")
  return waveform


def _check_waveform_limits(waveform):
  """ValueError for an absurd amplitude or too many channels (tf_drnn.audio.MAX_PEAK, MAX_CHANNELS)."""
  from tf_drnn.audio import MAX_CHANNELS, MAX_PEAK
  if np.max(np.abs(waveform)) > MAX_PEAK:
    raise ValueError(f"waveform has samples of magnitude over {MAX_PEAK:g} (full scale is 1)")
  if waveform.ndim == 2 and waveform.shape[1] > MAX_CHANNELS:
    raise ValueError(f"waveform has {waveform.shape[1]} channels; at most {MAX_CHANNELS} are supported")


def _separate_file(separator, path, output_dir, overwrite, subtype, progress):
  import soundfile
  from tf_drnn.audio import (check_channels, check_not_silent, check_readable, check_sample_rate, read_audio,
                             truncation_warning)

  path = os.fspath(path)
  targets = plan_outputs([path], output_dir, overwrite, subtype)[0][1]
  check_readable(path)
  try:
    info = soundfile.info(path)
    blockwise = info.frames > 0
  except Exception:
    blockwise = False
  if blockwise:
    check_sample_rate(path, info.samplerate)
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
  with AtomicStemWriters(targets, info, path, subtype, overwrite) as writers:
    if blockwise:
      _separate_blocks(separator, path, info, writers, progress)
    else:
      stems = separator.separate(waveform, rate)
      writers.open(rate, waveform.shape[1])
      writers.write([stems[name] for name in STEMS])
  return targets


def _read_blocks(path, frames):
  """Float32 blocks [frames, channels] of an audio file; only reading and decoding failures here
  are the input's fault (AudioFileError "corrupt audio")."""
  import soundfile
  try:
    with soundfile.SoundFile(path) as f:
      blocks = f.blocks(blocksize=frames, dtype="float32", always_2d=True)
      while True:
        try:
          block = next(blocks)
        except StopIteration:
          return
        except Exception as error:
          raise AudioFileError(path, f"corrupt audio ({first_line(error, 120)})") from None
        yield block
  except AudioFileError:
    raise
  except (RuntimeError, OSError) as error:  # Opening it.
    raise AudioFileError(path, f"corrupt audio ({first_line(error, 120)})") from None


def _separate_blocks(separator, path, info, writers, progress):
  """Reads, separates and writes `path` in blocks of tf_drnn.audio.block_frames(channels) (bounded memory)."""
  from tf_drnn.audio import block_frames, check_samples
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

  for block in _read_blocks(path, block_frames(channels)):
    check_samples(path, block)
    any_sound = any_sound or bool(np.any(block))
    emit(runner.process(block))  # A model or runtime error here is ours: it propagates as it is.
    if progress is not None:
      progress(len(block))
  if not any_sound:
    raise AudioFileError(path, "silent audio (all samples are zero)")
  emit(runner.finish())
  if written < total:
    pad = np.zeros((total - written, channels), np.float32)
    writers.write([pad, pad])


# --- command line -------------------------------------------------------------------------------

USAGE = "tf-drnn-separate --output_dir=DIR [flags] FILE [FILE ...]"


def define_flags():
  from absl import flags

  from tf_drnn.flags_common import define_model, define_output_dir
  define_model()
  define_output_dir("<name>_vocals and <name>_accompaniment files. Every output is checked before any file is "
                    "separated: two inputs with the same name (a/song.wav b/song.wav, or song.wav song.mp3) are an "
                    "error, not renamed; separate them into different folders")
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
    print(f"error: no input files (usage: {USAGE})", file=sys.stderr)
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
    except Exception as error:  # Not the input's fault (the model, memory, a bug): stop, saying so.
      bar.close()
      line = first_line(error, empty="")
      print(f"error: separating {path} failed inside tf-drnn ({type(error).__name__}: {line}); nothing was "
            f"written for it; {len(paths) - paths.index(path) - 1} file(s) not attempted", file=sys.stderr)
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
  run_app(define_flags, main, import_tensorflow=False, usage=USAGE)  # Separator loads it for Keras models


if __name__ == "__main__":
  run()
