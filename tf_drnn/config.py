"""The one source of truth for audio and STFT settings.

Training, separation, export and benchmarks all read :data:`DEFAULT_AUDIO_CONFIG`;
nothing else in the package hard-codes a sample rate, FFT size or hop.
"""
import dataclasses


WINDOWS = ("sine", "asymmetric_sine")


@dataclasses.dataclass(frozen=True)
class AudioConfig:
  """Audio front end of Huang et al. (ISMIR 2014).

  Attributes:
    sample_rate: Hz. Every model works at this rate; other rates are resampled.
    n_fft: STFT frame length and FFT size, samples.
    hop_length: STFT hop, samples.
    window: The analysis/synthesis window pair (:data:`WINDOWS`, tf_drnn.spectral):
      "sine": the paper's; the sine window for both, hop = n_fft / 2.
      "asymmetric_sine": a long analysis window (n_fft) and a synthesis window on its last
        2 hop samples only (Mauler & Martin 2007), hop < n_fft / 2: frequency resolution of
        n_fft, output latency of 2 hop. With n_fft = 2 hop it is the sine pair.
    Either way the product of the two windows overlap-adds to one: exact reconstruction.
  """
  sample_rate: int = 16000
  n_fft: int = 1024
  hop_length: int = 512
  window: str = "sine"

  def __post_init__(self):
    if self.window not in WINDOWS:
      raise ValueError(f"unsupported window {self.window!r}: choose one of {', '.join(WINDOWS)}")
    if self.window == "sine" and self.n_fft != 2 * self.hop_length:
      raise ValueError("the sine window reconstructs exactly only with hop = n_fft / 2")
    if self.window == "asymmetric_sine" and not 0 < 2 * self.hop_length < self.n_fft:
      raise ValueError(f"the asymmetric sine window needs 0 < hop < n_fft / 2, got hop {self.hop_length} "
                       f"and n_fft {self.n_fft}")

  @property
  def num_bins(self) -> int:
    """Frequency bins of a one-sided spectrum, n_fft // 2 + 1."""
    return self.n_fft // 2 + 1

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


DEFAULT_AUDIO_CONFIG = AudioConfig()
