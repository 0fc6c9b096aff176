"""STFT/iSTFT: against librosa, perfect reconstruction, batching, the one AudioConfig."""
import numpy as np
import pytest

from tf_drnn import spectral
from tf_drnn.config import DEFAULT_AUDIO_CONFIG, AudioConfig


def test_config_is_the_papers():
  assert (DEFAULT_AUDIO_CONFIG.sample_rate, DEFAULT_AUDIO_CONFIG.n_fft, DEFAULT_AUDIO_CONFIG.hop_length,
          DEFAULT_AUDIO_CONFIG.window) == (16000, 1024, 512, "sine")
  assert DEFAULT_AUDIO_CONFIG.num_bins == 513
  with pytest.raises(ValueError):
    AudioConfig(window="hann")


def test_sine_window_squared_overlap_adds_to_one():
  w = spectral.sine_window(1024).astype(np.float64)
  np.testing.assert_allclose(w[:512] ** 2 + w[512:] ** 2, 1.0, atol=1e-6)


@pytest.mark.parametrize("num_samples", [1, 511, 512, 513, 5000, 16000])
def test_stft_matches_librosa(num_samples):
  """librosa's STFT of the same padded signal (the module docstring's framing), frame by frame."""
  import librosa
  x = np.random.default_rng(num_samples).standard_normal(num_samples).astype(np.float32)
  hop = DEFAULT_AUDIO_CONFIG.hop_length
  padded = np.pad(x, (hop, hop + (-num_samples) % hop))
  reference = librosa.stft(padded, n_fft=1024, hop_length=hop, window=spectral.sine_window(1024),
                           center=False).T
  spec = spectral.stft_numpy(x)
  assert spec.shape == reference.shape == (spectral.num_frames(num_samples), 513)
  np.testing.assert_allclose(spec, reference, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("num_samples", [700, 16000, 16001])
def test_identity_mask_reconstructs(num_samples):
  x = np.random.default_rng(1).standard_normal(num_samples).astype(np.float32)
  np.testing.assert_allclose(spectral.istft_numpy(spectral.stft_numpy(x), num_samples), x, atol=1e-5)


def test_batched_stft_equals_per_signal():
  x = np.random.default_rng(2).standard_normal((3, 4000)).astype(np.float32)
  batched = spectral.stft_numpy(x)
  np.testing.assert_allclose(spectral.istft_numpy(batched, 4000), x, atol=1e-5)
  for i in range(3):
    np.testing.assert_allclose(batched[i], spectral.stft_numpy(x[i]), atol=1e-6)
