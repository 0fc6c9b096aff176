"""BSS Eval v3 scores, NSDR and the length-weighted G-metrics against hand-computed values.

BSS Eval v3 lets the target pass through a 512-tap filter: an error signal counts as
"artifact" only if it is orthogonal to every delay 0..511 of every reference (linear delays
over the clip, the estimate zero-padded), and as "interference" if it is another source
orthogonal to the target's delays. The signals below are made exactly so, which turns the
scores into closed forms: SDR = 10 log10(|s|^2 / |e|^2).
"""
import numpy as np
import pytest

from tf_drnn import metrics

FILTER_TAPS = 512  # mir_eval's bss_eval_sources distortion filter length.
N = 6000


def delays(signal, taps=FILTER_TAPS):
  """[len, taps] matrix whose column k is `signal` delayed by k samples (zeros shifted in)."""
  n = len(signal)
  out = np.zeros((n, taps))
  for k in range(taps):
    out[k:, k] = signal[:n - k]
  return out


def advances(signal, taps=FILTER_TAPS):
  """[len, taps] matrix whose column k is `signal` advanced by k samples (zeros shifted in at the end)."""
  return delays(signal[::-1], taps)[::-1]


def orthogonal_to(noise, *signals, both_ways=False):
  """`noise` minus its projection on every delay of every signal (linear, within the clip).

  both_ways: also on every advance, so that each signal is orthogonal to the delays of `noise` too.
  """
  basis = np.concatenate([delays(s) for s in signals] + ([advances(s) for s in signals] if both_ways else []),
                         axis=1)
  coefficients, *_ = np.linalg.lstsq(basis, noise, rcond=None)
  return noise - basis @ coefficients


def energy(x):
  return float(np.sum(np.square(x, dtype=np.float64)))


def db(ratio):
  return 10 * np.log10(ratio)


@pytest.fixture(scope="module")
def signals():
  """vocals v; accompaniment a orthogonal to v's delays and v to a's; noise n orthogonal to both."""
  rng = np.random.default_rng(0)
  v = rng.standard_normal(N)
  a = orthogonal_to(rng.standard_normal(N), v, both_ways=True)
  n = orthogonal_to(rng.standard_normal(N), v, a)
  return v, a, n


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_sdr_of_reference_plus_orthogonal_noise(signals, snr_db):
  v, a, n = signals
  noise = n * np.sqrt(energy(v) / energy(n) / 10 ** (snr_db / 10))
  sdr, sir, sar = metrics.bss_eval(np.stack([v, a]), np.stack([v + noise, a]))
  assert sdr[0] == pytest.approx(snr_db, abs=1e-3)
  assert sar[0] == pytest.approx(snr_db, abs=1e-3)  # All the error is artifact...
  assert sir[0] > 80  # ...none of it interference.
  assert sdr[1] > 80  # The exact accompaniment.


@pytest.mark.parametrize("leak", [0.1, 0.5])
def test_sir_of_known_interference(signals, leak):
  v, a, _ = signals
  sdr, sir, sar = metrics.bss_eval(np.stack([v, a]), np.stack([v + leak * a, a]))
  expected = db(energy(v) / energy(leak * a))
  assert sir[0] == pytest.approx(expected, abs=1e-3)
  assert sdr[0] == pytest.approx(expected, abs=1e-3)
  assert sar[0] > 80


@pytest.mark.parametrize("samples", [3000, 20000])
def test_bss_eval_is_mir_evals_bss_eval_sources(samples):
  import warnings

  import mir_eval
  rng = np.random.default_rng(samples)
  references = rng.standard_normal((2, samples)) * np.hanning(samples)[None] ** np.array([[1.0], [0.0]])
  leaked = np.roll(references[0], 7)  # a delayed copy: within the 512-tap filters' reach
  estimates = np.stack([references[0] + 0.3 * references[1] + 0.05 * rng.standard_normal(samples),
                        0.8 * references[1] + 0.2 * leaked + 0.02 * rng.standard_normal(samples)])
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    expected = mir_eval.separation.bss_eval_sources(references, estimates, compute_permutation=False)[:3]
  np.testing.assert_allclose(metrics.bss_eval(references, estimates), expected, atol=1e-6)
  silent_reference = np.stack([references[0], 0 * references[1]])
  silent_estimate = np.stack([0 * estimates[0], estimates[1]])
  for pair in ((silent_reference, estimates), (references, silent_estimate)):  # mir_eval refuses both
    with pytest.raises(ValueError, match="sources should be non-silent"):
      metrics.bss_eval(*pair)


def test_nsdr_is_sdr_gain_over_the_mixture(signals):
  v, a, n = signals
  v, a, n = v / np.sqrt(energy(v)), a * np.sqrt(2 / energy(a)), n * np.sqrt(0.01 / energy(n))  # 1, 2, 0.01
  score = metrics.score_clip("clip", v, a, v + n, a + n, v + a)
  assert score.mixture_sdr[0] == pytest.approx(db(1 / 2), abs=1e-3)    # -3.01 dB
  assert score.mixture_sdr[1] == pytest.approx(db(2 / 1), abs=1e-3)    # +3.01 dB
  assert score.sdr[0] == pytest.approx(db(1 / 0.01), abs=1e-3)         # 20 dB
  assert score.sdr[1] == pytest.approx(db(2 / 0.01), abs=1e-3)         # 23.01 dB
  assert score.nsdr[0] == pytest.approx(20 + db(2), abs=1e-3)          # 23.01 dB
  assert score.nsdr[1] == pytest.approx(db(200) - db(2), abs=1e-3)     # 20 dB
  row = score.as_dict()
  assert row["vocals"]["NSDR"] == pytest.approx(score.sdr[0] - score.mixture_sdr[0])
  assert row["num_samples"] == N


def test_the_mixtures_own_sdr_is_computed_once_per_clip(signals, monkeypatch):
  v, a, n = signals
  calls = []
  bss_eval = metrics.bss_eval
  monkeypatch.setattr(metrics, "_UNPROCESSED_SDR", {})
  monkeypatch.setattr(metrics, "bss_eval", lambda r, e: calls.append(e) or bss_eval(r, e))
  first = metrics.score_clip("clip", v, a, v + n, a + n, v + a)
  again = metrics.score_clip("clip", v, a, v + 0.5 * n, a + 0.5 * n, v + a)  # other estimates, same clip
  assert len(calls) == 3 and first.mixture_sdr == again.mixture_sdr
  np.testing.assert_allclose(first.mixture_sdr, bss_eval(np.stack([v, a]), np.stack([v + a, v + a]))[0])
  louder = metrics.score_clip("louder", v, 2 * a, v + n, 2 * a + n, v + 2 * a)  # another clip: scored anew
  assert len(calls) == 5 and louder.mixture_sdr[0] < first.mixture_sdr[0] - 5


def test_mixture_as_estimate_has_zero_nsdr(signals):
  v, a, _ = signals
  score = metrics.score_clip("clip", v, 0.5 * a, v + 0.5 * a, v + 0.5 * a)
  assert score.nsdr == (0.0, 0.0)


def _clip(name, num_samples, sdr, mixture_sdr, sir=(0.0, 0.0), sar=(0.0, 0.0)):
  return metrics.ClipScore(name, num_samples, sdr, sir, sar, mixture_sdr)


def test_global_metrics_are_length_weighted():
  short = _clip("short", 1000, sdr=(5.0, 1.0), mixture_sdr=(2.0, -2.0), sir=(10.0, 4.0), sar=(6.0, 2.0))
  long = _clip("long", 3000, sdr=(9.0, 3.0), mixture_sdr=(1.0, -1.0), sir=(14.0, 8.0), sar=(10.0, 6.0))
  result = metrics.global_metrics([short, long])
  # vocals: NSDR 3 (1000 samples) and 8 (3000): (3 * 1000 + 8 * 3000) / 4000 = 6.75, not the plain mean 5.5.
  assert result["vocals"]["GNSDR"] == pytest.approx(6.75)
  assert result["vocals"]["GSDR"] == pytest.approx((5 * 1 + 9 * 3) / 4)    # 8.0
  assert result["vocals"]["GSIR"] == pytest.approx((10 * 1 + 14 * 3) / 4)  # 13.0
  assert result["vocals"]["GSAR"] == pytest.approx((6 * 1 + 10 * 3) / 4)   # 9.0
  # accompaniment: NSDR 3 and 4 -> 3.75.
  assert result["accompaniment"]["GNSDR"] == pytest.approx(3.75)
  assert result["accompaniment"]["GSIR"] == pytest.approx(7.0)
  assert result["accompaniment"]["GSAR"] == pytest.approx(5.0)
  assert result["accompaniment"]["GSDR"] == pytest.approx(2.5)


def test_global_metrics_do_not_depend_on_clip_order_or_scale_of_lengths():
  a = _clip("a", 1000, sdr=(4.0, 2.0), mixture_sdr=(0.0, 0.0))
  b = _clip("b", 5000, sdr=(10.0, 6.0), mixture_sdr=(1.0, 1.0))
  doubled = [_clip(c.name, 2 * c.num_samples, c.sdr, c.mixture_sdr) for c in (b, a)]
  for source in metrics.SOURCES:
    assert metrics.global_metrics([a, b])[source] == pytest.approx(metrics.global_metrics(doubled)[source])
  assert metrics.global_metrics([a, b])["vocals"]["GNSDR"] == pytest.approx((4 * 1 + 9 * 5) / 6)
