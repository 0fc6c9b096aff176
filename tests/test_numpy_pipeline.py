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
