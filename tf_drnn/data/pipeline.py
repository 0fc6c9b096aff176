"""tf.data training pipeline: 0 dB mixing with circular shifts, STFT, sequences, batches.

All training sources live in memory (MIR-1K's 175 training clips are ~90 MB as float32).
Each element of the pipeline is one (clip, shift) pair: the accompaniment is rolled by
`shift` samples against the voice, the mixture is scaled to a fixed RMS level, and the
magnitude spectrograms of mixture and sources are cut into `sequence_length` frames.
"""
import numpy as np
import tensorflow as tf

from tf_drnn import spectral
from tf_drnn.choices import TARGETS
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
# The TF-free parts (loading, speed perturbation, shift grid, statistics) live in `sources`.
from tf_drnn.data.sources import (TRAINING_LEVEL_DBFS, load_sources, shift_pairs,  # noqa: F401
                                  speed_perturbed, statistics_magnitudes, voice_gain)


def training_dataset(sources, batch_size, sequence_length, circular_shift=10000, seed=0,
                     config=DEFAULT_AUDIO_CONFIG, shuffle_buffer=2048, repeat=True,
                     random_shift=False, remix_probability=0.0, level_range_db=0.0,
                     target="magnitude", voice_db_range=()):
  """Infinite dataset of (mixture magnitude [B, L, bins], targets [B, L, 2, bins]).

  Args:
    sources: From :func:`load_sources`.
    batch_size: Sequences per batch (global batch under a distribution strategy).
    sequence_length: Frames per sequence, L.
    circular_shift: Step in samples between accompaniment shifts (0: no shifting). It
      also sets how many examples make one pass over the data (one per clip and shift).
    seed: Shuffling and augmentation seed.
    random_shift: Roll the accompaniment by a uniformly random offset instead of the
      fixed grid 0, step, 2 step, ... (same number of examples per pass).
    remix_probability: Chance that an example pairs the voice with the accompaniment of
      another training clip (drawn uniformly, rolled at random, looped or cut to the
      voice's length and rescaled to unit energy): mixtures the dataset never had.
    level_range_db: Mixture RMS drawn uniformly within +-level_range_db of
      TRAINING_LEVEL_DBFS (0: always at it). Matters only to a model with a level feature.
    target: "magnitude" (|Y|, the paper) or "phase_sensitive" (|Y| cos(angle Y - angle X)
      clipped to [0, |X|]: the part of each source that the mixture phase can resynthesize).
    voice_db_range: (lo, hi): each example's voice-to-accompaniment ratio drawn uniformly in
      dB from it (`sources.voice_gain`); () keeps the paper's 0 dB (and the same draws as before).
  """
  if target not in TARGETS:
    raise ValueError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
  lengths = [len(v) for v, _ in sources]
  offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  all_vocals = tf.constant(np.concatenate([v for v, _ in sources]))
  all_accompaniment = tf.constant(np.concatenate([a for _, a in sources]))
  pairs = shift_pairs(lengths, circular_shift)

  num_clips = len(sources)

  def mix(element_index, pair):
    index, shift = pair[0], pair[1]
    draws = tf.random.stateless_uniform([5 if voice_db_range else 4],
                                        seed=tf.stack([tf.cast(seed, tf.int64), element_index]))
    partner = tf.where(draws[0] < remix_probability,
                       tf.minimum(tf.cast(draws[1] * num_clips, tf.int64), num_clips - 1), index)
    start, stop = tf.gather(offsets, index), tf.gather(offsets, index + 1)
    vocals = all_vocals[start:stop]
    partner_start, partner_stop = tf.gather(offsets, partner), tf.gather(offsets, partner + 1)
    accompaniment = all_accompaniment[partner_start:partner_stop]
    if random_shift:
      shift = tf.cast(draws[2] * tf.cast(partner_stop - partner_start, tf.float32), tf.int64)
    accompaniment = tf.roll(accompaniment, shift, axis=0)
    accompaniment = _loop_to_length(accompaniment, stop - start)
    accompaniment /= tf.sqrt(tf.reduce_mean(tf.square(accompaniment))) + 1e-12
    if voice_db_range:
      vocals = vocals * voice_gain(draws[4], voice_db_range)
    mixture = vocals + accompaniment
    level_db = TRAINING_LEVEL_DBFS + level_range_db * (2.0 * draws[3] - 1.0)
    gain = 10.0 ** (level_db / 20.0) / (tf.sqrt(tf.reduce_mean(tf.square(mixture))) + 1e-12)
    spectra = source_targets(spectral.stft(tf.stack([mixture, vocals, accompaniment]) * gain, config),
                             target)
    # [3, frames, bins] -> sequences [n, L, 3, bins]
    spectra = tf.transpose(spectra, [1, 0, 2])
    sequences = tf.signal.frame(spectra, sequence_length, sequence_length, pad_end=True, axis=0)
    return sequences[:, :, 0], sequences[:, :, 1:]

  dataset = tf.data.Dataset.from_tensor_slices(pairs)
  dataset = dataset.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  dataset = dataset.enumerate().map(mix, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
  dataset = dataset.flat_map(lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)))
  dataset = dataset.shuffle(shuffle_buffer, seed=seed + 1)
  dataset = dataset.batch(batch_size, drop_remainder=True)
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def source_targets(spectra, target="magnitude"):
  """[3 (mixture, vocals, accompaniment), frames, bins] complex -> float magnitudes and targets.

  "magnitude": |X|, |Y1|, |Y2|. "phase_sensitive": |X| and, for each source, the projection
  of Y onto the mixture's phase, Re(Y conj X) / |X|, clipped to [0, |X|] (truncated
  phase-sensitive target, Erdogan et al., ICASSP 2015). The two projections sum to |X|,
  as the joint mask's outputs do.
  """
  magnitudes = tf.abs(spectra)
  if target == "magnitude":
    return magnitudes
  mixture, mixture_magnitude = spectra[0], magnitudes[0]
  projections = tf.math.real(spectra[1:] * tf.math.conj(mixture)[tf.newaxis])
  projections = projections / tf.maximum(mixture_magnitude, 1e-8)[tf.newaxis]
  projections = tf.clip_by_value(projections, 0.0, mixture_magnitude[tf.newaxis])
  return tf.concat([mixture_magnitude[tf.newaxis], projections], axis=0)


def _loop_to_length(signal, length):
  """Repeats a 1-D signal end to end and cuts it to `length` samples."""
  signal_length = tf.shape(signal, out_type=tf.int64)[0]
  return tf.tile(signal, [(length + signal_length - 1) // signal_length])[:length]
