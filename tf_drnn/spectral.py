"""STFT and inverse STFT with the project's AudioConfig, in NumPy (any backend, no TensorFlow).

Framing convention (shared by offline separation and the streaming export): the
signal is padded with `n_fft - hop` zeros on the left and up to a whole number of hops
plus `hop` zeros on the right. Frame `t` covers padded samples [t * hop, t * hop + n_fft),
i.e. original samples [(t + 1) * hop - n_fft, (t + 1) * hop); its analysis window peaks at
original sample t * hop. The synthesis window is nonzero on the frame's last 2 hop samples
only, original [(t - 1) * hop, (t + 1) * hop), so every sample is rebuilt from exactly two
frames and the product of the windows overlap-adds to one (exact reconstruction). With the
paper's sine window (n_fft = 2 hop) both windows are the whole frame.
"""
import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG


def num_frames(num_samples, config=DEFAULT_AUDIO_CONFIG):
  """Number of STFT frames for a signal of `num_samples` samples."""
  hop = config.hop_length
  return -(-num_samples // hop) + 1


def stream_latency_samples(config, delay):
  """Samples by which a stream's output lags its input (an impulse's delay): one hop of synthesis
  overlap plus `delay` look-ahead frames, (1 + delay) hop, whatever the analysis window's length.
  A live caller also waits up to one hop for each block to fill (algorithmic latency: + hop)."""
  return (1 + int(delay)) * config.hop_length


def stream_tail_samples(config, delay):
  """Input samples a stream keeps from one call to the next: the n_fft - hop that the next frame shares
  with this call's input, plus `delay` look-ahead hops (the frames transformed a call ahead)."""
  return config.n_fft - config.hop_length + int(delay) * config.hop_length


def sine_window(length, dtype=np.float32):
  """sin(pi * (n + 0.5) / length), n = 0..length-1: its square overlap-adds to 1 at hop length/2."""
  return np.sin(np.pi * (np.arange(length) + 0.5) / length).astype(dtype)


def analysis_window(config=DEFAULT_AUDIO_CONFIG, dtype=np.float32):
  """The analysis window [n_fft]: the rising half of a sine window of 2 (n_fft - hop) samples, then
  the falling half of one of 2 hop samples (with n_fft = 2 hop: the sine window)."""
  hop, rise = config.hop_length, config.n_fft - config.hop_length
  window = np.concatenate([sine_window(2 * rise, np.float64)[:rise], sine_window(2 * hop, np.float64)[hop:]])
  return window.astype(dtype)


def synthesis_window(config=DEFAULT_AUDIO_CONFIG, dtype=np.float32):
  """The synthesis window on a frame's last 2 hop samples [2 hop]: sine(2 hop)^2 / analysis window
  there, so the two windows' product overlap-adds to one at the hop (the sine window at n_fft = 2 hop)."""
  hop = config.hop_length
  target = sine_window(2 * hop, np.float64) ** 2
  return (target / analysis_window(config, np.float64)[-2 * hop:]).astype(dtype)


def _padding(num_samples, config):
  hop = config.hop_length
  right = hop + (-num_samples) % hop
  return config.n_fft - hop, right


def stft_numpy(waveform, config=DEFAULT_AUDIO_CONFIG):
  """NumPy STFT (the module's framing). [..., samples] float -> complex64 [..., frames, bins]."""
  waveform = np.asarray(waveform, np.float32)
  left, right = _padding(waveform.shape[-1], config)
  padded = np.pad(waveform, [(0, 0)] * (waveform.ndim - 1) + [(left, right)])
  frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft, axis=-1)[..., ::config.hop_length, :]
  return np.fft.rfft(frames * analysis_window(config), axis=-1).astype(np.complex64)


def istft_numpy(spectrogram, num_samples, config=DEFAULT_AUDIO_CONFIG):
  """NumPy inverse STFT (the module's framing). [..., frames, bins] -> float32 [..., num_samples]."""
  hop = config.hop_length  # Each frame's synthesis part is two halves of one hop.
  frames = np.fft.irfft(spectrogram, n=config.n_fft, axis=-1)[..., -2 * hop:] * synthesis_window(config, np.float64)
  count = frames.shape[-2]
  signal = np.zeros(frames.shape[:-2] + (hop * (count + 1),), np.float64)
  signal[..., :count * hop] += frames[..., :hop].reshape(frames.shape[:-2] + (count * hop,))
  signal[..., hop:] += frames[..., hop:].reshape(frames.shape[:-2] + (count * hop,))
  return signal[..., hop:hop + num_samples].astype(np.float32)
