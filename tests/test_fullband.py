"""Full-band separation (tf_drnn.fullband): stems add up to the input at any rate, the band above
the model's Nyquist is kept and split by a rule, the full-rate STFT is aligned with the model's."""
import numpy as np
import pytest
import soundfile

from conftest import sung_like_mixture
from tf_drnn import fullband
from tf_drnn.config import DEFAULT_AUDIO_CONFIG as CONFIG
from tf_drnn.errors import UserError
from tf_drnn.model import masks_from_magnitudes
from tf_drnn.models import offline_estimates
from tf_drnn.separate import Separator
from tf_drnn.blocks import BlockRunner

RATES = [8000, 16000, 22050, 44100, 48000, 96000]


@pytest.fixture(scope="module")
def separator(tiny_model):
  return Separator(tiny_model, block_frames=8)


def _energy(signal):
  return float(np.sum(np.asarray(signal, np.float64) ** 2))


def _residual_db(signal, *stems):
  return 10 * np.log10(max(_energy(signal - sum(stems)), 1e-300) / _energy(signal))


def _band(signal, rate, low, high=np.inf):
  """The part of `signal` [samples, ...] between `low` and `high` Hz (an FFT brick wall)."""
  spectrum = np.fft.rfft(np.asarray(signal, np.float64), axis=0)
  frequencies = np.fft.rfftfreq(len(signal), 1 / rate)
  spectrum[(frequencies < low) | (frequencies >= high)] = 0
  return np.fft.irfft(spectrum, n=len(signal), axis=0)


def _song(rate, seconds=0.6, channels=1, seed=0):
  """A sung-like mixture with noise up to the Nyquist (hi-hat-like bursts), [samples] or [samples, 2]."""
  vocals, accompaniment = sung_like_mixture(seconds, rate, seed=seed)
  rng = np.random.default_rng(seed)
  t = np.arange(len(vocals)) / rate
  hats = _band(rng.standard_normal(len(t)), rate, 6000) * np.exp(-30 * (t % 0.125)) * 0.05
  mixture = (vocals + accompaniment + hats).astype(np.float32)
  return mixture if channels == 1 else np.stack([mixture, 0.6 * mixture + 0.1 * hats.astype(np.float32)], 1)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", RATES)
def test_stems_add_up_to_the_input_at_every_rate(separator, tmp_path, rate, channels):
  mixture = _song(rate, channels=channels)
  stems = separator.separate(mixture, rate)
  assert stems["vocals"].shape == stems["accompaniment"].shape == mixture.shape
  assert _residual_db(mixture, stems["vocals"], stems["accompaniment"]) < -80
  path = tmp_path / "song.wav"
  soundfile.write(path, mixture, rate, subtype="FLOAT")
  vocals_path, accompaniment_path = separator.separate_file(path, tmp_path / "out")
  vocals, vocals_rate = soundfile.read(vocals_path, dtype="float32")
  accompaniment, _ = soundfile.read(accompaniment_path, dtype="float32")
  assert vocals_rate == rate and vocals.shape == mixture.shape
  assert _residual_db(mixture, vocals, accompaniment) < -80
  np.testing.assert_allclose(vocals, stems["vocals"], atol=1e-6)  # blockwise file = API


def test_energy_above_8_khz_is_kept_and_split_by_the_rule(tiny_model):
  rate = 44100
  mixture = _song(rate, seconds=1.0, channels=2)
  high_in = _energy(_band(mixture, rate, 8000))
  assert high_in / _energy(mixture) > 0.01  # the test signal has a real high band
  shares = {}
  for rule in fullband.HIGH_BAND_RULES:
    stems = Separator(tiny_model, block_frames=8, high_band=rule).separate(mixture, rate)
    high = {name: _energy(_band(stem, rate, 8000)) for name, stem in stems.items()}
    high_sum = _energy(_band(stems["vocals"] + stems["accompaniment"], rate, 8000))
    assert abs(high_sum / _energy(mixture) - high_in / _energy(mixture)) < 0.01 * high_in / _energy(mixture)
    shares[rule] = high["vocals"] / high_in
    if rule == "accompaniment":  # all of it in the accompaniment, none in the vocals
      assert high["vocals"] < 1e-3 * high_in  # (the synthesis window's leakage of the 7 kHz mask edge)
      assert abs(high["accompaniment"] / high_in - 1) < 0.01
  assert 0.01 < shares["average"] < 0.99 and 0.01 < shares["hold"] < 0.99


@pytest.mark.parametrize("channels", [1, 2])
def test_16_khz_input_is_exactly_the_models_stems(tiny_model, channels):
  mixture = _song(16000, seconds=1.3, channels=channels)
  multichannel = mixture.reshape(len(mixture), -1)
  for rule in fullband.HIGH_BAND_RULES:
    separator = Separator(tiny_model, block_frames=8, high_band=rule)
    stems = separator.separate(mixture, 16000)
    runner = BlockRunner(separator, multichannel.shape[1])
    outputs = runner.process(multichannel) + runner.finish()  # the path as it was: no resampling
    for i, name in enumerate(("vocals", "accompaniment")):
      expected = np.concatenate([o[i] for o in outputs])[:len(mixture)].reshape(mixture.shape)
      np.testing.assert_array_equal(stems[name], expected)
  reference = offline_estimates(tiny_model, multichannel.mean(axis=1))
  np.testing.assert_allclose(stems["vocals"].reshape(len(mixture), -1).mean(axis=1), reference[0], atol=1e-5)


def test_block_runner_masks_are_the_offline_frames(tiny_model):
  """Row t of take_masks() is offline frame t: what the full-rate frames are aligned to."""
  from tf_drnn import spectral
  mixture = _song(16000, seconds=1.1)
  runner = BlockRunner(Separator(tiny_model, block_frames=8), 1, with_masks=True)
  runner.process(mixture[:5000, None])
  first = runner.take_masks()
  runner.process(mixture[5000:, None])
  runner.finish()
  second = runner.take_masks()
  masks, magnitudes = (np.concatenate([a, b]) for a, b in zip(first, second))
  magnitude = np.abs(spectral.stft_numpy(mixture, CONFIG))
  expected = np.asarray(masks_from_magnitudes(tiny_model(magnitude[None], training=False)[0], magnitude))[:, 0]
  frames = len(expected)
  assert len(masks) >= frames
  np.testing.assert_allclose(magnitudes[:frames], magnitude, rtol=1e-4, atol=1e-4)
  # Masks are source / |X|: the two STFTs' float rounding shows at near-silent bins (3e-4 at most);
  # a frame off would differ by tenths.
  np.testing.assert_allclose(masks[:frames], expected, atol=1e-3)


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_full_rate_frames_follow_the_model_frame_nearest_in_time(rate):
  """A mask that switches on at model frame t0 switches the high band on at t0's time.

  With a mask constant over frequency, the high band's vocals are x times the crossfade
  sum_j m_j w^2: 0 before, 1 after, crossing 1/2 half a full-rate hop before the first
  full-rate frame that is on, which must lie within half a hop of the model frames' boundary.
  """
  t0, bins = 9, CONFIG.num_bins
  model_frames = 20
  masks = np.zeros((model_frames, bins), np.float32)
  masks[t0:] = 1.0
  magnitudes = np.ones_like(masks)
  seconds = model_frames * CONFIG.hop_length / CONFIG.sample_rate * 0.9
  x = np.random.default_rng(0).standard_normal((int(seconds * rate), 1))
  whole = fullband.HighBandSplitter(rate, 1, "hold")
  whole.push(x)
  whole.push_masks(masks, magnitudes)
  vocals = np.concatenate([whole.pull(), whole.pull(total=len(x))])
  # The same in uneven pieces, masks arriving late: the stream gives the same samples.
  pieces = fullband.HighBandSplitter(rate, 1, "hold")
  out, cuts, mask_cuts = [], [0, 777, 5000, 5001, 12345, len(x)], [0, 3, 4, 11, model_frames]
  for i in range(len(cuts) - 1):
    pieces.push(x[cuts[i]:cuts[i + 1]])
    out.append(pieces.pull())
    if i < len(mask_cuts) - 1:
      pieces.push_masks(masks[mask_cuts[i]:mask_cuts[i + 1]], magnitudes[mask_cuts[i]:mask_cuts[i + 1]])
      out.append(pieces.pull())
  out.append(pieces.pull(total=len(x)))
  np.testing.assert_allclose(np.concatenate(out), vocals, atol=1e-6)
  assert vocals.shape == x.shape
  gain = vocals[:, 0] / x[:, 0]
  hop = fullband.full_rate_hop(rate)
  boundary = (t0 - 0.5) * CONFIG.hop_length / CONFIG.sample_rate * rate  # samples at the rate
  crossing = np.argmax(gain > 0.5)
  assert abs(crossing - boundary) <= 0.5 * hop + 1  # nearest-frame rounding: half a hop
  assert np.all(np.abs(gain[:int(boundary - 1.5 * hop)]) < 1e-5)
  assert np.all(np.abs(gain[int(boundary + 1.5 * hop):] - 1) < 1e-5)


def test_resampled_band_is_aligned_with_the_input(separator, monkeypatch):
  """x_high = x - up(down(x)) is tiny for a signal the model sees whole (no time shift)."""
  rate = 44100
  x = _band(np.random.default_rng(1).standard_normal((rate, 1)), rate, 0, 5000).astype(np.float32)
  pushed = []
  original = fullband.HighBandSplitter.push
  monkeypatch.setattr(fullband.HighBandSplitter, "push", lambda self, a: (pushed.append(a), original(self, a)))
  separator.separate(x, rate)
  x_high = np.concatenate(pushed)
  assert len(x_high) == len(x)
  middle = slice(rate // 10, -rate // 10)  # away from the ends' resampler transients
  assert _residual_db(x[middle], x[middle] - x_high[middle]) < -50


def test_rules_from_the_mask_below_the_cutoff():
  frequencies = np.arange(CONFIG.num_bins) * CONFIG.sample_rate / CONFIG.n_fft
  mask = np.where(frequencies < 2000, 0.2, np.where(frequencies < 3500, 0.4, 0.9))[None].repeat(2, 0)
  magnitude = np.ones_like(mask)
  magnitude[1, (frequencies >= 2000) & (frequencies < 3500)] = 3.0  # row 1: energy in 2-3.5 kHz
  cutoff = 4000.0
  np.testing.assert_array_equal(fullband.band_mask_value(mask, magnitude, cutoff, "accompaniment"), [0, 0])
  np.testing.assert_allclose(fullband.band_mask_value(mask, magnitude, cutoff, "hold"), [0.9, 0.9])
  in_octave = (frequencies >= 2000) & (frequencies < 4000)
  lower, upper = np.sum(in_octave & (frequencies < 3500)), np.sum(in_octave & (frequencies >= 3500))
  expected = [(0.4 * lower + 0.9 * upper) / (lower + upper), (0.4 * 9 * lower + 0.9 * upper) / (9 * lower + upper)]
  np.testing.assert_allclose(fullband.band_mask_value(mask, magnitude, cutoff, "average"), expected)
  silent = np.zeros_like(magnitude)  # no energy: the plain mean
  np.testing.assert_allclose(fullband.band_mask_value(mask, silent, cutoff, "average"), [expected[0]] * 2)
  extended = fullband.extend_mask(mask, magnitude, cutoff, "average")
  np.testing.assert_array_equal(extended[:, frequencies < cutoff], mask[:, frequencies < cutoff])
  above = frequencies >= cutoff
  np.testing.assert_allclose(extended[:, above], np.array(expected)[:, None] + 0 * mask[:, above])
  # At 48 kHz: the model's mask interpolated below the reliable cutoff, the rule's value above.
  full = fullband.full_rate_masks(mask, magnitude, 48000, "hold")
  full_frequencies = np.arange(full.shape[1]) * 48000 / (2 * fullband.full_rate_hop(48000))
  assert full.shape == (2, fullband.full_rate_hop(48000) + 1)
  np.testing.assert_allclose(full[:, full_frequencies < 1900], 0.2)
  np.testing.assert_allclose(full[:, full_frequencies >= fullband.reliable_cutoff_hz(48000)], 0.9)


def test_unknown_rule_is_one_clear_error(tiny_model):
  with pytest.raises(UserError, match="unknown high-band rule 'loud': choose one of accompaniment, hold, average"):
    Separator(tiny_model, high_band="loud")


def test_model_calls_buffer_a_bounded_amount_of_full_rate_audio():
  """Between two model calls the full-rate input is buffered: a 16-channel 384 kHz input gets a few
  hops per call (16 s of it held 5 GB), a mono 16 kHz one the separator's whole block."""
  from types import SimpleNamespace
  from tf_drnn.audio import BLOCK_VALUES
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG
  from tf_drnn.fullband import model_block
  separator = SimpleNamespace(config=DEFAULT_AUDIO_CONFIG, block_samples=512 * 512)
  block = model_block(separator, 384000, 16)
  assert block % 512 == 0 and 512 <= block and block * 24 * 16 <= BLOCK_VALUES
  assert model_block(separator, 16000, 1) == 512 * 512
  assert model_block(separator, 44100, 2) * 44100 / 16000 * 2 <= BLOCK_VALUES
