"""Separation of waveforms with a trained model."""
import numpy as np

from tf_drnn import spectral
from tf_drnn.config import DEFAULT_AUDIO_CONFIG


def masks_from_magnitudes(source_magnitudes, mixture_magnitude, binary=False):
  """Source magnitudes [..., S, bins] and |X| [..., bins] -> masks [..., 2, bins] (vocals, accompaniment).

  A one-source model's accompaniment mask is what the vocals leave: max(1 - m_vocals, 0).
  """
  import tensorflow as tf
  masks = source_magnitudes / (mixture_magnitude[..., None, :] + 1e-12)
  if masks.shape[-2] == 1:
    masks = tf.concat([masks, tf.nn.relu(1.0 - masks)], axis=-2)
  if binary:
    vocals_win = tf.cast(masks[..., 0, :] >= masks[..., 1, :], masks.dtype)
    masks = tf.stack([vocals_win, 1.0 - vocals_win], axis=-2)
  return masks


def offline_estimates(model, mixture, binary=False, config=DEFAULT_AUDIO_CONFIG):
  """Separates a whole mono waveform [samples] at once -> (vocals, accompaniment) [samples]."""
  import tensorflow as tf
  spectrum = spectral.stft(mixture, config)
  magnitude = tf.abs(spectrum)
  sources = model(magnitude[None], training=False)[0]
  masks = masks_from_magnitudes(sources, magnitude, binary)
  masked = tf.cast(masks, tf.complex64) * spectrum[:, None, :]  # [frames, 2, bins]
  estimates = spectral.istft(tf.transpose(masked, [1, 0, 2]), len(mixture), config)
  return np.asarray(estimates[0]), np.asarray(estimates[1])
