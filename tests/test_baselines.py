"""Reference separators: mixture floor, RPCA (Huang et al. 2012), oracle masks, the authors' files."""
import os

import numpy as np
import pytest
import soundfile

from tf_drnn import baselines, metrics, spectral
from tf_drnn.errors import UserError

RATE = 16000


def synthetic_song(seconds=2.0, seed=0):
  """(vocals, accompaniment), unit RMS each: short sung notes over a sustained harmonic chord.

  The chord's magnitude spectrogram is constant over time (rank one, spread over ~36 partials);
  the voice jumps between random pitches every 0.25 s (sparse in time-frequency).
  """
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * RATE)) / RATE
  accompaniment = sum(np.sin(2 * np.pi * h * f * t + rng.uniform(0, 2 * np.pi)) / h
                      for f in (110.0, 138.6, 164.8) for h in range(1, 13))
  accompaniment = accompaniment + 0.01 * rng.standard_normal(len(t))
  notes = 220 * 2 ** (rng.integers(0, 24, int(np.ceil(seconds * 4))) / 12)
  f0 = np.repeat(notes, RATE // 4)[:len(t)] * (1 + 0.02 * np.sin(2 * np.pi * 6 * t))
  phase = 2 * np.pi * np.cumsum(f0) / RATE
  vocals = sum(np.sin(k * phase) / k for k in range(1, 6)) * ((t % 0.25) < 0.2)
  unit = lambda x: (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)
  return unit(vocals), unit(accompaniment)


def score(vocals, accompaniment, estimates):
  mixture = vocals + accompaniment
  return metrics.score_clip("synthetic", vocals, accompaniment, *estimates, mixture)


# --- mixture ------------------------------------------------------------------------------------

def test_mixture_separator_returns_the_mixture_twice_and_scores_zero_nsdr():
  vocals, accompaniment = synthetic_song(1.0)
  mixture = vocals + accompaniment
  v, a = baselines.mixture_separator(mixture)
  np.testing.assert_array_equal(v, mixture)
  np.testing.assert_array_equal(a, mixture)
  v[0] += 1  # Copies, not views of the input.
  assert a[0] == mixture[0]
  assert score(vocals, accompaniment, baselines.mixture_separator(mixture)).nsdr == (0.0, 0.0)


# --- RPCA ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,rank,density", [((80, 60), 2, 0.05), ((60, 100), 3, 0.08)])
def test_rpca_recovers_low_rank_plus_sparse(shape, rank, density):
  rng = np.random.default_rng(1)
  m, n = shape
  low_rank = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))
  sparse = np.zeros(shape)
  support = rng.random(shape) < density
  sparse[support] = rng.choice([-1, 1], support.sum()) * rng.uniform(3, 10, support.sum())
  estimated_low_rank, estimated_sparse, iterations = baselines.rpca_inexact_alm(low_rank + sparse)
  assert np.linalg.norm(estimated_low_rank - low_rank) / np.linalg.norm(low_rank) < 1e-4
  assert np.linalg.norm(estimated_sparse - sparse) / np.linalg.norm(sparse) < 1e-4
  assert np.linalg.matrix_rank(estimated_low_rank, tol=1e-6 * np.linalg.norm(low_rank, 2)) == rank
  assert iterations < 200


def test_rpca_default_lambda_is_one_over_sqrt_of_the_larger_dimension(monkeypatch):
  seen = {}
  real = baselines.rpca_inexact_alm

  def spy(matrix, lam=None, **kwargs):
    seen["shape"], seen["lam"] = matrix.shape, lam
    return real(matrix, lam=lam, **kwargs)

  monkeypatch.setattr(baselines, "rpca_inexact_alm", spy)
  vocals, accompaniment = synthetic_song(1.0)
  baselines.rpca_separator(vocals + accompaniment)
  frames = spectral.num_frames(len(vocals))
  assert seen["shape"] == (513, frames)  # Bins x frames, as in the paper.
  assert seen["lam"] == pytest.approx(1 / np.sqrt(max(513, frames)))


def test_rpca_zero_matrix_is_all_zero():
  low_rank, sparse, iterations = baselines.rpca_inexact_alm(np.zeros((5, 4)))
  assert not low_rank.any() and not sparse.any() and iterations == 0


def test_rpca_separator_splits_the_mixture_with_a_binary_mask(monkeypatch):
  vocals, accompaniment = synthetic_song(2.0)
  mixture = vocals + accompaniment
  spectrum, low_rank, sparse = baselines.rpca_decompose(mixture)
  mask = np.abs(sparse) > np.abs(low_rank)
  assert 0.02 < mask.mean() < 0.8  # Some bins are voice, most are not.
  masked = []
  monkeypatch.setattr(spectral, "istft_numpy",
                      lambda s, n, config: masked.append(s) or np.zeros(n, np.float32))
  baselines.rpca_separator(mixture)
  np.testing.assert_array_equal(masked[0], np.where(mask, spectrum, 0))  # Vocals: the masked mixture STFT.
  np.testing.assert_array_equal(masked[1], np.where(mask, 0, spectrum))  # Accompaniment: the rest.
  monkeypatch.undo()
  v, a = baselines.rpca_separator(mixture)
  assert v.shape == a.shape == mixture.shape
  np.testing.assert_allclose(v + a, mixture, atol=1e-4)
  result = score(vocals, accompaniment, (v, a))
  assert result.nsdr[0] > 6.0 and result.nsdr[1] > 6.0  # Sparse notes over a low-rank chord: RPCA's case.


@pytest.mark.parametrize("hop_length", [None, 512, 256])
def test_rpca_stft_framings_reconstruct_exactly(hop_length):
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  signal = np.random.default_rng(0).standard_normal(RATE + 123).astype(np.float32)
  spectrum = baselines._analysis(signal, config, hop_length)
  frames = spectral.num_frames(len(signal)) if hop_length in (None, 512) else None
  assert spectrum.shape[1] == config.num_bins
  if frames:
    assert spectrum.shape[0] == frames
  else:
    assert spectrum.shape[0] > 1.9 * spectral.num_frames(len(signal))  # Hop 256: twice the frames.
  np.testing.assert_allclose(baselines._synthesis(spectrum, len(signal), config, hop_length), signal, atol=1e-5)


def test_rpca_with_the_papers_hop_partitions_the_mixture():
  vocals, accompaniment = synthetic_song(1.0)
  mixture = vocals + accompaniment
  v, a = baselines.rpca_separator(mixture, hop_length=256)
  assert v.shape == a.shape == mixture.shape
  np.testing.assert_allclose(v + a, mixture, atol=1e-4)
  assert score(vocals, accompaniment, (v, a)).nsdr[0] > 3.0


# --- oracles ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", baselines.ORACLE_MASKS)
def test_oracle_scores_far_above_the_mixture(kind):
  vocals, accompaniment = synthetic_song(2.0)
  mixture = vocals + accompaniment
  estimates = baselines.oracle_separator(mixture, vocals, accompaniment, kind)
  np.testing.assert_allclose(estimates[0] + estimates[1], mixture, atol=1e-4)
  result = score(vocals, accompaniment, estimates)
  assert result.nsdr[0] > 10.0 and result.nsdr[1] > 10.0
  floor = score(vocals, accompaniment, baselines.mixture_separator(mixture))
  assert result.sdr[0] > floor.sdr[0] + 10.0


def test_oracle_masks_values():
  vocals, accompaniment = synthetic_song(1.0)
  irm = baselines.oracle_masks(vocals, accompaniment, "irm")
  ibm = baselines.oracle_masks(vocals, accompaniment, "ibm")
  v = np.abs(spectral.stft_numpy(vocals))
  a = np.abs(spectral.stft_numpy(accompaniment))
  np.testing.assert_allclose(irm, v / (v + a), rtol=1e-5)
  np.testing.assert_array_equal(ibm, (v > a).astype(float))
  np.testing.assert_array_equal(ibm, irm > 0.5)
  silent = baselines.oracle_masks(np.zeros(1000), np.zeros(1000), "irm")
  assert np.all(silent == 0.5)
  with pytest.raises(ValueError):
    baselines.oracle_masks(vocals, accompaniment, "wiener")


def test_oracle_of_a_lone_source_is_exact():
  vocals, _ = synthetic_song(1.0)
  v, a = baselines.oracle_separator(vocals, vocals, np.zeros_like(vocals), "irm")
  np.testing.assert_allclose(v, vocals, atol=1e-4)
  np.testing.assert_allclose(a, 0, atol=1e-4)


# --- the authors' separations --------------------------------------------------------------------

def _write_authors(directory, clip, voice, music, mask="softmask"):
  os.makedirs(directory, exist_ok=True)
  soundfile.write(os.path.join(directory, f"{clip}_iter400_{mask}_signal.wav"), voice, RATE)
  soundfile.write(os.path.join(directory, f"{clip}_iter400_{mask}_noise.wav"), music, RATE)


def test_authors_results_map_clips_and_fit_lengths(tmp_path):
  rng = np.random.default_rng(0)
  voice, music = (0.1 * rng.standard_normal(1024)).astype(np.float32), (0.2 * rng.standard_normal(1024))
  _write_authors(tmp_path, "Ani_1_01", voice, music)
  _write_authors(tmp_path, "amy_9_08", voice, music, mask="bmask")  # Another mask: not listed.
  soundfile.write(tmp_path / "heycat_1_01_iter400_softmask_signal.wav", voice, RATE)  # No _noise: not listed.
  results = baselines.AuthorsResults(tmp_path)
  assert results.clips == ("Ani_1_01",)
  assert "Ani_1_01" in results and "heycat_1_01" not in results
  stored_voice, stored_music = results.load("Ani_1_01")
  np.testing.assert_allclose(stored_voice, voice, atol=1e-4)  # 16-bit files.
  padded_voice, padded_music = results.estimates("Ani_1_01", 1300)
  assert padded_voice.shape == padded_music.shape == (1300,)
  np.testing.assert_array_equal(padded_voice[:1024], stored_voice)
  assert not padded_voice[1024:].any() and not padded_music[1024:].any()
  trimmed_voice, _ = results.estimates("Ani_1_01", 1000)
  np.testing.assert_array_equal(trimmed_voice, stored_voice[:1000])
  assert baselines.AuthorsResults(tmp_path, mask="bmask").clips == ("amy_9_08",)
  with pytest.raises(UserError, match="no authors' separation of heycat_1_01"):
    results.load("heycat_1_01")


@pytest.mark.parametrize("setup,message", [
    ("missing", "does not exist"), ("empty", "no authors' separations"), ("bad_mask", "unknown authors' mask")])
def test_authors_results_bad_input(tmp_path, setup, message):
  directory = tmp_path / "authors"
  if setup != "missing":
    directory.mkdir()
  with pytest.raises(UserError, match=message):
    baselines.AuthorsResults(directory, mask="wiener" if setup == "bad_mask" else "softmask")


def test_authors_results_on_the_real_files(mir1k_dir):
  from tf_drnn.data.mir1k import MIR1K
  results = baselines.AuthorsResults(os.path.join(mir1k_dir, "authors_demo_results"))
  assert set(results.clips) == {"abjones_5_08", "abjones_5_09", "amy_9_08", "amy_9_09", "Ani_1_01", "Ani_1_02"}
  dataset = MIR1K(mir1k_dir)
  for clip in results.clips:
    vocals, _ = dataset.load_clip(clip)
    voice, music = results.load(clip)
    assert len(voice) == len(music)
    assert 0 <= len(vocals) - len(voice) < 512  # Whole hops: at most one hop short.
    fitted_voice, fitted_music = results.estimates(clip, len(vocals))
    assert len(fitted_voice) == len(fitted_music) == len(vocals)
