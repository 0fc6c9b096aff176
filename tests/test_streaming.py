"""Streams (state in, state out) reproduce the offline model exactly."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_drnn.config import AudioConfig
from tf_drnn.model import ModelParts, build_model
from tf_drnn.models import offline_estimates
from tf_drnn.streaming import FrameStream, PcmStream, inverse_rfft


def test_inverse_rfft_from_forward_ffts_matches_numpy():
  spectrum = np.fft.rfft(np.random.default_rng(0).standard_normal((4, 1024)))
  frames = inverse_rfft(tf.constant(spectrum.real, tf.float32), tf.constant(spectrum.imag, tf.float32), 1024)
  np.testing.assert_allclose(frames, np.fft.irfft(spectrum), atol=1e-5)


def _model(architecture, context, seed=0, **options):
  keras.utils.set_random_seed(seed)  # The same weights whatever ran before.
  model = build_model(architecture, context=context, hidden_units=12, **options)
  ModelParts(model).features.set_statistics(
      np.abs(np.random.default_rng(1).standard_normal((100, 513))).astype(np.float32))
  # Positive biases: no dead ReLU layer, heads away from zero. (Where both heads are ~0 the
  # joint mask is 0/0 and rounding alone decides it: no test of streaming equality then.)
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if getattr(layer, "bias", None) is not None:
      layer.bias.assign(rng.uniform(0.1, 0.5, layer.bias.shape).astype(np.float32))
  return model


@pytest.mark.parametrize("architecture,context,options", [
    ("drnn2", 3, {}), ("srnn", 5, {}), ("dnn", 1, {}), ("drnn1", 3, {}),
    ("drnn2", 3, {"output_format": "two_sources"})])
def test_frame_stream_matches_offline(architecture, context, options):
  model = _model(architecture, context, **options)
  magnitude = np.abs(np.random.default_rng(2).standard_normal((1, 15, 513))).astype(np.float32)
  stream = FrameStream(model)
  padded = np.concatenate([magnitude, np.zeros((1, stream.delay, 513), np.float32)], axis=1)
  state, outputs = stream.initial_state(), []
  for t in range(padded.shape[1]):
    out, state = stream(padded[:, t:t + 1], state)
    outputs.append(np.asarray(out))
  streamed = np.concatenate(outputs, axis=1)[:, stream.delay:]
  np.testing.assert_allclose(streamed, model(magnitude), rtol=1e-4, atol=1e-4)


def test_frame_stream_chunks_equal_single_frames():
  model = _model("drnn2", 3)
  magnitude = np.abs(np.random.default_rng(3).standard_normal((1, 12, 513))).astype(np.float32)
  stream = FrameStream(model)
  whole, state_whole = stream(magnitude, stream.initial_state())
  first, state = stream(magnitude[:, :5], stream.initial_state())
  second, state = stream(magnitude[:, 5:], state)
  np.testing.assert_allclose(np.concatenate([first, second], 1), whole, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(state, state_whole, rtol=1e-4, atol=1e-5)
  assert state.shape == (1, stream.state_size) == (1, 2 * 513 + 12)


def _stream_pcm(stream, signal, hops_per_call=1):
  """Feeds [channels, samples] through `stream` from zero state, flushes, and aligns the output."""
  channels, hop = signal.shape[0], stream.hop
  total = signal.shape[1] + stream.latency_samples
  total += (-total) % (hop * hops_per_call)
  fed = np.zeros((channels, total), np.float32)
  fed[:, :signal.shape[1]] = signal
  state, outs = stream.initial_state(), []
  for start in range(0, total, hop * hops_per_call):
    v, a, state = stream(tf.constant(fed[:, start:start + hop * hops_per_call]), state)
    assert state.shape == (1, stream.state_size)
    outs.append(np.stack([v, a]))
  return np.concatenate(outs, axis=-1)[..., stream.latency_samples:stream.latency_samples + signal.shape[1]]


@pytest.mark.parametrize("architecture,context,seed,hops_per_call", [
    ("drnn2", 3, 0, 1), ("drnn2", 3, 1, 3), ("srnn", 5, 0, 1), ("srnn", 5, 0, 4), ("dnn", 1, 0, 1),
    ("drnn1", 1, 2, 2)])
def test_pcm_stream_matches_offline_separation(architecture, context, seed, hops_per_call):
  model = _model(architecture, context, seed)
  signal = (0.1 * np.random.default_rng(4).standard_normal(5000)).astype(np.float32)
  vocals, accompaniment = offline_estimates(model, signal)
  stream = PcmStream(model)
  assert stream.latency_samples == 512 * (1 + (context - 1) // 2)
  assert stream.subtracts_accompaniment  # the joint mask: only the vocals are inverse-transformed
  streamed = _stream_pcm(stream, signal[None], hops_per_call)[:, 0]
  np.testing.assert_allclose(streamed[0], vocals, atol=1e-5)
  np.testing.assert_allclose(streamed[1], accompaniment, atol=1e-5)
  np.testing.assert_allclose(streamed.sum(0), signal, atol=1e-5)  # soft masks sum to one


@pytest.mark.parametrize("output_format,binary,subtracts", [
    ("masked", True, True), ("two_sources", False, False), ("two_sources", True, True),
    ("one_source", False, False)])
def test_pcm_stream_output_formats_and_binary_masks(output_format, binary, subtracts):
  model = _model("drnn2", 3, 3, output_format=output_format)
  signal = (0.1 * np.random.default_rng(5).standard_normal(4000)).astype(np.float32)
  vocals, accompaniment = offline_estimates(model, signal, binary=binary)
  stream = PcmStream(model, binary_mask=binary)
  assert stream.subtracts_accompaniment == subtracts
  streamed = _stream_pcm(stream, signal[None], 2)[:, 0]
  np.testing.assert_allclose(streamed[0], vocals, atol=1e-5)
  np.testing.assert_allclose(streamed[1], accompaniment, atol=1e-5)


def test_pcm_stream_applies_the_mean_channel_mask_to_each_channel():
  model = _model("drnn2", 3, 0)
  signal = (0.1 * np.random.default_rng(6).standard_normal(3000)).astype(np.float32)
  mono = _stream_pcm(PcmStream(model), signal[None])[:, 0]
  stereo = _stream_pcm(PcmStream(model, channels=2), np.stack([signal, signal]), 2)
  np.testing.assert_allclose(stereo[:, 0], mono, atol=1e-5)
  np.testing.assert_allclose(stereo[:, 1], mono, atol=1e-5)


LIVE = AudioConfig(hop_length=128, window="asymmetric_sine")  # the live model's STFT: 1024-point frames, 128 hop


@pytest.mark.parametrize("lookahead,hops_per_call", [(0, 1), (0, 3), (1, 2)])
def test_pcm_stream_at_a_short_hop_with_asymmetric_windows_matches_offline(lookahead, hops_per_call):
  model = _model("drnn2", 3, 1, config=LIVE, lookahead=lookahead)
  signal = (0.1 * np.random.default_rng(7).standard_normal(3000)).astype(np.float32)
  vocals, accompaniment = offline_estimates(model, signal)
  stream = PcmStream(model)
  assert (stream.hop, stream.delay, stream.latency_samples) == (128, lookahead, 128 * (1 + lookahead))
  streamed = _stream_pcm(stream, signal[None], hops_per_call)[:, 0]
  np.testing.assert_allclose(streamed[0], vocals, atol=1e-5)
  np.testing.assert_allclose(streamed[1], accompaniment, atol=1e-5)
  np.testing.assert_allclose(streamed.sum(0), signal, atol=1e-5)


def test_causal_context_sees_no_later_frame():
  """lookahead=0: changing frame t + 1 leaves the outputs of frames 0..t as they were."""
  model = _model("drnn2", 3, 2, config=LIVE, lookahead=0)
  magnitude = np.abs(np.random.default_rng(8).standard_normal((1, 10, 513))).astype(np.float32)
  changed = magnitude.copy()
  changed[:, 6:] *= 3.0
  before, after = np.asarray(model(magnitude)), np.asarray(model(changed))
  np.testing.assert_allclose(before[:, :6], after[:, :6], rtol=1e-5, atol=1e-6)
  assert np.abs(before[:, 6] - after[:, 6]).max() > 1e-3


def impulse_delay(stream, length=4096, at=1000):
  """Feeds an impulse (sample `at`) through a PcmStream one hop per call; the sample index at
  which the output (vocals + accompaniment, the mixture rebuilt) peaks, minus `at`."""
  signal = np.zeros(length, np.float32)
  signal[at] = 1.0
  state, outputs = stream.initial_state(), []
  for start in range(0, length, stream.hop):
    vocals, accompaniment, state = stream(tf.constant(signal[None, start:start + stream.hop]), state)
    outputs.append(np.asarray(vocals + accompaniment)[0])
  return int(np.argmax(np.abs(np.concatenate(outputs)))) - at


def test_measured_latency_of_the_live_configuration():
  model = _model("drnn2", 3, 0, config=LIVE, lookahead=0)
  stream = PcmStream(model)
  assert impulse_delay(stream) == stream.latency_samples == 128
  assert stream.algorithmic_latency_samples == 256  # plus one hop of buffering: 16 ms at 16 kHz


@pytest.mark.parametrize("name", ["drnn2", "drnn2_compact", "drnn2_live"])
def test_measured_latency_of_each_bundled_model(name):
  """An impulse through each bundled model's stream comes out latency_samples later, as its
  record (pretrained/NAME.json) and the README state."""
  import json
  import os

  from tf_drnn.models import PRETRAINED_DIR, load_model
  if not os.path.isfile(os.path.join(PRETRAINED_DIR, name + ".keras")):
    pytest.skip(f"{name} is not bundled in this checkout")
  stream = PcmStream(load_model(name))
  with open(os.path.join(PRETRAINED_DIR, name + ".json")) as f:
    record = json.load(f)
  assert impulse_delay(stream) == stream.latency_samples
  assert record["latency"] == {"stream_samples": stream.latency_samples,
                               "algorithmic_samples": stream.algorithmic_latency_samples,
                               "algorithmic_ms": 1000 * stream.algorithmic_latency_samples / 16000}
