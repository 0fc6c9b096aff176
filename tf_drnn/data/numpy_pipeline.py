"""NumPy training batches for the Keras JAX trainer (`tf_drnn.train_jax`): no TensorFlow.

The examples are those of `pipeline.training_dataset`: one (clip, shift) pair per example,
0 dB sources, the accompaniment rolled (on the grid or at random) and, with
`remix_probability`, taken from another clip; the mixture at the training level. Instead of
spectrogram sequences a batch holds the waveform behind each `sequence_length`-frame
sequence, [B, 3 (mixture, vocals, accompaniment), (L + 1) * hop] samples, and
:func:`segment_spectra` turns it into the very frames `spectral.stft` gives, on the
accelerator. The random draws differ from the tf.data pipeline's; their distribution does not.
"""
import numpy as np

from tf_drnn import spectral
from tf_drnn.choices import TARGETS
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.data.sources import TRAINING_LEVEL_DBFS, shift_pairs, voice_gain


def mix_example(sources, index, shift, partner=None, level_db=TRAINING_LEVEL_DBFS, vocals_gain=None):
  """[3 (mixture, vocals, accompaniment), samples] for clip `index`, scaled to `level_db` RMS.

  The accompaniment of clip `partner` (default: the same clip) is rolled by `shift` samples,
  looped or cut to the voice's length and brought back to unit RMS. `vocals_gain` (None: 1)
  scales the unit-RMS voice first: the voice-to-accompaniment ratio is 20 log10(vocals_gain) dB.
  """
  vocals = sources[index][0] if vocals_gain is None else sources[index][0] * np.float32(vocals_gain)
  accompaniment = np.roll(sources[index if partner is None else partner][1], shift)
  repeats = -(-len(vocals) // len(accompaniment))
  accompaniment = np.tile(accompaniment, repeats)[:len(vocals)]
  accompaniment = accompaniment / (np.sqrt(np.mean(np.square(accompaniment))) + 1e-12)
  mixture = vocals + accompaniment
  gain = 10.0 ** (level_db / 20.0) / (np.sqrt(np.mean(np.square(mixture))) + 1e-12)
  return (np.stack([mixture, vocals, accompaniment]) * gain).astype(np.float32)


def sequence_segments(signals, sequence_length, config=DEFAULT_AUDIO_CONFIG):
  """[channels, samples] -> [n, channels, (L + 1) * hop]: the samples behind each L-frame sequence.

  With the STFT's padding (`spectral`), frame t covers padded samples [t hop, (t + 2) hop),
  so sequence k (frames kL .. kL + L - 1) covers [kL hop, (kL + L + 1) hop). The last sequence
  is zero-padded, which gives all-zero frames, as `tf.signal.frame(pad_end=True)` does.
  """
  hop = config.hop_length
  samples = signals.shape[-1]
  frames = spectral.num_frames(samples, config)
  count = -(-frames // sequence_length)
  padded = np.zeros(signals.shape[:-1] + (count * sequence_length * hop + hop,), np.float32)
  padded[..., hop:hop + samples] = signals
  windows = np.lib.stride_tricks.sliding_window_view(padded, (sequence_length + 1) * hop, axis=-1)
  return np.ascontiguousarray(np.moveaxis(windows[..., ::sequence_length * hop, :], -2, 0))


def batches(sources, batch_size, sequence_length, circular_shift=10000, seed=0, random_shift=False,
            remix_probability=0.0, level_range_db=0.0, shuffle_buffer=512, config=DEFAULT_AUDIO_CONFIG,
            voice_db_range=()):
  """Endless generator of float32 [batch_size, 3, (L + 1) * hop] waveform batches (see module doc).

  voice_db_range: (lo, hi) dB: each example's voice-to-accompaniment ratio drawn uniformly from
  it (`sources.voice_gain`, as the tf.data pipeline); () keeps 0 dB and the same draws as before.
  """
  rng = np.random.default_rng(seed)
  lengths = [len(v) for v, _ in sources]
  pairs = shift_pairs(lengths, circular_shift)
  per_pass = sum(-(-spectral.num_frames(lengths[i], config) // sequence_length) for i, _ in pairs)
  buffer_size = max(batch_size, min(shuffle_buffer, per_pass))
  buffer = []
  while True:
    for index, shift in pairs[rng.permutation(len(pairs))]:
      draws = rng.uniform(size=5 if voice_db_range else 4)
      partner = min(int(draws[1] * len(sources)), len(sources) - 1) if draws[0] < remix_probability else index
      if random_shift:
        shift = int(draws[2] * len(sources[partner][1]))
      level_db = TRAINING_LEVEL_DBFS + level_range_db * (2.0 * draws[3] - 1.0)
      gain = voice_gain(draws[4], voice_db_range) if voice_db_range else None
      buffer.extend(sequence_segments(mix_example(sources, index, shift, partner, level_db, gain),
                                      sequence_length, config))
      while len(buffer) >= buffer_size:
        batch = []
        for _ in range(batch_size):  # Draw without replacement: swap a random element to the end.
          i = rng.integers(len(buffer))
          buffer[i], buffer[-1] = buffer[-1], buffer[i]
          batch.append(buffer.pop())
        yield np.stack(batch)


def segment_spectra(segments, target="magnitude", config=DEFAULT_AUDIO_CONFIG):
  """Waveform segments [B, 3, (L + 1) hop] -> (mixture magnitude [B, L, bins], targets [B, L, 2, bins]).

  In `keras.ops` (any backend), so the STFT runs on the accelerator. The targets are the
  source magnitudes, or their phase-sensitive projections (`pipeline.source_targets`).
  """
  from keras import ops
  if target not in TARGETS:
    raise ValueError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
  hop = config.hop_length
  batch, channels, samples = segments.shape
  chunks = ops.reshape(segments, [batch, channels, samples // hop, hop])
  frames = ops.concatenate([chunks[:, :, :-1], chunks[:, :, 1:]], axis=-1)
  real, imag = ops.rfft(frames * spectral.sine_window(config.n_fft))
  magnitudes = ops.sqrt(real * real + imag * imag)  # [B, 3, L, bins]
  mixture = magnitudes[:, 0]
  if target == "magnitude":
    sources = magnitudes[:, 1:]
  else:
    projections = (real[:, 1:] * real[:, :1] + imag[:, 1:] * imag[:, :1]) / ops.maximum(mixture, 1e-8)[:, None]
    sources = ops.minimum(ops.maximum(projections, 0.0), mixture[:, None])
  return mixture, ops.transpose(sources, [0, 2, 1, 3])
