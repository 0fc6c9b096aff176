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


LIVE = AudioConfig(hop_length=128, window="asymmetric_sine")


def test_asymmetric_windows_overlap_add_to_one_and_reduce_to_the_sine_window():
  analysis, synthesis = spectral.analysis_window(LIVE, np.float64), spectral.synthesis_window(LIVE, np.float64)
  assert analysis.shape == (1024,) and synthesis.shape == (256,)
  product = analysis[-256:] * synthesis
  np.testing.assert_allclose(product[:128] + product[128:], 1.0, atol=1e-12)
  assert 888 <= int(np.argmax(analysis)) <= 896  # peaks one hop before the frame's end: frame t at sample t * hop
  sine = spectral.sine_window(1024)
  np.testing.assert_array_equal(spectral.analysis_window(DEFAULT_AUDIO_CONFIG), sine)
  np.testing.assert_allclose(spectral.synthesis_window(DEFAULT_AUDIO_CONFIG), sine, atol=1e-6)
  with pytest.raises(ValueError):
    AudioConfig(hop_length=512, window="asymmetric_sine")


@pytest.mark.parametrize("num_samples", [100, 4000, 4001])
def test_asymmetric_stft_reconstructs_and_frames_end_one_hop_after_their_time(num_samples):
  x = np.random.default_rng(3).standard_normal(num_samples).astype(np.float32)
  spec = spectral.stft_numpy(x, LIVE)
  assert spec.shape == (spectral.num_frames(num_samples, LIVE), 513)
  np.testing.assert_allclose(spectral.istft_numpy(spec, num_samples, LIVE), x, atol=1e-5)
  # Frame t covers original samples [(t + 1) 128 - 1024, (t + 1) 128): frame 2 is the windowed x[:384].
  frame = np.pad(x, (1024 - 384, 0))[:1024] if num_samples >= 384 else None
  if frame is not None:
    np.testing.assert_allclose(spec[2], np.fft.rfft(frame * spectral.analysis_window(LIVE)), atol=1e-3)
