"""A synthetic song for demos and tests: a sung-like harmonic voice with vibrato over chords."""
import numpy as np

from tf_drnn.config import DEFAULT_AUDIO_CONFIG


def sung_like_mixture(seconds=4.0, sample_rate=DEFAULT_AUDIO_CONFIG.sample_rate, seed=0):
  """(vocals, accompaniment), float32 [samples], peak about 0.5 when summed.

  The voice glides over a melody with 5.5 Hz vibrato, syllable-like amplitude swells and
  a harmonic spectrum; the accompaniment is plucked chord tones with a decay per beat
  plus a little noise.
  """
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  melody = np.array([220.0, 246.9, 261.6, 293.7, 329.6, 293.7, 261.6, 246.9])
  note = melody[(t / 0.5).astype(int) % len(melody)]
  f0 = note * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate
  envelope = 0.3 + 0.7 * np.sin(np.pi * ((t / 0.5) % 1.0)) ** 2
  vocals = sum(np.sin(k * phase) / k ** 1.2 for k in range(1, 12)) * envelope
  chords = [(130.8, 164.8, 196.0), (110.0, 130.8, 164.8), (98.0, 123.5, 146.8), (87.3, 110.0, 130.8)]
  chord = np.array(chords)[(t / 1.0).astype(int) % len(chords)]
  pluck = np.exp(-4 * (t % 0.25))
  accompaniment = sum(np.sign(np.sin(2 * np.pi * chord[:, i] * t + i)) * 0.3 + np.sin(2 * np.pi * 2 * chord[:, i] * t)
                      for i in range(3)) * pluck + 0.02 * rng.standard_normal(len(t))
  vocals = vocals / np.abs(vocals).max() * 0.25
  accompaniment = accompaniment / np.abs(accompaniment).max() * 0.25
  return vocals.astype(np.float32), accompaniment.astype(np.float32)
