"""BSS Eval v4 (SiSEC 2018, `museval`): images metrics with time-invariant distortion filters.

The convention of MUSDB18 results (Stöter, Liutkus & Ito, "The 2018 Signal Separation Evaluation
Campaign", LVA/ICA 2018): the 512-tap multichannel distortion filters are fitted once on the whole
track (BSS Eval v3 fits them anew in every window), then SDR, ISR, SIR and SAR are measured in
1-second windows (`bss_eval_images` definitions) and a track's score is the median over its
windows; windows where a reference or an estimate is silent give NaN and are left out.

This is `museval.metrics.bss_eval(..., framewise_filters=False, bsseval_sources_version=False)`
rewritten to need only NumPy and SciPy (museval pulls in musdb, pandas and ffmpeg bindings) and
to hold bounded memory on long tracks: the correlations are accumulated block by block. With one
window covering the whole signal it equals `mir_eval.separation.bss_eval_images` (v3 images);
tests/test_multitrack.py checks both against reference values.

The same machinery gives BSS Eval v3's sources metrics (:func:`bss_eval_v3_sources`, what
`mir_eval.separation.bss_eval_sources` computes), with the references' correlations and Gram
matrix computed once for all sources instead of once per source and projection.
"""
import numpy as np
import scipy.linalg
import scipy.signal

FILTERS_LEN = 512
_BLOCK_FFT = 1 << 16


def _as_3d(signals):
  """[nsrc, samples] or [nsrc, samples, channels] -> float [nsrc, samples, channels] (float32 kept:
  blocks are converted to float64 as they are used)."""
  signals = np.asarray(signals)
  if signals.dtype not in (np.float32, np.float64):
    signals = signals.astype(np.float64)
  return signals[..., None] if signals.ndim == 2 else signals


def _channels(signals, start, stop):
  """Rows [nsrc * channels, stop - start] float64 of signals [nsrc, samples, channels] (source-major),
  zeros outside the signal."""
  return np.concatenate([_segment(s, start, stop).T for s in signals])


def _correlations(signals, lags):
  """Cross-correlations of every pair of channels of `signals` [nsrc, samples, channels] (rows
  source-major), lags -(lags-1)..lags-1.

  Returns xc [K, K, 2 lags - 1] with xc[p, q, lags - 1 + k] = sum_n x_p[n + k] x_q[n] (zero
  outside the signal), accumulated over blocks of samples in the frequency domain.
  """
  samples = signals.shape[1]
  count = signals.shape[0] * signals.shape[2]
  pad = lags - 1
  fft_size = min(_BLOCK_FFT, 1 << int(np.ceil(np.log2(samples + 2 * pad))))  # short signals: one small block
  block = fft_size - 2 * pad
  spectra_sum = np.zeros((count, count, fft_size // 2 + 1), np.complex128)
  for start in range(0, samples, block):
    extended = np.fft.rfft(_channels(signals, start - pad, start + block + pad), fft_size)
    plain = np.fft.rfft(_channels(signals, start, min(start + block, samples)), fft_size)
    spectra_sum += extended[:, None, :] * np.conj(plain)[None, :, :]
  return np.fft.irfft(spectra_sum, fft_size)[..., :2 * pad + 1]


def _gram(xc, rows, lags):
  """Gram matrix [len(rows) L, len(rows) L] of the delayed copies (delays 0..L-1) of channels `rows`."""
  pad = lags - 1
  blocks = [[scipy.linalg.toeplitz(xc[q, p, pad:], xc[p, q, pad:]) for q in rows] for p in rows]
  return np.block(blocks)


def _filters(gram, xc, rows, estimate_rows, lags):
  """Least-squares filters [len(rows), L, len(estimate_rows)] projecting each estimate channel on
  the delayed copies of the reference channels `rows` (museval adds eps to the diagonal too).

  A singular system (a silent reference channel, or two identical ones: a mono stem spread over
  both channels) is solved by least squares instead, as museval does."""
  pad = lags - 1
  # <delay(r_p, a), e_c> = sum_n e_c[n + a] r_p[n] = xc[e_c, r_p, pad + a]
  targets = np.stack([np.concatenate([xc[c, p, pad:] for p in rows]) for c in estimate_rows], axis=1)
  system = gram + np.finfo(float).eps * np.eye(len(gram))
  try:
    solution = np.linalg.solve(system, targets)
  except np.linalg.LinAlgError:
    solution = np.linalg.lstsq(system, targets, rcond=None)[0]
  return solution.reshape(len(rows), lags, len(estimate_rows))


def _project(windows, filters, mode="full"):
  """Sum over reference channels of (windowed reference * filter): windows [R, nwin, W],
  filters [R, L, C] -> [nwin, W + L - 1, C] ("full") or [nwin, W - L + 1, C] ("valid")."""
  out = 0.0
  for r in range(len(windows)):
    out = out + scipy.signal.fftconvolve(windows[r][:, :, None], filters[r][None], mode=mode, axes=1)
  return out


def _db(numerator, denominator):
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(denominator == 0, np.inf, 10.0 * np.log10(numerator / denominator))


def _windows(length, window, hop):
  """museval's framing: window starts k hop for k < floor((length - window + hop) / hop); one
  window over everything when the signal is not longer than the window (the tail is dropped)."""
  if window >= length:
    return [slice(0, length)]
  count = int((length - window + hop) // hop)
  return [slice(k * hop, k * hop + window) for k in range(count)]


def bss_eval_v4(references, estimates, window, hop=None, filters_len=FILTERS_LEN, whole=False,
                windows_per_pass=16):
  """BSS Eval v4 images metrics, no permutation.

  Args:
    references, estimates: [sources, samples] or [sources, samples, channels], same shape.
    window, hop: Window and hop in samples (museval: 1 s each; hop defaults to the window);
      None, or a window of at least the signal's length, scores the whole signal as one window.
    filters_len: Distortion filter taps.
    whole: Also score the whole signal as one window, with the same filters (what `window=None`
      gives, without fitting the filters twice).
    windows_per_pass: Windows projected at once (memory: about 50 MB per 1-s stereo window).

  Returns:
    (sdr, isr, sir, sar), each float64 [sources, windows] in dB; NaN in windows where any
    reference or estimate is silent. With `whole`: that, and (sdr, isr, sir, sar) [sources]
    of the whole signal.
  """
  references, estimates = _as_3d(references), _as_3d(estimates)
  if references.shape != estimates.shape:
    raise ValueError(f"references {references.shape} and estimates {estimates.shape} differ in shape")
  samples = references.shape[1]
  window = samples if window is None else int(window)
  slices = _windows(samples, window, window if hop is None else int(hop))
  filters = _fit_filters(references, estimates, filters_len)
  if len(slices) == 1 and slices[0] == slice(0, samples):  # One window over everything: in chunks.
    results = _whole_scores(references, estimates, filters)[:, :, None]
    return (tuple(results), tuple(results[:, :, 0])) if whole else tuple(results)
  results = np.full((4, len(references), len(slices)), np.nan)
  for first in range(0, len(slices), windows_per_pass):
    group = slices[first:first + windows_per_pass]
    results[:, :, first:first + len(group)] = _window_scores(references, estimates, filters, group)
  if not whole:
    return tuple(results)
  return tuple(results), tuple(_whole_scores(references, estimates, filters))


def _fit_filters(references, estimates, filters_len):
  """Per source j: (filters on all reference channels, filters on source j's channels only),
  each [reference channels, L, channels], fitted on the whole signals."""
  nsrc, samples, nchan = references.shape
  # Rows 0 .. nsrc*nchan-1: reference channels (source-major); then the estimates' channels.
  xc = _correlations(np.concatenate([references, estimates]), filters_len)
  reference_rows = list(range(nsrc * nchan))
  gram = _gram(xc, reference_rows, filters_len)
  estimate_rows = [list(range(nsrc * nchan + j * nchan, nsrc * nchan + (j + 1) * nchan)) for j in range(nsrc)]
  on_all = _filters(gram, xc, reference_rows, sum(estimate_rows, []), filters_len)  # one system, every estimate
  filters = []
  for j in range(nsrc):
    own = slice(j * nchan * filters_len, (j + 1) * nchan * filters_len)
    filters.append((on_all[:, :, j * nchan:(j + 1) * nchan],
                    _filters(gram[own, own], xc, reference_rows[own_slice(j, nchan)], estimate_rows[j],
                             filters_len)))
  return filters


def own_slice(j, nchan):
  """Rows of source j's channels among the reference channels."""
  return slice(j * nchan, (j + 1) * nchan)


def _energies(s_true, estimate, own, full):
  """Energy sums [..., 8] over the last two axes (samples, channels) of what the v4 and v3 ratios need."""
  energy = lambda x: np.sum(np.square(x), axis=(-2, -1))
  return np.stack([energy(s_true), energy(estimate - s_true), energy(own - s_true), energy(own),
                   energy(full - own), energy(full), energy(estimate - full), energy(estimate - own)], axis=-1)


def _ratios(e):
  """(sdr, isr, sir, sar) from :func:`_energies` sums (images definitions)."""
  return np.stack([_db(e[..., 0], e[..., 1]), _db(e[..., 0], e[..., 2]), _db(e[..., 3], e[..., 4]),
                   _db(e[..., 5], e[..., 6])])


def _window_scores(references, estimates, filters, group):
  """[4, sources, len(group)] scores of windows `group`, each zero-padded by L - 1 as in museval."""
  nsrc, _, nchan = references.shape
  filters_len = filters[0][0].shape[1]
  pad = ((0, 0), (0, 0), (0, filters_len - 1), (0, 0))
  ref = np.pad(np.stack([[references[j, s] for s in group] for j in range(nsrc)]).astype(np.float64), pad)
  est = np.pad(np.stack([[estimates[j, s] for s in group] for j in range(nsrc)]).astype(np.float64), pad)
  silent = np.zeros(len(group), bool)
  for signals in (ref, est):
    silent |= np.any(np.all(signals.sum(axis=-1) == 0, axis=-1), axis=0)
  width = ref.shape[2] - filters_len + 1
  windows = ref[:, :, :width].transpose(0, 3, 1, 2).reshape(nsrc * nchan, len(group), width)
  scores = np.empty((4, nsrc, len(group)))
  for j, (all_filters, own_filters) in enumerate(filters):
    own = _project(windows[own_slice(j, nchan)], own_filters)
    full = _project(windows, all_filters)
    scores[:, j] = _ratios(_energies(ref[j], est[j], own, full))
  scores[:, :, silent] = np.nan
  return scores


def _segment(signal, start, stop):
  """signal[start:stop] along axis 0, zeros outside [0, len(signal))."""
  out = np.zeros((stop - start,) + signal.shape[1:], np.float64)
  lo, hi = max(start, 0), min(stop, len(signal))
  if hi > lo:
    out[lo - start:hi - start] = signal[lo:hi]
  return out


def _whole_scores(references, estimates, filters):
  """[4, sources] scores of the whole signal as one window (NaN if a source or estimate is silent)."""
  if any(not np.any(s.sum(axis=-1, dtype=np.float64)) for signals in (references, estimates) for s in signals):
    return np.full((4, len(references)), np.nan)
  return _ratios(_whole_energies(references, estimates, filters))


def _whole_energies(references, estimates, filters, chunk=1 << 18):
  """:func:`_energies` sums [sources, 8] over the whole signal (and the filters' tail), chunk by chunk."""
  nsrc, samples, nchan = references.shape
  filters_len = filters[0][0].shape[1]
  sums = np.zeros((nsrc, 8))
  for start in range(0, samples + filters_len - 1, chunk):
    stop = min(start + chunk, samples + filters_len - 1)
    # References from start - (L - 1): a 'valid' convolution gives the projection at start..stop.
    history = np.stack([_segment(references[j], start - filters_len + 1, stop) for j in range(nsrc)])
    history = history.transpose(0, 2, 1).reshape(nsrc * nchan, 1, -1)
    for j, (all_filters, own_filters) in enumerate(filters):
      own = _project(history[own_slice(j, nchan)], own_filters, "valid")
      full = _project(history, all_filters, "valid")
      sums[j] += _energies(_segment(references[j], start, stop)[None], _segment(estimates[j], start, stop)[None],
                           own, full)[0]
  return sums


def bss_eval_v3_sources(references, estimates, filters_len=FILTERS_LEN):
  """BSS Eval v3 sources metrics, no permutation: `mir_eval.separation.bss_eval_sources`.

  references, estimates: [sources, samples], single-channel. With P_own and P_all the estimate's
  projections on the delayed copies (0..L-1) of its own reference and of all references:
  SDR = |P_own|^2 / |e - P_own|^2, SIR = |P_own|^2 / |P_all - P_own|^2, SAR = |P_all|^2 / |e - P_all|^2.
  Returns (sdr, sir, sar), float64 [sources], dB.
  """
  references, estimates = _as_3d(references), _as_3d(estimates)
  if references.shape != estimates.shape or references.shape[2] != 1:
    raise ValueError(f"expected single-channel references and estimates of one shape, got {references.shape} "
                     f"and {estimates.shape}")
  for signals, what in ((references, "reference"), (estimates, "estimated")):
    if not all(np.any(s) for s in signals):  # mir_eval refuses these: the system is then underdetermined
      raise ValueError(f"all the {what} sources should be non-silent (not all zeros)")
  e = _whole_energies(references, estimates, _fit_filters(references, estimates, filters_len))
  return _db(e[:, 3], e[:, 7]), _db(e[:, 3], e[:, 4]), _db(e[:, 5], e[:, 6])
