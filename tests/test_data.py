"""MIR-1K reader, 0 dB mixing, circular shifts, speed perturbation and the voice-level range."""
import os

import numpy as np
import pytest
import soundfile

from conftest import write_fake_mir1k
from tf_drnn.data import sources as sources_lib
from tf_drnn.data.base import unit_energy_mix
from tf_drnn.data.mir1k import MIR1K
from tf_drnn.errors import AudioFileError, UserError


def test_split_by_singer(tmp_path):
  dataset = MIR1K(write_fake_mir1k(str(tmp_path)))
  assert dataset.clip_names("train") == ["abjones_1_01", "abjones_1_02", "amy_1_01"]
  assert dataset.clip_names("dev") == ["amy_9_08"]
  assert dataset.clip_names("test") == ["Ani_1_01", "heycat_2_03"]


def test_dev_clips_can_be_whole_songs(tmp_path):
  dataset = MIR1K(write_fake_mir1k(str(tmp_path)), dev_clips=["abjones_1"])
  assert dataset.clip_names("dev") == ["abjones_1_01", "abjones_1_02"]


def test_channels_are_voice_right_accompaniment_left(tmp_path):
  root = write_fake_mir1k(str(tmp_path))
  stereo, _ = soundfile.read(os.path.join(root, "Wavfile", "amy_1_01.wav"), dtype="float32")
  vocals, accompaniment = MIR1K(root).load_clip("amy_1_01")
  np.testing.assert_array_equal(vocals, stereo[:, 1])
  np.testing.assert_array_equal(accompaniment, stereo[:, 0])


def test_bad_directories_and_files(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    MIR1K(str(tmp_path / "missing"))
  os.makedirs(tmp_path / "empty")
  with pytest.raises(UserError, match="no MIR-1K clips"):
    MIR1K(str(tmp_path / "empty"))
  root = write_fake_mir1k(str(tmp_path / "data"), clips=["amy_1_01", "amy_1_02", "amy_1_03"])
  soundfile.write(os.path.join(root, "Wavfile", "amy_1_02.wav"), np.zeros(100, np.float32) + 0.1, 16000)
  with open(os.path.join(root, "Wavfile", "amy_1_03.wav"), "wb") as f:
    f.write(b"RIFF garbage")
  dataset = MIR1K(root)
  with pytest.raises(AudioFileError, match=r"amy_1_02\.wav: expected a stereo file"):
    dataset.load_clip("amy_1_02")
  with pytest.raises(AudioFileError, match=r"amy_1_03\.wav: corrupt"):
    dataset.load_clip("amy_1_03")


def test_unit_energy_mixing_and_shift():
  rng = np.random.default_rng(0)
  vocals, accompaniment = rng.standard_normal(1000) * 3, rng.standard_normal(1000) * 0.1
  mixture, v, a = unit_energy_mix(vocals, accompaniment, shift=250)
  np.testing.assert_allclose([np.sqrt(np.mean(v ** 2)), np.sqrt(np.mean(a ** 2))], 1.0, rtol=1e-5)
  np.testing.assert_allclose(a, np.roll(accompaniment / np.sqrt(np.mean(accompaniment ** 2)), 250), rtol=1e-5)
  np.testing.assert_allclose(mixture, v + a)


@pytest.mark.parametrize("step,expected", [(0, [(0, 0), (1, 0)]),
                                           (10000, [(0, 0), (0, 10000), (0, 20000), (1, 0)]),
                                           (25000, [(0, 0), (1, 0)])])
def test_shift_pairs(step, expected):
  assert sources_lib.shift_pairs([25000, 8000], step).tolist() == [list(p) for p in expected]


def test_speed_perturbation_scales_pitch_and_length_together():
  sources = [(_tone(1000, 16000), 3 * _tone(500, 16000))]
  perturbed = sources_lib.speed_perturbed(sources, [0.5, 1.25])
  assert len(perturbed) == 3 and perturbed[0] is sources[0]
  for (vocals, accompaniment), factor in zip(perturbed[1:], (0.5, 1.25)):
    assert len(vocals) == len(accompaniment) == round(16000 / factor)
    assert abs(_peak_hz(vocals) - 1000 * factor) < 2 and abs(_peak_hz(accompaniment) - 500 * factor) < 2
    np.testing.assert_allclose([np.sqrt(np.mean(vocals ** 2)), np.sqrt(np.mean(accompaniment ** 2))], 1.0,
                               rtol=1e-4)
  with pytest.raises(ValueError, match="positive"):
    sources_lib.speed_perturbed(sources, [0.0])


def _peak_hz(signal):
  return np.argmax(np.abs(np.fft.rfft(signal))) * 16000 / len(signal)


def _tone(frequency, samples):
  tone = np.sin(2 * np.pi * frequency * np.arange(samples) / 16000).astype(np.float32)
  return tone / np.sqrt(np.mean(tone ** 2))


@pytest.mark.parametrize("voice_db", [-10.0, -5.0, 5.0])
def test_unit_energy_mix_puts_the_voice_at_the_ratio(voice_db):
  rng = np.random.default_rng(7)
  vocals, accompaniment = 0.1 * rng.standard_normal(8000), 3.0 * rng.standard_normal(8000)
  mixture, v, a = unit_energy_mix(vocals, accompaniment, voice_db=voice_db)
  assert 10 * np.log10(np.sum(v.astype(np.float64) ** 2) / np.sum(a.astype(np.float64) ** 2)) == \
      pytest.approx(voice_db, abs=1e-4)
  np.testing.assert_allclose(np.mean(a.astype(np.float64) ** 2), 1.0, rtol=1e-5)  # accompaniment at unit RMS
  np.testing.assert_array_equal(mixture, v + a)
  # 0 dB is the paper's mixing, bit for bit.
  for got, expected in zip(unit_energy_mix(vocals, accompaniment, voice_db=0.0),
                           unit_energy_mix(vocals, accompaniment)):
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("value,expected", [("", ()), ([], ()), ("-10,5", (-10.0, 5.0)), (["-3", "-3"], (-3.0, -3.0)),
                                            ((-10, 5), (-10.0, 5.0))])
def test_voice_db_range_parses(value, expected):
  from tf_drnn.data.sources import voice_db_range_from
  assert voice_db_range_from(value) == expected


@pytest.mark.parametrize("value,message", [
    ("5,-10", "--voice_db_range=5,-10: LO must not exceed HI"),
    ("-10", "--voice_db_range=-10: expected two finite numbers LO,HI"),
    ("-10,5,7", "--voice_db_range=-10,5,7: expected two finite numbers"),
    ("-10,inf", "--voice_db_range=-10,inf: expected two finite numbers"),
    ("nan,5", "--voice_db_range=nan,5: expected two finite numbers"),
    ("low,high", "--voice_db_range=low,high: expected two finite numbers"),
])
def test_bad_voice_db_range_is_a_user_error(value, message):
  from tf_drnn.data.sources import voice_db_range_from
  with pytest.raises(UserError) as raised:
    voice_db_range_from(value)
  assert str(raised.value).startswith(message)


def test_real_mir1k_split(mir1k_dir):
  dataset = MIR1K(mir1k_dir)
  train, dev, test = (dataset.clip_names(s) for s in ("train", "dev", "test"))
  assert len(train) + len(dev) == 175 and len(dev) == 4
  assert len(test) == 120 and {n.split("_")[0] for n in test} == {"Ani", "annar", "heycat"}


def test_several_collections_route_dev_clips_to_the_collection_that_holds_them(tmp_path):
  from conftest import write_fake_mir1k
  from test_multitrack import write_stems_collection
  from tf_drnn.data import load_collections
  from tf_drnn.errors import UserError
  mir1k = write_fake_mir1k(str(tmp_path / "mir1k"))
  stems = write_stems_collection(str(tmp_path / "stems"))
  dirs = f"{mir1k},{stems}"
  (_, m), (_, s) = load_collections("mir1k,stems", dirs, ["amy_9", "Song B"])
  assert m.clip_names("dev") and all(n.startswith("amy_9_") for n in m.clip_names("dev"))
  assert s.clip_names("dev") == ["Song B"] and s.clip_names("train") == ["Song A"]
  (_, m), (_, s) = load_collections("mir1k,stems", dirs, None)  # each reader's own dev split
  assert m.dev_clips == ("abjones_5_08", "abjones_5_09", "amy_9_08", "amy_9_09") and s.clip_names("dev") == []
  with pytest.raises(UserError, match="--dev_clips: 'Nobody' is in none of the collections"):
    load_collections("mir1k,stems", dirs, ["amy_9", "Nobody"])
  with pytest.raises(UserError, match="--dataset names 2 collection.s. but --data_dir 1 folder"):
    load_collections("mir1k,stems", mir1k, None)
  _, (_, each) = load_collections("mir1k,stems", dirs, None, stem_channels="each")
  names = [t.name for t in each.tracks("train")]
  assert names[:3] == ["Song A [mean]", "Song A [channel 0]", "Song A [channel 1]"]
  mean, left, right = (t.sources()[0] for t in each.tracks("train")[:3])
  np.testing.assert_allclose(mean, (left + right) / 2, atol=1e-5)
