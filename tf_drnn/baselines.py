"""Reference separators to put a model's scores in context: floor, classic baseline, ceiling, paper.

Every separator maps a mono mixture [samples] to (vocals, accompaniment) estimates [samples]
and works in the project's STFT (:mod:`tf_drnn.spectral`, one :class:`AudioConfig`), with
the mixture's phase:

- :func:`mixture_separator`: both estimates are the mixture itself. Its NSDR is 0 dB by
  definition (the floor every method is measured from).
- :func:`rpca_separator`: robust PCA of Huang, Chen, Smaragdis & Hasegawa-Johnson (ICASSP 2012,
  "Singing-voice separation from monaural recordings using robust principal component
  analysis"): the magnitude spectrogram M = L + S by inexact ALM (Lin, Chen & Ma 2010) with
  lambda = k / sqrt(max(m, n)), k = 1; the sparse part S is the voice, the low-rank part L the
  accompaniment, and a binary time-frequency mask |S| > gain |L| (gain 1) is applied to the
  mixture STFT. NumPy only. The paper used a 1024-sample window with hop 256; by default the
  project's STFT (1024 / 512, sine window) is used so every method shares one front end, and
  `hop_length=256` gives the paper's framing (RPCA scores clearly better with it).
- :func:`oracle_separator` ("irm", "ibm"): ideal masks computed from the true sources'
  magnitudes, the ceiling of any masking method in this STFT. They need the references, so
  they take (mixture, vocals, accompaniment).
- :class:`AuthorsResults`: the ISMIR 2014 authors' own separations shipped with the data
  (`authors_demo_results/<clip>_iter400_<mask>_{signal,noise}.wav`).
"""
import os
import re

import numpy as np

from tf_drnn import spectral
from tf_drnn.audio import fit_length
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.errors import UserError

ORACLE_MASKS = ("irm", "ibm")
AUTHORS_MASKS = ("softmask", "bmask", "nomask")
AUTHORS_ITERATION = 400


# --- floor --------------------------------------------------------------------------------------

def mixture_separator(mixture):
  """Both estimates are the mixture: NSDR 0 dB by definition."""
  mixture = np.asarray(mixture, np.float32)
  return mixture.copy(), mixture.copy()


# --- RPCA (Huang et al. 2012) -------------------------------------------------------------------

def rpca_inexact_alm(matrix, lam=None, tol=1e-7, max_iter=1000, rho=1.5):
  """Robust PCA by the inexact augmented Lagrange multiplier method (Lin, Chen & Ma 2010).

  Solves min ||L||_* + lam ||S||_1 subject to L + S = matrix, as `inexact_alm_rpca.m`
  (the code Huang et al. 2012 used), with full SVDs.

  Args:
    matrix: Real [m, n].
    lam: Weight of the sparse term; default 1 / sqrt(max(m, n)).
    tol: Stop when ||matrix - L - S||_F / ||matrix||_F < tol.
    max_iter: Iteration cap.
    rho: Growth factor of the penalty mu.

  Returns:
    (low_rank, sparse, iterations): float64 [m, n], [m, n], int.
  """
  data = np.asarray(matrix, np.float64)
  if data.ndim != 2:
    raise ValueError(f"RPCA needs a 2-D matrix, got shape {data.shape}")
  m, n = data.shape
  if lam is None:
    lam = 1.0 / np.sqrt(max(m, n))
  low_rank = np.zeros_like(data)
  sparse = np.zeros_like(data)
  data_norm = np.linalg.norm(data)
  if data_norm == 0:
    return low_rank, sparse, 0
  norm_two = np.linalg.norm(data, 2)
  dual = data / max(norm_two, np.abs(data).max() / lam)
  mu = 1.25 / norm_two
  mu_bar = mu * 1e7
  iteration = 0
  for iteration in range(1, max_iter + 1):  # noqa: B007  (read after the loop)
    sparse = _shrink(data - low_rank + dual / mu, lam / mu)
    u, s, vt = np.linalg.svd(data - sparse + dual / mu, full_matrices=False)
    keep = int(np.count_nonzero(s > 1.0 / mu))
    low_rank = (u[:, :keep] * (s[:keep] - 1.0 / mu)) @ vt[:keep]
    residual = data - low_rank - sparse
    dual = dual + mu * residual
    mu = min(mu * rho, mu_bar)
    if np.linalg.norm(residual) / data_norm < tol:
      break
  return low_rank, sparse, iteration


def _shrink(values, threshold):
  return np.sign(values) * np.maximum(np.abs(values) - threshold, 0.0)


def rpca_decompose(mixture, k=1.0, config=DEFAULT_AUDIO_CONFIG, tol=1e-7, max_iter=1000, hop_length=None):
  """RPCA of the mixture's magnitude spectrogram (bins x frames, lambda = k / sqrt(max(m, n))).

  Returns (spectrum complex [frames, bins], low_rank [frames, bins], sparse [frames, bins]).
  """
  spectrum = _analysis(np.asarray(mixture, np.float32), config, hop_length)  # [frames, bins]
  magnitude = np.abs(spectrum).astype(np.float64).T  # [bins, frames], as in the paper
  lam = k / np.sqrt(max(magnitude.shape))
  low_rank, sparse, _ = rpca_inexact_alm(magnitude, lam=lam, tol=tol, max_iter=max_iter)
  return spectrum, low_rank.T, sparse.T


def rpca_separator(mixture, k=1.0, gain=1.0, binary_mask=True, config=DEFAULT_AUDIO_CONFIG,
                   tol=1e-7, max_iter=1000, hop_length=None):
  """RPCA singing-voice separation (Huang et al. 2012): sparse = voice, low rank = accompaniment.

  Args:
    mixture: float [samples].
    k: lambda = k / sqrt(max(m, n)) (the paper's k = 1).
    gain: Binary mask |S| > gain |L| (the paper's gain 1).
    binary_mask: False uses S and L themselves (with mixture phase) instead of the mask.
    config: The STFT (window length config.n_fft, sine window).
    hop_length: None: the project's STFT (hop n_fft / 2, :mod:`tf_drnn.spectral`). Another hop
      (e.g. 256, the paper's 1024 / 256 framing) uses a SciPy STFT with that hop and the same
      window. RPCA's result depends on it (more frames, more visible repetition).

  Returns:
    (vocals, accompaniment) float32 [samples].
  """
  mixture = np.asarray(mixture, np.float32)
  spectrum, low_rank, sparse = rpca_decompose(mixture, k, config, tol, max_iter, hop_length)
  if binary_mask:
    mask = np.abs(sparse) > gain * np.abs(low_rank)
    vocals_spectrum = np.where(mask, spectrum, 0)
    accompaniment_spectrum = np.where(mask, 0, spectrum)
  else:
    phase = np.exp(1j * np.angle(spectrum))
    vocals_spectrum = np.maximum(sparse, 0) * phase
    accompaniment_spectrum = np.maximum(low_rank, 0) * phase
  return (_synthesis(vocals_spectrum, len(mixture), config, hop_length),
          _synthesis(accompaniment_spectrum, len(mixture), config, hop_length))


def _project_stft(config, hop_length):
  return hop_length is None or hop_length == config.hop_length


def _analysis(signal, config, hop_length):
  if _project_stft(config, hop_length):
    return spectral.stft_numpy(signal, config)
  import scipy.signal
  _, _, spectrum = scipy.signal.stft(signal, nperseg=config.n_fft, noverlap=config.n_fft - hop_length,
                                     window="cosine", boundary="zeros", padded=True)
  return spectrum.T  # [frames, bins]


def _synthesis(spectrum, num_samples, config, hop_length):
  if _project_stft(config, hop_length):
    return spectral.istft_numpy(spectrum, num_samples, config)
  import scipy.signal
  _, signal = scipy.signal.istft(spectrum.T, nperseg=config.n_fft, noverlap=config.n_fft - hop_length,
                                 window="cosine", boundary=True)
  signal = np.asarray(signal[:num_samples], np.float32)
  return np.pad(signal, (0, num_samples - len(signal)))


# --- oracles -----------------------------------------------------------------------------------

def oracle_masks(vocals, accompaniment, kind="irm", config=DEFAULT_AUDIO_CONFIG):
  """Ideal vocal mask [frames, bins] from the true sources; the accompaniment mask is 1 - it.

  "irm": |V| / (|V| + |A|), the soft mask of the paper's mask layer given exact source
  magnitudes (0.5 where both are 0). "ibm": 1 where |V| > |A| (0 dB local criterion).
  """
  if kind not in ORACLE_MASKS:
    raise ValueError(f"unknown oracle mask {kind!r}: choose one of {', '.join(ORACLE_MASKS)}")
  v = np.abs(spectral.stft_numpy(vocals, config)).astype(np.float64)
  a = np.abs(spectral.stft_numpy(accompaniment, config)).astype(np.float64)
  if kind == "ibm":
    return (v > a).astype(np.float64)
  total = v + a
  return np.divide(v, total, out=np.full_like(v, 0.5), where=total > 0)


def oracle_separator(mixture, vocals, accompaniment, kind="irm", config=DEFAULT_AUDIO_CONFIG):
  """Applies the ideal mask (:func:`oracle_masks`) to the mixture STFT -> (vocals, accompaniment)."""
  mixture = np.asarray(mixture, np.float32)
  spectrum = spectral.stft_numpy(mixture, config)
  mask = oracle_masks(vocals, accompaniment, kind, config)
  return (spectral.istft_numpy(mask * spectrum, len(mixture), config),
          spectral.istft_numpy((1.0 - mask) * spectrum, len(mixture), config))


# --- the paper authors' separations ------------------------------------------------------------

class AuthorsResults:
  """The ISMIR 2014 authors' separations: clip name -> (voice, music) estimates.

  Files: `<directory>/<clip>_iter400_<mask>_signal.wav` (voice) and `..._noise.wav` (music),
  mono 16 kHz. What the files are, measured on the six shipped clips: they end at a whole
  number of 512-sample hops (up to 317 samples, 20 ms, short of the clip), start aligned with
  the clip (best cross-correlation lag 0), and each file is peak-normalized on its own, so
  voice + music is not the mixture's scale. BSS Eval is scale-invariant, so the scale is left
  as is; :meth:`estimates` pads the end with zeros (or trims) to the clip's length, so the
  authors' clips are scored against exactly the references every other method sees.

  Args:
    directory: The `authors_demo_results` folder.
    mask: "softmask" (the paper's joint mask, default), "bmask" or "nomask".
    iteration: The iteration tag in the file names (400).
  """

  def __init__(self, directory, mask="softmask", iteration=AUTHORS_ITERATION):
    directory = os.fspath(directory)
    if mask not in AUTHORS_MASKS:
      raise UserError(f"unknown authors' mask {mask!r}: choose one of {', '.join(AUTHORS_MASKS)}")
    if not os.path.isdir(directory):
      raise UserError(f"{directory}: authors' results directory does not exist")
    self.directory = directory
    self.mask = mask
    self.iteration = iteration
    pattern = re.compile(rf"^(?P<clip>.+)_iter{iteration}_{mask}_signal\.wav$")
    clips = []
    for name in sorted(os.listdir(directory)):
      match = pattern.match(name)
      if match and os.path.exists(self._path(match["clip"], "noise")):
        clips.append(match["clip"])
    if not clips:
      raise UserError(f"{directory}: no authors' separations (<clip>_iter{iteration}_{mask}_signal.wav "
                      "with a matching _noise.wav)")
    self.clips = tuple(clips)

  def _path(self, clip, part):
    return os.path.join(self.directory, f"{clip}_iter{self.iteration}_{self.mask}_{part}.wav")

  def __contains__(self, clip):
    return clip in self.clips

  def load(self, clip):
    """(voice, music) as stored: float32 [samples] each, the files' own lengths and scales."""
    from tf_drnn.audio import read_audio
    if clip not in self.clips:
      raise UserError(f"no authors' separation of {clip} in {self.directory} "
                      f"(they exist for: {', '.join(self.clips)})")
    voice, voice_rate = read_audio(self._path(clip, "signal"), mono=True)
    music, music_rate = read_audio(self._path(clip, "noise"), mono=True)
    for path, rate in ((self._path(clip, "signal"), voice_rate), (self._path(clip, "noise"), music_rate)):
      if rate != DEFAULT_AUDIO_CONFIG.sample_rate:
        raise UserError(f"{path}: sample rate {rate} Hz, expected {DEFAULT_AUDIO_CONFIG.sample_rate}")
    return voice, music

  def estimates(self, clip, num_samples):
    """(voice, music) padded with zeros at the end (or trimmed) to `num_samples`."""
    voice, music = self.load(clip)
    return fit_length(voice, num_samples), fit_length(music, num_samples)
