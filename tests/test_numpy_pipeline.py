"""The NumPy pipeline of the JAX trainer against the STFT and the tf.data pipeline's targets."""
import numpy as np
import pytest

from tf_drnn import spectral
from tf_drnn.data import numpy_pipeline, pipeline
from tf_drnn.data.sources import TRAINING_LEVEL_DBFS


@pytest.mark.parametrize("samples,sequence_length", [(20000, 10), (512 * 30, 31), (700, 4), (513, 1)])
def test_segments_give_the_stft_frames(samples, sequence_length):
  signals = np.random.default_rng(samples).standard_normal((3, samples)).astype(np.float32)
  segments = numpy_pipeline.sequence_segments(signals, sequence_length)
  mixture, targets = (np.asarray(x) for x in numpy_pipeline.segment_spectra(segments))
  frames = spectral.num_frames(samples)
  assert segments.shape == (-(-frames // sequence_length), 3, (sequence_length + 1) * 512)
  assert mixture.shape == (len(segments), sequence_length, 513)
  assert targets.shape == (len(segments), sequence_length, 2, 513)
  for channel, got in ((0, mixture), (1, targets[:, :, 0]), (2, targets[:, :, 1])):
    got = got.reshape(-1, 513)
    expected = np.abs(spectral.stft_numpy(signals[channel]))
    np.testing.assert_allclose(got[:frames], expected, atol=2e-4 * np.abs(expected).max())
    np.testing.assert_array_equal(got[frames:], 0.0)  # pad_end frames are zero, as in tf.signal.frame


def test_phase_sensitive_targets_match_the_tf_pipeline():
  rng = np.random.default_rng(1)
  vocals, accompaniment = rng.standard_normal((2, 8000)).astype(np.float32)
  signals = np.stack([vocals + accompaniment, vocals, accompaniment])
  mixture, targets = numpy_pipeline.segment_spectra(numpy_pipeline.sequence_segments(signals, 17),
                                                    "phase_sensitive")
  frames = spectral.num_frames(8000)
  expected = pipeline.source_targets(np.stack([spectral.stft_numpy(s) for s in signals]),
                                     "phase_sensitive").numpy()  # [3, frames, bins]
  got = np.asarray(targets).reshape(-1, 2, 513)[:frames]
  scale = np.abs(expected).max()
  np.testing.assert_allclose(np.asarray(mixture).reshape(-1, 513)[:frames], expected[0], atol=2e-4 * scale)
  np.testing.assert_allclose(got, np.moveaxis(expected[1:], 0, 1), atol=2e-4 * scale)
  with pytest.raises(ValueError, match="unknown target"):
    numpy_pipeline.segment_spectra(numpy_pipeline.sequence_segments(signals, 17), "complex")


def test_mix_example_levels_and_partner_looping():
  rng = np.random.default_rng(2)
  unit = lambda x: (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)  # as load_sources gives them
  sources = [(unit(rng.standard_normal(5000)), unit(rng.standard_normal(5000))),
             (unit(rng.standard_normal(9000)), unit(rng.standard_normal(1200)))]
  mixture, vocals, accompaniment = numpy_pipeline.mix_example(sources, 1, shift=100, partner=0)
  assert mixture.shape == (9000,)
  np.testing.assert_allclose(np.sqrt(np.mean(mixture ** 2)), 10 ** (TRAINING_LEVEL_DBFS / 20), rtol=1e-4)
  np.testing.assert_allclose(mixture, vocals + accompaniment, atol=1e-6)
  # The partner's accompaniment, rolled by 100 and looped to the voice's 9000 samples:
  looped = np.tile(np.roll(sources[0][1], 100), 2)[:9000]
  np.testing.assert_allclose(accompaniment / np.abs(accompaniment).max(), looped / np.abs(looped).max(),
                             atol=1e-5)
  # Voice and accompaniment at the same energy (0 dB), as in the paper.
  np.testing.assert_allclose(np.mean(vocals ** 2), np.mean(accompaniment ** 2), rtol=1e-3)


def test_batches_are_seeded_and_shaped():
  rng = np.random.default_rng(3)
  sources = [(rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32))
             for n in (30000, 12000, 20000)]
  kwargs = dict(batch_size=4, sequence_length=8, circular_shift=5000, random_shift=True, remix_probability=0.5)
  first = [next(g) for g in [numpy_pipeline.batches(sources, seed=7, **kwargs)] for _ in range(5)]
  again = [next(g) for g in [numpy_pipeline.batches(sources, seed=7, **kwargs)] for _ in range(5)]
  other = next(numpy_pipeline.batches(sources, seed=8, **kwargs))
  assert first[0].shape == (4, 3, 9 * 512) and first[0].dtype == np.float32
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(first[0], other)
  for batch in first:  # Every segment: mixture = vocals + accompaniment.
    np.testing.assert_allclose(batch[:, 0], batch[:, 1] + batch[:, 2], atol=1e-6)


# --- the voice-to-accompaniment ratio (--voice_db_range) ------------------------------------------

def _golden_sources():
  rng = np.random.default_rng(11)
  unit = lambda x: (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)
  return [(unit(rng.standard_normal(n)), unit(rng.standard_normal(n))) for n in (9000, 6000, 12000)]


def test_default_pipelines_are_bit_identical_to_before_the_voice_level_option():
  """Without --voice_db_range both pipelines give the very bytes they gave before it existed
  (digests recorded with the code of commit c04f863): old runs and flagfiles are unchanged."""
  import hashlib
  sources = _golden_sources()
  kwargs = dict(circular_shift=3000, seed=5, random_shift=True, remix_probability=0.5)
  # tf.data's parallel map draws its random offsets in scheduling order (deterministic=False), so
  # its bytes are not repeatable under load; the NumPy twin is, and the parity tests tie the two.
  dataset = pipeline.training_dataset(sources, 1, 8, repeat=False, shuffle_buffer=16, **kwargs)
  assert sum(1 for _ in dataset) == 29
  generator = numpy_pipeline.batches(sources, 2, 8, **kwargs)
  assert hashlib.sha256(b"".join(next(generator).tobytes() for _ in range(6))).hexdigest()[:16] == \
      "596612f0aa21b814"


def _tf_ratios_db(sources, voice_db_range, seed=0):
  """Voice-to-accompaniment energy ratio (dB) of every tf.data example (one sequence each)."""
  dataset = pipeline.training_dataset(sources, 1, 40, circular_shift=0, seed=seed, repeat=False,
                                      shuffle_buffer=1, remix_probability=0.5, voice_db_range=voice_db_range)
  # The sine window at hop n_fft / 2 is a tight frame: frame energies sum to the signal's.
  return np.array([10 * np.log10(np.square(y[0, :, 0]).sum() / np.square(y[0, :, 1]).sum())
                   for y in (np.asarray(t) for _, t in dataset)])


def _numpy_ratios_db(sources, voice_db_range, count, seed=0):
  generator = numpy_pipeline.batches(sources, 1, 40, circular_shift=0, seed=seed, shuffle_buffer=1,
                                     remix_probability=0.5, voice_db_range=voice_db_range)
  batches = [next(generator)[0] for _ in range(count)]
  for batch in batches:  # The mixture is still the sum of the two (rescaled) sources.
    np.testing.assert_allclose(batch[0], batch[1] + batch[2], atol=1e-6)
  return np.array([10 * np.log10(np.square(b[1]).sum() / np.square(b[2]).sum()) for b in batches])


def test_both_pipelines_draw_the_voice_level_from_the_range():
  rng = np.random.default_rng(5)
  unit = lambda x: (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)
  sources = [(unit(rng.standard_normal(16000)), unit(rng.standard_normal(16000))) for _ in range(60)]
  # A one-point range: every example of both pipelines at exactly that ratio.
  np.testing.assert_allclose(_tf_ratios_db(sources[:8], (-6, -6)), -6.0, atol=0.05)
  np.testing.assert_allclose(_numpy_ratios_db(sources[:8], (-6, -6), 8), -6.0, atol=0.05)
  # -10..5 dB: uniform draws (mean -2.5, sd 4.3); the same distribution in both pipelines.
  for ratios in (_tf_ratios_db(sources, (-10, 5)), _numpy_ratios_db(sources, (-10, 5), 60)):
    assert len(ratios) == 60
    assert ratios.min() >= -10.05 and ratios.max() <= 5.05
    assert abs(ratios.mean() + 2.5) < 2.0 and 3.0 < ratios.std() < 5.5
    assert (ratios < -7).any() and (ratios > 2).any()
  # Seeded: the same draws again, other ones with another seed.
  # (The NumPy twin: tf.data's parallel map assigns its draws in scheduling order.)
  np.testing.assert_array_equal(_numpy_ratios_db(sources[:8], (-10, 5), 8, seed=1),
                                _numpy_ratios_db(sources[:8], (-10, 5), 8, seed=1))
  assert not np.allclose(_numpy_ratios_db(sources[:8], (-10, 5), 8, seed=1),
                         _numpy_ratios_db(sources[:8], (-10, 5), 8))
