"""MIR-1K in its own layout: `Wavfile/<singer>_<song>_<part>.wav`, left = accompaniment, right = voice.

Standard split (Huang et al. 2014; Hsu & Jang 2010): train on singers abjones and amy,
minus the paper's dev clips; test on every other singer.
"""
import os
import re

import numpy as np

from tf_drnn.data.base import SeparationDataset, Track
from tf_drnn.errors import AudioFileError, UserError
from tf_drnn.config import DEFAULT_AUDIO_CONFIG

TRAIN_SINGERS = ("abjones", "amy")
# The paper authors' dev clips (held out of training, used to pick the model).
DEFAULT_DEV_CLIPS = ("abjones_5_08", "abjones_5_09", "amy_9_08", "amy_9_09")
_NAME = re.compile(r"^(?P<singer>[^_]+)_(?P<song>[^_]+)_(?P<part>[^_]+)\.wav$", re.IGNORECASE)


def singer_of(clip_name):
  return clip_name.split("_", 1)[0]


class MIR1K(SeparationDataset):
  """MIR-1K reader.

  Args:
    root: The MIR-1K directory (holding `Wavfile/`), or `Wavfile/` itself.
    dev_clips: Clip names or prefixes (e.g. "amy_9" for a whole song) held out of the
      training singers as the dev split (None or empty: DEFAULT_DEV_CLIPS, the paper's).
    sample_rate: Expected rate of the files (MIR-1K is 16 kHz).
  """

  DEFAULT_DEV = DEFAULT_DEV_CLIPS
  DEV_VOICE_DB = 0.0  # Dev clips are scored on the paper's 0 dB remixes.
  DEV_SCORE = "GNSDR"  # The vocal dev metric that ranks models (the paper's).

  def __init__(self, root, dev_clips=None, sample_rate=DEFAULT_AUDIO_CONFIG.sample_rate):
    root = os.fspath(root)
    if not os.path.isdir(root):
      raise UserError(f"{root}: data directory does not exist")
    wav_dir = os.path.join(root, "Wavfile") if os.path.isdir(os.path.join(root, "Wavfile")) else root
    names = sorted(f for f in os.listdir(wav_dir) if _NAME.match(f))
    if not names:
      raise UserError(f"{root}: no MIR-1K clips (<singer>_<song>_<part>.wav) found")
    self.wav_dir = wav_dir
    self.sample_rate = sample_rate
    self.dev_clips, _ = self.dev_split(dev_clips)
    self._names = [os.path.splitext(n)[0] for n in names]

  def holds_clip(self, name):
    """Whether `name` is one of the training singers' clips or songs (a --dev_clips entry)."""
    return any(n == name or n.startswith(name + "_") for n in self._names)

  def _is_dev(self, name):
    return any(name == d or name.startswith(d + "_") for d in self.dev_clips)

  def clip_names(self, split):
    if split not in self.SPLITS:
      raise ValueError(f"unknown split {split!r}: choose one of {', '.join(self.SPLITS)}")
    train_singer = [singer_of(n) in TRAIN_SINGERS for n in self._names]
    if split == "test":
      return [n for n, t in zip(self._names, train_singer) if not t]
    return [n for n, t in zip(self._names, train_singer) if t and self._is_dev(n) == (split == "dev")]

  def tracks(self, split):
    return [Track(name, lambda name=name: self.load_clip(name)) for name in self.clip_names(split)]

  def load_clip(self, name):
    """Returns (vocals, accompaniment) float32 [samples] of one clip."""
    from tf_drnn.audio import read_audio
    path = os.path.join(self.wav_dir, name + ".wav")
    data, rate = read_audio(path)
    if data.ndim != 2 or data.shape[1] != 2:
      raise AudioFileError(path, f"expected a stereo file (left = accompaniment, right = voice), "
                                 f"got {data.shape[1]} channel(s)")
    if rate != self.sample_rate:
      from tf_drnn.audio import resample
      data = resample(data, rate, self.sample_rate)
    return np.ascontiguousarray(data[:, 1]), np.ascontiguousarray(data[:, 0])
