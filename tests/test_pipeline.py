"""The training example generator (tf_drnn.data.pipeline) against NumPy references: mixing,
levels, STFT sequences, remixing, voice levels and seeding."""
import numpy as np
import pytest

from tf_drnn import spectral
from tf_drnn.data import pipeline
from tf_drnn.data.sources import shift_pairs
from tf_drnn.levels import TRAINING_LEVEL_DBFS


def _unit(x):
  return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)  # as load_sources gives them


def _tone(frequency, samples):
  return _unit(np.sin(2 * np.pi * frequency * np.arange(samples) / 16000))


def _one_pass(sources, sequence_length, circular_shift, **kwargs):
  """Every sequence of one pass, in order ([L, bins] mixture, [L, 2, bins] targets): batch 1, no
  shuffle buffer."""
  pairs = shift_pairs([len(v) for v, _ in sources], circular_shift)
  count = sum(-(-spectral.num_frames(len(sources[i][0])) // sequence_length) for i, _ in pairs)
  generator = pipeline.batches(sources, 1, sequence_length, circular_shift, shuffle_buffer=1, **kwargs)
  return [tuple(x[0] for x in next(generator)) for _ in range(count)]


def test_mix_example_levels_and_partner_looping():
  rng = np.random.default_rng(2)
  sources = [(_unit(rng.standard_normal(5000)), _unit(rng.standard_normal(5000))),
             (_unit(rng.standard_normal(9000)), _unit(rng.standard_normal(1200)))]
  mixture, vocals, accompaniment = pipeline.mix_example(sources, 1, shift=100, partner=0)
  assert mixture.shape == (9000,)
  np.testing.assert_allclose(np.sqrt(np.mean(mixture ** 2)), 10 ** (TRAINING_LEVEL_DBFS / 20), rtol=1e-4)
  np.testing.assert_allclose(mixture, vocals + accompaniment, atol=1e-6)
  # The partner's accompaniment, rolled by 100 and looped to the voice's 9000 samples:
  looped = np.tile(np.roll(sources[0][1], 100), 2)[:9000]
  np.testing.assert_allclose(accompaniment / np.abs(accompaniment).max(), looped / np.abs(looped).max(),
                             atol=1e-5)
  # Voice and accompaniment at the same energy (0 dB), as in the paper.
  np.testing.assert_allclose(np.mean(vocals ** 2), np.mean(accompaniment ** 2), rtol=1e-3)


def test_equalized_scales_each_frequency_by_its_interpolated_gain():
  t = np.arange(16000) / 16000  # one second: every whole hertz is an FFT bin
  low, mid, high = (np.sin(2 * np.pi * f * t) for f in (250, 707.1068, 4000))
  gains_db = np.array([0, 6, 0, 2, 0, -6, 0], np.float64)  # at 125, 250, ..., 8000 Hz
  out = pipeline.equalized(low + mid + high, gains_db)
  amplitude = lambda x, f: 2 * np.abs(np.fft.rfft(x)[int(round(f))]) / len(x)
  ratio_db = lambda f: 20 * np.log10(amplitude(out, f) / amplitude(low + mid + high, f))
  # Gains relative to one another are the curve's (the whole is rescaled to the input's RMS); 707 Hz is
  # halfway between 500 and 1000 Hz in log frequency, so its gain is the mean of theirs, 1 dB.
  assert ratio_db(250) - ratio_db(4000) == pytest.approx(12.0, abs=0.01)
  assert ratio_db(707.1068) - ratio_db(4000) == pytest.approx(7.0, abs=0.1)
  np.testing.assert_allclose(np.sqrt(np.mean(out ** 2)), np.sqrt(np.mean((low + mid + high) ** 2)), rtol=1e-6)
  np.testing.assert_allclose(pipeline.equalized(low + high, np.zeros(7)), low + high, atol=1e-5)


def test_equalizers_change_the_spectra_and_keep_the_voice_level():
  rng = np.random.default_rng(6)
  sources = [(_unit(rng.standard_normal(16000)), _unit(rng.standard_normal(16000))) for _ in range(6)]
  mixture, vocals, accompaniment = pipeline.mix_example(sources, 0, 0, vocals_gain=0.5,
                                                        equalizers=np.array([[9, 9, 9, 0, 0, 0, 0], [0] * 7]))
  np.testing.assert_allclose(mixture, vocals + accompaniment, atol=1e-6)
  np.testing.assert_allclose(10 * np.log10(np.mean(vocals ** 2) / np.mean(accompaniment ** 2)), -6.02, atol=0.01)
  band = lambda x, lo, hi: np.mean(np.abs(np.fft.rfft(x)[lo:hi]) ** 2)  # power per 1-Hz bin
  assert 10 * np.log10(band(vocals, 100, 400) / band(vocals, 2000, 7000)) > 6  # white before: the low band boosted
  plain = _one_pass(sources, 40, 0, voice_db_range=(-6, -6))
  equalized = _one_pass(sources, 40, 0, voice_db_range=(-6, -6), equalizer_db=6.0)
  for (x, _), (x_eq, t_eq) in zip(plain, equalized):
    ratio_db = 10 * np.log10(np.square(t_eq[:, 0]).sum() / np.square(t_eq[:, 1]).sum())
    assert ratio_db == pytest.approx(-6.0, abs=0.05)
    assert not np.allclose(x, x_eq, rtol=0.05)


@pytest.mark.parametrize("samples,sequence_length", [(20000, 10), (512 * 30, 31), (700, 4), (513, 1)])
def test_sequences_are_the_stft_frames_padded_with_zeros(samples, sequence_length):
  signals = np.random.default_rng(samples).standard_normal((3, samples)).astype(np.float32)
  sequences = pipeline.example_sequences(signals, sequence_length)
  frames = spectral.num_frames(samples)
  assert sequences.shape == (-(-frames // sequence_length), sequence_length, 3, 513)
  got = sequences.reshape(-1, 3, 513)
  for channel in range(3):
    expected = np.abs(spectral.stft_numpy(signals[channel]))
    np.testing.assert_allclose(got[:frames, channel], expected, atol=1e-5 * np.abs(expected).max())
  np.testing.assert_array_equal(got[frames:], 0.0)


def test_batches_are_the_magnitudes_of_the_mixed_examples():
  sources = [(_tone(1000, 16000), _tone(500, 16000)), (_tone(6000, 24000), _tone(3000, 24000))]
  examples = _one_pass(sources, 10, 8000, seed=1)
  assert len(examples) == 2 * 4 + 3 * 5  # 2 and 3 shifts; 33 and 48 frames in sequences of 10
  for mixture, targets in examples:
    assert mixture.shape == (10, 513) and targets.shape == (10, 2, 513) and mixture.dtype == np.float32
    # Magnitudes of a sum are at most the sum of the source magnitudes (triangle inequality).
    assert np.all(mixture <= targets.sum(1) + 1e-4)
  # The first clip unshifted, at the training level: exactly the STFT of mix_example.
  expected = pipeline.example_sequences(pipeline.mix_example(sources, 0, 0), 10)
  firsts = [m for m, _ in examples[:12]]
  assert any(np.allclose(m, expected[0, :, 0], atol=1e-6) for m in firsts)


@pytest.mark.parametrize("remix_probability,random_shift", [(0.0, False), (0.0, True), (1.0, True)])
def test_remixing_pairs_voices_with_other_accompaniments(remix_probability, random_shift):
  # Clip 0: 1000 Hz voice over 500 Hz accompaniment; clip 1: 6000 Hz voice over 3000 Hz.
  sources = [(_tone(1000, 16000), _tone(500, 16000)), (_tone(6000, 24000), _tone(3000, 24000))]
  pairs = {tuple(int(b) for b in np.argmax(targets.sum(0), axis=-1))
           for _, targets in _one_pass(sources, 10, 4000, seed=3, random_shift=random_shift,
                                       remix_probability=remix_probability)}
  original = {(64, 32), (384, 192)}  # bins of 1000/500 Hz and 6000/3000 Hz
  if remix_probability == 0:
    assert pairs == original
  else:
    assert pairs - original and pairs <= original | {(64, 192), (384, 32)}


def test_remixed_sources_keep_equal_energy():
  # A long and a short clip: remixed accompaniments are looped or cut to the voice's length.
  rng = np.random.default_rng(4)
  loud_start = np.where(np.arange(32000) < 3000, 10.0, 0.1)  # a cut of it is far from unit energy
  sources = [(_unit(rng.standard_normal(32000)), _unit(loud_start * rng.standard_normal(32000))),
             (_unit(rng.standard_normal(6000)), _unit(rng.standard_normal(6000)))]
  examples = _one_pass(sources, 1000, 500, random_shift=True, remix_probability=1.0)
  assert len(examples) == 64 + 12
  ratios = [np.square(t[:, 1]).sum() / np.square(t[:, 0]).sum() for _, t in examples]
  np.testing.assert_allclose(ratios, 1.0, rtol=0.1)  # 0 dB: voice and accompaniment at equal energy


def test_batches_are_seeded_and_shaped():
  rng = np.random.default_rng(3)
  sources = [(_unit(rng.standard_normal(n)), _unit(rng.standard_normal(n))) for n in (30000, 12000, 20000)]
  kwargs = dict(batch_size=4, sequence_length=8, circular_shift=5000, random_shift=True, remix_probability=0.5,
                voice_db_range=(-10, 5))
  take = lambda seed: [next(g) for g in [pipeline.batches(sources, seed=seed, **kwargs)] for _ in range(5)]
  first, again, other = take(7), take(7), take(8)
  assert first[0][0].shape == (4, 8, 513) and first[0][1].shape == (4, 8, 2, 513)
  for (x, y), (x2, y2) in zip(first, again):
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
  assert not np.array_equal(first[0][0], other[0][0])


def test_the_voice_level_is_drawn_from_the_range():
  rng = np.random.default_rng(5)
  sources = [(_unit(rng.standard_normal(16000)), _unit(rng.standard_normal(16000))) for _ in range(60)]

  def ratios_db(clips, voice_db_range, seed=0):
    # One sequence per clip (32 frames in sequences of 40); the sine window at hop n_fft / 2 is a
    # tight frame, so frame energies sum to the signal's.
    return np.array([10 * np.log10(np.square(t[:, 0]).sum() / np.square(t[:, 1]).sum())
                     for _, t in _one_pass(clips, 40, 0, seed=seed, remix_probability=0.5,
                                           voice_db_range=voice_db_range)])
  np.testing.assert_allclose(ratios_db(sources[:8], (-6, -6)), -6.0, atol=0.05)
  ratios = ratios_db(sources, (-10, 5))  # uniform draws: mean -2.5, sd 4.3
  assert len(ratios) == 60 and ratios.min() >= -10.05 and ratios.max() <= 5.05
  assert abs(ratios.mean() + 2.5) < 2.0 and 3.0 < ratios.std() < 5.5
  assert (ratios < -7).any() and (ratios > 2).any()
  np.testing.assert_allclose(ratios_db(sources[:8], ()), 0.0, atol=0.05)  # off: the paper's 0 dB


def test_collections_are_drawn_by_weight_with_their_own_voice_levels():
  """Two collections (a 500 Hz voice and a 3 kHz voice): weights 1,0 draw only the first; 0.5,0.5
  about half each; each collection mixes at its own voice level and remixes within itself."""
  rng = np.random.default_rng(4)
  low = [(_tone(500, 16000), _unit(rng.standard_normal(16000))) for _ in range(3)]
  high = [(_tone(3000, 16000), _unit(rng.standard_normal(16000))) for _ in range(3)]
  bin_of = lambda hz: int(round(hz * 1024 / 16000))  # noqa: E731

  def draws(weights, voice_db_range=()):
    generator = pipeline.batches(low + high, 1, 40, 0, seed=1, remix_probability=0.9, shuffle_buffer=1,
                                 collections=[0, 0, 0, 1, 1, 1], weights=weights, voice_db_range=voice_db_range)
    return [next(generator)[1][0] for _ in range(200)]  # targets [L, 2, bins]

  which = lambda targets: int(targets[:, 0, bin_of(3000)].sum() > targets[:, 0, bin_of(500)].sum())  # noqa: E731
  assert {which(t) for t in draws((1, 0))} == {0}
  share = np.mean([which(t) for t in draws((0.5, 0.5))])
  assert 0.4 < share < 0.6
  for targets in draws((0.5, 0.5), ((0, 0), (-10, -10))):
    ratio = 10 * np.log10(np.square(targets[:, 0]).sum() / np.square(targets[:, 1]).sum())
    assert ratio == pytest.approx(-10.0 if which(targets) else 0.0, abs=0.1)


@pytest.mark.parametrize("remix_across_collections", [0.0, 0.5, 1.0])
def test_remixes_across_collections_pair_voices_with_the_other_collections_accompaniments(remix_across_collections):
  """Collection 0: 500 Hz voices over 1 kHz accompaniments; collection 1: 3 kHz voices over 5 kHz ones;
  every example a remix. Within collections a voice only hears its own collection's accompaniments;
  across them, a share remix_across_collections * 1/2 (the other's share of the clips) hears the other's."""
  low = [(_tone(500, 16000), _tone(1000, 16000)) for _ in range(3)]
  high = [(_tone(3000, 16000), _tone(5000, 16000)) for _ in range(3)]
  bin_of = lambda hz: int(round(hz * 1024 / 16000))  # noqa: E731
  generator = pipeline.batches(low + high, 1, 40, 0, seed=2, remix_probability=1.0, shuffle_buffer=1,
                               collections=[0, 0, 0, 1, 1, 1], weights=(0.5, 0.5),
                               remix_across_collections=remix_across_collections)
  mismatched = []
  for _ in range(400):
    targets = next(generator)[1][0]  # [L, 2, bins]
    voice_high = targets[:, 0, bin_of(3000)].sum() > targets[:, 0, bin_of(500)].sum()
    accompaniment_high = targets[:, 1, bin_of(5000)].sum() > targets[:, 1, bin_of(1000)].sum()
    mismatched.append(voice_high != accompaniment_high)
  assert np.mean(mismatched) == pytest.approx(remix_across_collections / 2, abs=0.07)
