"""Multitrack collections: MUSDB18-HQ and generic stems folders (one folder per song).

Both readers see a song as a folder of equal-length stems: `vocals.<ext>`, an optional
`mixture.<ext>` (the song as released; without it the song is the sum of its stems) and the
accompaniment stems, which are summed. For training (:meth:`Track.sources`) a song is read stem
by stem, averaged over its channels (or one channel is taken) and resampled to the model rate
(`DEFAULT_AUDIO_CONFIG.sample_rate`), float32 mono; the training pipeline then cuts random
excerpts and remixes voices with other songs' accompaniment. For evaluation
(:meth:`SongTrack.native`) a song is read at its own rate and channels, as a listener hears it.

Bad collections (one line each on stderr, nothing lost):
- a song that cannot be used is skipped with a line `warning: FOLDER: PROBLEM; song skipped`,
  and each split read ends with `warning: DIR: skipped K of N songs (named above)`; the
  skipped songs are kept in `reader.skipped` (evaluation reports list them). Skipped are
  songs without a vocals stem, without accompaniment stems (MUSDB18-HQ: a missing
  drums/bass/other.wav), with stems of different sample rates, lengths or channel counts
  (a mono stem is spread over all channels; a `mixture` not matching its stems counts too),
  with a silent vocal stem or a silent accompaniment (peak below -80 dBFS), with a stem holding
  a NaN, infinite or absurd sample, and with a stem that cannot be read (missing, empty,
  corrupt or unsupported: the file and the problem are named).
- the reader stops with `error: ...` when the collection itself is unusable: DATA_DIR missing,
  no song folders at all, a MUSDB18-HQ folder without train/ and test/, --dev_clips naming a song
  that is not among the training songs, or a file that fails while training reads it.
"""
import dataclasses
import os
import sys
from typing import Optional, Tuple

import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.data.base import SeparationDataset, Track
from tf_drnn.errors import AudioFileError, UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".opus", ".m4a")
SILENCE_PEAK = 1e-4  # -80 dBFS: a stem whose every sample is below this is silent.
MUSDB_ACCOMPANIMENT = ("drums", "bass", "other")
# musdb's `validation` subset (musdb/configs/mus.yaml): 14 of the 100 train tracks.
MUSDB_VALIDATION = (
    "Actions - One Minute Smile", "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies", "Patrick Talbot - A Reason To Leave", "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero", "Fergessen - Nos Palpitants", "Leaf - Summerghost",
    "Skelpolu - Human Mistakes", "Young Griffo - Pennies", "ANiMAL - Rockshow",
    "James May - On The Line", "Meaxic - Take A Step", "Traffic Experiment - Sirens")


@dataclasses.dataclass(frozen=True)
class Song:
  """A checked song folder: stem paths and the format they share."""
  name: str
  folder: str
  vocals: str
  accompaniment: Tuple[str, ...]
  mixture: Optional[str]
  sample_rate: int
  channels: int
  num_samples: int


@dataclasses.dataclass
class SongTrack(Track):
  """A :class:`Track` of a multitrack song; `native()` reads it as released."""
  song: Song = None

  def native(self):
    """(mixture, vocals, accompaniment) float32 [samples, channels] at the song's rate, and the rate."""
    return read_native(self.song)


def _read(path, channels):
  """A stem float32 [samples, channels]; a mono stem is spread over `channels`."""
  from tf_drnn.audio import read_audio
  data, _ = read_audio(path)
  return np.broadcast_to(data, (len(data), channels)) if data.shape[1] == 1 else data


def read_native(song):
  """(mixture, vocals, accompaniment) float32 [samples, channels], rate: the song at its own rate."""
  vocals = np.array(_read(song.vocals, song.channels))
  accompaniment = np.zeros_like(vocals)
  for path in song.accompaniment:
    accompaniment += _read(path, song.channels)
  mixture = np.array(_read(song.mixture, song.channels)) if song.mixture else vocals + accompaniment
  return mixture, vocals, accompaniment, song.sample_rate


def read_training(song, sample_rate=DEFAULT_AUDIO_CONFIG.sample_rate, channel=None):
  """(vocals, accompaniment) float32 [samples] at `sample_rate`: channel mean (or `channel`)."""
  from tf_drnn.audio import resample

  def mono(path):
    data = _read(path, song.channels)
    return np.ascontiguousarray(data.mean(axis=1) if channel is None else data[:, channel], np.float32)
  vocals = mono(song.vocals)
  accompaniment = np.zeros_like(vocals)
  for path in song.accompaniment:
    accompaniment += mono(path)
  return resample(vocals, song.sample_rate, sample_rate), resample(accompaniment, song.sample_rate, sample_rate)


def warn(message):
  print(f"warning: {message}", file=sys.stderr, flush=True)


def _info(path):
  """(rate, channels, samples) of an audio file, or AudioFileError naming the problem."""
  from tf_drnn.audio import check_readable, read_audio
  check_readable(path)
  import soundfile
  try:
    info = soundfile.info(path)
    if info.frames <= 0:
      raise AudioFileError(path, "zero-length audio (no samples)")
    return int(info.samplerate), int(info.channels), int(info.frames)
  except AudioFileError:
    raise
  except Exception:  # Not for libsndfile: decode it (read_audio names the problem if it fails).
    data, rate = read_audio(path)
    return rate, data.shape[1], len(data)


def _track(song, channel, name):
  """A SongTrack named `name` whose sources are `song` read for training from `channel` (None: mean)."""
  return SongTrack(name, lambda: read_training(song, channel=channel), song)


def _stem_peak(path):
  """The largest |sample| of a stem, after checking every sample: AudioFileError for NaN, infinite
  or absurd (|x| > MAX_PEAK) samples, which would poison a whole evaluation or training run."""
  from tf_drnn.audio import check_samples
  peak = 0.0
  for block in _stem_blocks(path):
    check_samples(path, block)
    peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
  return peak


def _stem_blocks(path, frames=1 << 16):
  """The samples of a stem, float32 [frames, channels] blocks, one block in memory at a time."""
  import soundfile
  try:
    stem = soundfile.SoundFile(path)
  except Exception:  # Not for libsndfile: decode it whole (read_audio names the problem if it fails).
    from tf_drnn.audio import read_audio
    yield read_audio(path)[0]
    return
  with stem:
    yield from stem.blocks(blocksize=frames, dtype="float32", always_2d=True)


class StemsFolders(SeparationDataset):
  """A stems collection: `DATA_DIR/{train,test}/<song>/` or, without those, `DATA_DIR/<song>/`.

  In a song folder `vocals.<ext>` is the voice, `mixture.<ext>` (optional) the released song,
  and every other audio file (AUDIO_EXTENSIONS) a part of the accompaniment; any sample rate
  and channel count, the same for all stems of a song. Splits: the songs of `train/` minus the
  `dev_clips` songs (dev), and `test/`. A flat folder (no train/ or test/) is one set of songs,
  both the train and the test split: train on it or evaluate on it.

  Args:
    root: DATA_DIR.
    dev_clips: Names of training songs held out as the dev split (default: DEFAULT_DEV).
    channel: Training reads this channel (None: the mean of all channels; "each": the mean, then
      every channel alone, as separate training tracks).
  """

  DEFAULT_DEV = MUSDB_VALIDATION  # musdb's validation songs, those present among the training songs.
  DEV_VOICE_DB = None  # Dev songs are scored as they are mixed (the sum of their stems), not remixed.
  DEV_SCORE = "GSDR"  # The vocal dev metric that ranks models: SDR of the real mix, mean over songs.
  REQUIRED_ACCOMPANIMENT = None  # Stem names that must all be present (then the only ones used).
  layout = "stems folder"

  def __init__(self, root, dev_clips=None, channel=None):
    root = os.fspath(root)
    if not os.path.isdir(root):
      raise UserError(f"{root}: data directory does not exist")
    self.root = self.wav_dir = root
    self.dev_clips, self._dev_given = self.dev_split(dev_clips)
    self.channel = channel
    self.split_dirs = self._split_dirs()
    self.skipped = []  # (song folder, problem) of every song skipped so far.
    self._songs = {}

  def _split_dirs(self):
    structured = {s: os.path.join(self.root, s) for s in ("train", "test")}
    if any(os.path.isdir(d) for d in structured.values()):
      return structured
    return {"train": self.root, "test": self.root}

  def songs(self, split):
    """The usable songs of a split (sorted by name); skipped ones get a warning line each."""
    if split not in self.SPLITS:
      raise ValueError(f"unknown split {split!r}: choose one of {', '.join(self.SPLITS)}")
    folder = self.split_dirs["train" if split == "dev" else split]
    songs = self._songs_of(folder)
    if split == "test" and self.split_dirs["test"] != self.split_dirs["train"]:
      return songs
    names = {s.name for s in songs}
    if split in ("train", "dev") and self._dev_given:
      unknown = [d for d in self.dev_clips if d not in names]
      if unknown:
        raise UserError(f"--dev_clips: no song {', '.join(map(repr, unknown))} among the training songs "
                        f"in {folder}")
    if split == "test":
      return songs
    return [s for s in songs if (s.name in self.dev_clips) == (split == "dev")]

  def _songs_of(self, folder):
    if folder not in self._songs:
      self._songs[folder] = self._scan(folder)
    return self._songs[folder]

  def clip_names(self, split):
    return [s.name for s in self.songs(split)]

  def holds_clip(self, name):
    """Whether `name` is one of the training songs (a --dev_clips entry)."""
    return name in {s.name for s in self._songs_of(self.split_dirs["train"])}

  def tracks(self, split):
    if self.channel == "each" and split == "train":
      return [_track(song, c, f"{song.name} [{'mean' if c is None else f'channel {c}'}]")
              for song in self.songs(split) for c in [None] + list(range(song.channels if song.channels > 1 else 0))]
    return [self.track(song) for song in self.songs(split)]

  def track(self, song):
    """The song as a training track, read from the reader's channel (its mean for "each")."""
    return _track(song, None if self.channel == "each" else self.channel, song.name)

  def _scan(self, folder):
    if not os.path.isdir(folder):
      return []
    names = sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))
                   and not n.startswith("."))
    songs, skipped = [], 0
    for name in names:
      try:
        songs.append(self._check_song(name, os.path.join(folder, name)))
      except UserError as error:
        problem = str(error)
        warn(f"{problem}; song skipped")
        self.skipped.append((os.path.join(folder, name), problem))
        skipped += 1
    if not names and folder == self.root:
      raise UserError(f"{self.root}: no song folders found (expected a {self.layout}: "
                      f"{self.root}/train/<song>/vocals.wav, ...)")
    if skipped:
      warn(f"{folder}: skipped {skipped} of {len(names)} songs (named above)")
    return songs

  def _stem_files(self, folder):
    """{stem name (lower case): path} of the audio files in a song folder."""
    files = {}
    for entry in sorted(os.listdir(folder)):
      stem, extension = os.path.splitext(entry)
      if extension.lower() in AUDIO_EXTENSIONS and not entry.startswith("."):
        files.setdefault(stem.lower(), os.path.join(folder, entry))
    return files

  def _check_song(self, name, folder):
    """A :class:`Song`, or UserError naming the first problem found."""
    files = self._stem_files(folder)
    if "vocals" not in files:
      raise UserError(f"{folder}: no vocals stem (vocals.<ext>)")
    mixture = files.pop("mixture", None)
    vocals = files.pop("vocals")
    if self.REQUIRED_ACCOMPANIMENT is not None:
      missing = [s for s in self.REQUIRED_ACCOMPANIMENT if s not in files]
      if missing:
        raise UserError(f"{folder}: missing accompaniment stem(s) {', '.join(s + '.wav' for s in missing)}")
      accompaniment = [files[s] for s in self.REQUIRED_ACCOMPANIMENT]
    else:
      accompaniment = list(files.values())
    if not accompaniment:
      raise UserError(f"{folder}: no accompaniment stems (audio files besides vocals and mixture)")
    paths = [vocals] + accompaniment + ([mixture] if mixture else [])
    infos = {path: _info(path) for path in paths}
    describe = lambda index, unit: ", ".join(
        f"{os.path.basename(p)} {infos[p][index]}{unit}" for p in paths)
    if len({i[0] for i in infos.values()}) > 1:
      raise UserError(f"{folder}: stems at different sample rates ({describe(0, ' Hz')})")
    if len({i[2] for i in infos.values()}) > 1:
      raise UserError(f"{folder}: stems of different lengths ({describe(2, ' samples')})")
    channels = {i[1] for i in infos.values()}
    if len(channels - {1}) > 1:
      raise UserError(f"{folder}: stems with different channel counts ({describe(1, ' ch')})")
    peaks = {path: _stem_peak(path) for path in paths}
    if peaks[vocals] < SILENCE_PEAK:
      raise UserError(f"{folder}: silent vocal stem {os.path.basename(vocals)} (peak below -80 dBFS)")
    if all(peaks[p] < SILENCE_PEAK for p in accompaniment):
      raise UserError(f"{folder}: silent accompaniment (every stem's peak is below -80 dBFS)")
    rate, _, samples = infos[vocals]
    return Song(name, folder, vocals, tuple(accompaniment), mixture, rate, max(channels), samples)


class MUSDB18HQ(StemsFolders):
  """MUSDB18-HQ (Rafii et al. 2019) as unpacked: `DATA_DIR/{train,test}/<track>/{mixture,vocals,drums,
  bass,other}.wav` (44.1 kHz stereo). Accompaniment = drums + bass + other (as musdb's
  `accompaniment` target); other audio files in a track folder are ignored. Splits: train (the
  100 train tracks minus the dev ones), dev (default: musdb's 14-track `validation` subset,
  MUSDB_VALIDATION, those of them present; or --dev_clips track names) and test (50 tracks).
  Bad tracks are skipped or stop the reader as in :mod:`tf_drnn.data.multitrack`.
  """

  DEFAULT_DEV = MUSDB_VALIDATION
  REQUIRED_ACCOMPANIMENT = MUSDB_ACCOMPANIMENT
  layout = "MUSDB18-HQ folder"

  def _split_dirs(self):
    dirs = {s: os.path.join(self.root, s) for s in ("train", "test")}
    if not any(os.path.isdir(d) for d in dirs.values()):
      raise UserError(f"{self.root}: not a MUSDB18-HQ folder (no train/ or test/ folder)")
    return dirs
