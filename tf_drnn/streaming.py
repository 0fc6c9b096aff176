"""The trained model run chunk by chunk, with its state passed in and out as one tensor.

Two levels, both built from the very layers of the trained Keras model (no second
implementation):

* :class:`FrameStream` - magnitude frames in, source magnitudes out, `delay` frames late.
  State: the last `context - 1` input frames and each recurrent layer's hidden state.
* :class:`PcmStream` - PCM samples in, separated PCM out, `latency_samples` late.
  Analysis window, FFT, model, mask, inverse FFT and overlap-add all run inside, with
  builtin TFLite ops only (the inverse real FFT is computed with forward RFFTs).

Feeding a whole signal through a stream from zero state, followed by `latency_samples`
zeros, gives exactly the offline result of `tf_drnn.models.offline_estimates`.
"""
import tensorflow as tf

from tf_drnn import spectral
from tf_drnn.model import ReluRecurrent, masks_from_magnitudes


class FrameStream:
  """Streams magnitude frames through a model built by :func:`tf_drnn.model.build_model`.

  call(magnitude [B, T, bins], state [B, state_size]) -> (sources [B, T, S, bins], next_state).
  Output frame i of a call is input frame i - delay (the first `delay` outputs of a stream
  are pre-roll, for frames before the start).
  """

  def __init__(self, model):
    from tf_drnn.model import ModelParts
    self.model = model
    parts = ModelParts(model)
    self.context, self.features, self.sources = parts.context, parts.features, parts.sources
    self.hidden, self.heads = parts.hidden, parts.heads
    self.audio_config = parts.audio_config
    self.num_bins = int(model.input_shape[-1])
    self.delay = self.context.delay
    self.buffer_frames = self.context.context - 1
    self.recurrent_units = [layer.units for layer in self.hidden if isinstance(layer, ReluRecurrent)]
    self.state_size = self.buffer_frames * self.num_bins + sum(self.recurrent_units)
    self.num_sources = len(self.heads)

  def initial_state(self, batch_size=1):
    return tf.zeros([batch_size, self.state_size], tf.float32)

  def __call__(self, magnitude, state):
    batch = tf.shape(magnitude)[0]
    steps = magnitude.shape[1] if magnitude.shape[1] is not None else tf.shape(magnitude)[1]
    split = [self.buffer_frames * self.num_bins] + self.recurrent_units
    buffer, *hidden_states = tf.split(state, split, axis=-1)
    frames = tf.concat([tf.reshape(buffer, [batch, self.buffer_frames, self.num_bins]), magnitude], axis=1)
    x = self.context(self.features(frames))
    next_hidden = []
    for layer in self.hidden:
      if isinstance(layer, ReluRecurrent):
        x, hidden = layer(x, initial_state=hidden_states[len(next_hidden)])
        next_hidden.append(hidden)
      else:
        x = layer(x)
    heads = [head(x) for head in self.heads]
    current = self.buffer_frames - self.delay  # Where each window's current frame sits in `frames`.
    centre = frames[:, current:current + steps]
    sources = self.sources(heads, centre)
    next_buffer = tf.reshape(frames[:, steps:], [batch, self.buffer_frames * self.num_bins])
    return sources, tf.concat([next_buffer] + next_hidden, axis=-1)


def inverse_rfft(real, imag, n_fft):
  """Inverse real FFT from one forward RFFT (builtin TFLite ops; no complex inputs).

  For a Hermitian spectrum X = R + iI (bins = n_fft/2 + 1), R extended evenly and I oddly
  to n_fft points have FFTs that are purely real and purely imaginary, so one RFFT of
  their sum z (z[n] = R[n] + I[n], z[n_fft - n] = R[n] - I[n]) carries both:
  x[n] = (Re Z[n] + Im Z[n]) / n_fft for n <= n_fft/2 and x[n_fft - n] = (Re Z[n] - Im Z[n]) / n_fft.

  real, imag: [..., bins] -> frames [..., n_fft].
  """
  folded = tf.concat([real + imag, tf.reverse((real - imag)[..., 1:-1], axis=[-1])], axis=-1)
  spectrum = tf.signal.rfft(folded)
  spectrum_real, spectrum_imag = tf.math.real(spectrum), tf.math.imag(spectrum)
  first = (spectrum_real + spectrum_imag) / n_fft  # n = 0..N/2
  second = (spectrum_real - spectrum_imag) / n_fft  # N - n
  return tf.concat([first, tf.reverse(second[..., 1:-1], axis=[-1])], axis=-1)


class PcmStream:
  """Streams PCM through a model: [channels, n * hop] samples in, two stems out.

  call(pcm [channels, n * hop], state [1, state_size]) ->
      (vocals [channels, n * hop], accompaniment [channels, n * hop], next_state).
  The mask is computed on the channel mean and applied to every channel. Output lags
  input by `latency_samples` = (1 + delay) * hop samples (an impulse fed in comes out that
  many samples later; a live caller also waits for each hop to fill: `algorithmic_latency_samples`).

  Each call transforms only its own n frames: the spectra of the `delay` look-ahead frames
  are kept from the call before. Where the two masks sum to one (the joint soft mask, or a
  binary mask), the windows' product overlap-adds to one, so the accompaniment is the
  delayed input minus the vocals, and only the vocals need an inverse FFT.

  State layout (flat float32): input tail [channels, n_fft - hop + delay * hop] | look-ahead
  spectra [real/imag, channels, delay, bins] | model state | overlap-add tails [stems, channels, hop]
  (stems: 1 where the accompaniment is subtracted, else 2).
  """

  def __init__(self, model, channels=1, binary_mask=False, config=None):
    self.frames = FrameStream(model)
    config = config or self.frames.audio_config
    self.channels = int(channels)
    self.binary_mask = binary_mask
    self.config = config
    self.hop = config.hop_length
    self.delay = self.frames.delay
    self.latency_samples = spectral.stream_latency_samples(config, self.delay)
    self.algorithmic_latency_samples = self.latency_samples + self.hop
    self.tail_samples = spectral.stream_tail_samples(config, self.delay)
    self.subtracts_accompaniment = binary_mask or self.frames.sources.output_format == "masked"
    self.inverse_stems = 1 if self.subtracts_accompaniment else 2
    bins = self.frames.num_bins
    self._sizes = [self.channels * self.tail_samples, 2 * self.channels * self.delay * bins,
                   self.frames.state_size, self.inverse_stems * self.channels * self.hop]
    self.state_size = sum(self._sizes)
    self.num_bins = bins
    self.analysis_window = tf.constant(spectral.analysis_window(config))
    self.synthesis_window = tf.constant(spectral.synthesis_window(config))

  def initial_state(self):
    return tf.zeros([1, self.state_size], tf.float32)

  def __call__(self, pcm, state):
    vocals, accompaniment, next_state, _, _ = self.separate_with_masks(pcm, state)
    return vocals, accompaniment, next_state

  def separate_with_masks(self, pcm, state):
    """Like __call__, plus what the mask was computed from, per frame of this call:
    (vocals, accompaniment, next_state, vocal_mask [n, bins], magnitude [n, bins]).

    Row i, counted over every call of a stream, is the offline frame t = i - delay (rows with
    t < 0 are pre-roll); magnitude is |STFT| of the channel mean.
    """
    hop, n_fft, c, delay = self.hop, self.config.n_fft, self.channels, self.delay
    bins, stems = self.frames.num_bins, self.inverse_stems
    steps = pcm.shape[-1] // hop
    input_tail, lookahead, model_state, ola_tails = tf.split(state, self._sizes, axis=-1)
    signal = tf.concat([tf.reshape(input_tail, [c, self.tail_samples]), pcm], axis=-1)
    # This call's own frames: frame k (k = delay .. delay + steps - 1) starts at sample k * hop.
    frames = tf.signal.frame(signal[:, delay * hop:], n_fft, hop) * self.analysis_window  # [c, steps, n_fft]
    spectrum = tf.signal.rfft(frames)
    real, imag = tf.math.real(spectrum), tf.math.imag(spectrum)
    if delay:
      lookahead = tf.reshape(lookahead, [2, c, delay, bins])
      real = tf.concat([lookahead[0], real], axis=1)  # [c, delay + steps, bins]
      imag = tf.concat([lookahead[1], imag], axis=1)
    mono_real, mono_imag = tf.reduce_mean(real, axis=0), tf.reduce_mean(imag, axis=0)
    magnitude = tf.sqrt(mono_real * mono_real + mono_imag * mono_imag)  # [delay + steps, bins]
    sources, next_model_state = self.frames(magnitude[None, delay:], model_state)
    masks = masks_from_magnitudes(sources[0], magnitude[:steps], self.binary_mask)  # [steps, 2, bins]
    vocal_mask = masks[:, 0]
    masks = tf.transpose(masks, [1, 0, 2])[:stems, None]  # [stems, 1, steps, bins]
    time_frames = inverse_rfft(masks * real[:, :steps], masks * imag[:, :steps], n_fft)[..., -2 * hop:]
    time_frames = time_frames * self.synthesis_window  # [stems, c, steps, 2 hop]: the synthesis part
    # Overlap-add: block j = second half of frame j - 1 (or the saved tail) + first half of frame j.
    tails = tf.reshape(ola_tails, [stems, c, 1, hop])
    halves = tf.concat([tails, time_frames[..., hop:]], axis=2)  # [stems, c, steps + 1, hop]
    blocks = time_frames[..., :hop] + halves[:, :, :steps]
    output = tf.reshape(blocks, [stems, c, steps * hop])
    vocals = output[0]
    # Block j's mixture: the input, latency_samples late (synthesis part of frame j's first hop).
    first = n_fft - 2 * hop
    delayed_input = signal[:, first:first + steps * hop]
    accompaniment = delayed_input - vocals if self.subtracts_accompaniment else output[1]
    next_state = [tf.reshape(signal[:, -self.tail_samples:], [1, -1])]
    if delay:
      next_state.append(tf.reshape(tf.stack([real[:, steps:], imag[:, steps:]]), [1, -1]))
    next_state += [next_model_state, tf.reshape(halves[:, :, steps], [1, -1])]
    return vocals, accompaniment, tf.concat(next_state, axis=-1), vocal_mask, magnitude[:steps]
