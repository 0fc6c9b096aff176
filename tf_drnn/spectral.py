"""STFT and inverse STFT with the project's AudioConfig, in NumPy (any backend, no TensorFlow).

Framing convention (shared by offline separation and the streaming export): the
signal is padded with `hop` zeros on the left and up to a whole number of hops plus
`hop` zeros on the right, so every input sample is covered by exactly two sine-windowed
frames and overlap-add of the windowed inverse frames reconstructs it exactly. Frame
`t` covers padded samples [t * hop, t * hop + n_fft), i.e. original samples
[(t - 1) * hop, (t + 1) * hop).
"""
import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG


def num_frames(num_samples, config=DEFAULT_AUDIO_CONFIG):
  """Number of STFT frames for a signal of `num_samples` samples."""
  hop = config.hop_length
  return -(-num_samples // hop) + 1


def sine_window(length, dtype=np.float32):
  """sin(pi * (n + 0.5) / length), n = 0..length-1: its square overlap-adds to 1 at hop length/2."""
  return np.sin(np.pi * (np.arange(length) + 0.5) / length).astype(dtype)


def _padding(num_samples, config):
  hop = config.hop_length
  right = hop + (-num_samples) % hop
  return hop, right


def stft_numpy(waveform, config=DEFAULT_AUDIO_CONFIG):
  """NumPy STFT (the module's framing). [..., samples] float -> complex64 [..., frames, bins]."""
  waveform = np.asarray(waveform, np.float32)
  left, right = _padding(waveform.shape[-1], config)
  padded = np.pad(waveform, [(0, 0)] * (waveform.ndim - 1) + [(left, right)])
  frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft, axis=-1)[..., ::config.hop_length, :]
  return np.fft.rfft(frames * sine_window(config.n_fft), axis=-1).astype(np.complex64)


def istft_numpy(spectrogram, num_samples, config=DEFAULT_AUDIO_CONFIG):
  """NumPy inverse STFT (the module's framing). [..., frames, bins] -> float32 [..., num_samples]."""
  frames = np.fft.irfft(spectrogram, n=config.n_fft, axis=-1) * sine_window(config.n_fft, np.float64)
  hop = config.hop_length  # n_fft = 2 hop (AudioConfig): each frame is two halves of one hop.
  count = frames.shape[-2]
  signal = np.zeros(frames.shape[:-2] + (hop * (count + 1),), np.float64)
  signal[..., :count * hop] += frames[..., :hop].reshape(frames.shape[:-2] + (count * hop,))
  signal[..., hop:] += frames[..., hop:].reshape(frames.shape[:-2] + (count * hop,))
  return signal[..., hop:hop + num_samples].astype(np.float32)
