"""The dataset interface training and evaluation code see.

A dataset is anything with `tracks(split)` returning :class:`Track` objects. Readers for a
particular layout (MIR-1K, stem folders, ...) implement it; nothing else knows the layout.
"""
import dataclasses
from typing import Callable, List

import numpy as np

from tf_drnn.levels import db_to_gain, scale_to_dbfs


@dataclasses.dataclass
class Track:
  """One song or clip: a name and a loader of its sources.

  Attributes:
    name: Unique name (e.g. "amy_9_08").
    load: Callable returning (vocals, accompaniment), float32 [samples] at the project's
      sample rate, equal length.
  """
  name: str
  load: Callable[[], tuple]

  def sources(self):
    vocals, accompaniment = self.load()
    return np.asarray(vocals, np.float32), np.asarray(accompaniment, np.float32)


class SeparationDataset:
  """Interface: named splits of tracks with vocals and accompaniment."""

  SPLITS = ("train", "dev", "test")
  DEFAULT_DEV = ()  # The dev split when --dev_clips names none: clip or song names of this layout.
  DEV_VOICE_DB = 0.0  # Dev mixtures: voice this many dB over the accompaniment; None: as mixed.
  DEV_SCORE = "GNSDR"  # The vocal dev metric (a key of scoring's global metrics) that ranks models.

  def tracks(self, split) -> List[Track]:
    raise NotImplementedError

  @classmethod
  def dev_split(cls, dev_clips):
    """(dev clip names, whether the user named them): `dev_clips`, or this layout's DEFAULT_DEV
    when they name none. MIR-1K's default list, which older trainers passed for every layout (and
    older runs' options.json hold), also means this layout's own."""
    from tf_drnn.data.mir1k import DEFAULT_DEV_CLIPS
    given = tuple(dev_clips or ())
    if given and given != DEFAULT_DEV_CLIPS:
      return given, True
    return tuple(cls.DEFAULT_DEV), False


def unit_energy_mix(vocals, accompaniment, shift=0, voice_db=0.0):
  """The paper's 0 dB mixing: each source scaled to unit RMS, accompaniment rolled by `shift`.

  voice_db: then the voice scaled by 10^(voice_db / 20) (voice-to-accompaniment ratio, dB;
  0: the paper's mixtures exactly). Returns (mixture, vocals, accompaniment), float32
  [samples]. Silent sources stay silent.
  """
  vocals = _unit_rms(vocals)
  if voice_db:
    vocals = vocals * np.float32(db_to_gain(voice_db))
  accompaniment = np.roll(_unit_rms(accompaniment), shift)
  return vocals + accompaniment, vocals, accompaniment


def _unit_rms(signal):
  return scale_to_dbfs(signal, 0.0)
