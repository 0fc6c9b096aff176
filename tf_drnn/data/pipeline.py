"""The training example generator: 0 dB (or drawn-level) mixtures with circular shifts and
remixing, their magnitude spectrograms, sequences and shuffled batches. NumPy only, so both
Keras backends train from it (`tf_drnn.train` wraps it in tf.data under TensorFlow).

All training sources live in memory (MIR-1K's 175 training clips are ~90 MB as float32).
Each example is one (clip, shift) pair: the accompaniment (of the same clip, or with
`remix_probability` of another) is rolled by `shift` samples against the voice, looped or cut
to the voice's length and brought back to unit RMS (with `equalizer_db`, each source first passes
through a random equalizer of its own); the mixture is scaled to
TRAINING_LEVEL_DBFS; the magnitude spectrograms of mixture and sources are cut into
`sequence_length`-frame sequences (the last one zero-padded). A seeded generator gives the same
batches every time.
"""
import numpy as np

from tf_drnn import spectral
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.data.sources import shift_pairs, voice_gain
from tf_drnn.levels import TRAINING_LEVEL_DBFS, db_to_gain, rms


# Where a random equalizer's gains are drawn (Hz): octaves up to the model's 8 kHz Nyquist frequency.
EQUALIZER_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


def equalized(signal, gains_db, sample_rate=DEFAULT_AUDIO_CONFIG.sample_rate):
  """[samples] -> [samples] float32: `signal` through a zero-phase equalizer, at the same RMS.

  gains_db: one gain per EQUALIZER_HZ frequency, interpolated linearly over log frequency (held
  below 125 Hz and above 8 kHz); applied to the whole signal's spectrum, then rescaled to its RMS.
  """
  spectrum = np.fft.rfft(signal)
  log_hz = np.log2(np.maximum(np.fft.rfftfreq(len(signal), 1.0 / sample_rate), 1.0))
  curve = db_to_gain(np.interp(log_hz, np.log2(EQUALIZER_HZ), gains_db))
  filtered = np.fft.irfft(spectrum * curve, n=len(signal))
  return (filtered * (rms(signal) / (rms(filtered) + 1e-12))).astype(np.float32)


def mix_example(sources, index, shift, partner=None, vocals_gain=None, equalizers=None):
  """[3 (mixture, vocals, accompaniment), samples] for clip `index`, at TRAINING_LEVEL_DBFS RMS.

  The accompaniment of clip `partner` (default: the same clip) is rolled by `shift` samples,
  looped or cut to the voice's length and brought back to unit RMS. `vocals_gain` (None: 1)
  scales the unit-RMS voice first: the voice-to-accompaniment ratio is 20 log10(vocals_gain) dB.
  `equalizers` (None: none): [2 (vocals, accompaniment), len(EQUALIZER_HZ)] gains in dB, each
  source through its own equalizer (`equalized`) before the levels are set.
  """
  vocals = sources[index][0]
  accompaniment = np.roll(sources[index if partner is None else partner][1], shift)
  repeats = -(-len(vocals) // len(accompaniment))
  accompaniment = np.tile(accompaniment, repeats)[:len(vocals)]
  if equalizers is not None:
    vocals, accompaniment = equalized(vocals, equalizers[0]), equalized(accompaniment, equalizers[1])
  vocals = vocals if vocals_gain is None else vocals * np.float32(vocals_gain)
  accompaniment = accompaniment / (rms(accompaniment) + 1e-12)
  mixture = vocals + accompaniment
  gain = db_to_gain(TRAINING_LEVEL_DBFS) / (rms(mixture) + 1e-12)
  return (np.stack([mixture, vocals, accompaniment]) * gain).astype(np.float32)


def example_sequences(signals, sequence_length, config=DEFAULT_AUDIO_CONFIG):
  """[3, samples] -> magnitudes [n, L, 3, bins] float32: the STFT of each signal cut into
  L-frame sequences, the last one padded with zero frames."""
  magnitudes = np.abs(spectral.stft_numpy(signals, config))  # [3, frames, bins]
  frames = magnitudes.shape[1]
  count = -(-frames // sequence_length)
  padded = np.zeros((count * sequence_length, 3, magnitudes.shape[-1]), np.float32)
  padded[:frames] = np.moveaxis(magnitudes, 0, 1)
  return padded.reshape(count, sequence_length, 3, -1)


def batches(sources, batch_size, sequence_length, circular_shift=10000, seed=0, random_shift=False,
            remix_probability=0.0, voice_db_range=(), shuffle_buffer=256, config=DEFAULT_AUDIO_CONFIG,
            collections=None, weights=(), remix_across_collections=0.0, equalizer_db=0.0):
  """Endless generator of (mixture [B, L, bins], targets [B, L, 2 (vocals, accompaniment), bins]),
  float32 magnitudes.

  Args:
    sources: From `sources.load_sources` (unit-RMS vocals and accompaniment per clip).
    circular_shift: Step in samples between accompaniment shifts (0: none); it also sets how many
      examples one pass holds (one per clip and shift, in a new random order each pass).
    seed: The seed of every draw.
    random_shift: Roll the accompaniment by a uniformly random offset instead of the grid
      0, step, 2 step, ... (the same number of examples per pass).
    remix_probability: Chance that an example pairs the voice with the accompaniment of another
      training clip of its collection (drawn uniformly, rolled at random when `random_shift`).
    voice_db_range: (lo, hi) dB: each example's voice-to-accompaniment ratio drawn uniformly from
      it (`sources.voice_gain`); (): 0 dB, as in the paper. Or one such range per collection.
    shuffle_buffer: Sequences shuffled together across examples.
    collections: The collection index of each source (None: one collection). Training on several
      collections draws each example's collection with probability `weights` (default: in
      proportion to their examples per pass), then the next (clip, shift) pair of that collection's
      own shuffled pass; remix partners come from the same collection (but see
      `remix_across_collections`).
    weights: Relative chance of each collection.
    remix_across_collections: Share of the remixed examples whose partner is drawn from the clips
      of every collection instead of the voice's own (e.g. a produced song's voice over a karaoke
      backing track, or the reverse).
  """
  rng = np.random.default_rng(seed)
  lengths = [len(v) for v, _ in sources]
  collections = np.zeros(len(sources), np.int64) if collections is None else np.asarray(collections, np.int64)
  count = int(collections.max()) + 1 if len(collections) else 1
  ranges = _per_collection_ranges(voice_db_range, count)
  members = [np.flatnonzero(collections == c) for c in range(count)]
  pairs = shift_pairs(lengths, circular_shift)
  per_pass = sum(-(-spectral.num_frames(lengths[i], config) // sequence_length) for i, _ in pairs)
  buffer_size = max(batch_size, min(shuffle_buffer, per_pass))
  buffer = []
  for collection, (index, shift), draws in _example_draws(rng, pairs, collections, count, weights):
    partner = _remix_partner(draws, index, members[collection], len(sources), remix_probability,
                             remix_across_collections)
    if random_shift:
      shift = int(draws[2] * len(sources[partner][1]))
    gain = voice_gain(draws[3], ranges[collection]) if ranges[collection] else None
    equalizers = rng.uniform(-equalizer_db, equalizer_db, (2, len(EQUALIZER_HZ))) if equalizer_db > 0 else None
    signals = mix_example(sources, index, shift, partner, gain, equalizers)
    buffer.extend(example_sequences(signals, sequence_length, config))
    while len(buffer) >= buffer_size:
      batch = []
      for _ in range(batch_size):  # Draw without replacement: swap a random element to the end.
        i = rng.integers(len(buffer))
        buffer[i], buffer[-1] = buffer[-1], buffer[i]
        batch.append(buffer.pop())
      batch = np.stack(batch)  # [B, L, 3, bins]
      yield batch[:, :, 0], batch[:, :, 1:]


def _remix_partner(draws, index, own, count, remix_probability, remix_across_collections):
  """The clip whose accompaniment goes under clip `index`'s voice: itself, or with `remix_probability`
  a uniformly drawn clip of its collection `own` (or, for `remix_across_collections` of those, of all
  `count` clips). draws[0] decides both, so the draws of runs without cross-collection remixes stay
  as they were."""
  if draws[0] >= remix_probability:
    return index
  if draws[0] < remix_probability * remix_across_collections:
    return min(int(draws[1] * count), count - 1)
  return int(own[min(int(draws[1] * len(own)), len(own) - 1)])


def _per_collection_ranges(voice_db_range, count):
  """[(lo, hi) or ()] * count from one range for all collections or one per collection."""
  ranges = tuple(voice_db_range or ())
  if ranges and not isinstance(ranges[0], (tuple, list)):
    ranges = (ranges,) * count
  ranges = ranges or ((),) * count
  if len(ranges) != count:
    raise ValueError(f"{len(ranges)} voice level ranges for {count} collections")
  return [tuple(r) for r in ranges]


def _example_draws(rng, pairs, collections, count, weights):
  """Endless (collection, (clip index, shift), 4 uniform draws): each collection's pairs in a new
  random order each of its passes. One collection: its passes back to back, as the paper trains."""
  if count == 1:
    while True:
      for pair in pairs[rng.permutation(len(pairs))]:
        yield 0, pair, rng.uniform(size=4)
  own = [pairs[collections[pairs[:, 0]] == c] for c in range(count)]
  weights = np.asarray(weights if len(weights) else [len(o) for o in own], np.float64)
  cumulative = np.cumsum(weights / weights.sum())
  queues = [[] for _ in range(count)]
  while True:
    draws = rng.uniform(size=5)
    collection = min(int(np.searchsorted(cumulative, draws[4], side="right")), count - 1)
    if not queues[collection]:
      queues[collection] = list(own[collection][rng.permutation(len(own[collection]))])
    yield collection, queues[collection].pop(), draws[:4]
