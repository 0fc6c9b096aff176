"""The one source of truth for audio and STFT settings.

Training, separation, export and benchmarks all read :data:`DEFAULT_AUDIO_CONFIG`;
nothing else in the package hard-codes a sample rate, FFT size or hop.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class AudioConfig:
  """Audio front end of Huang et al. (ISMIR 2014).

  Attributes:
    sample_rate: Hz. Every model works at this rate; other rates are resampled.
    n_fft: STFT frame length and FFT size, samples.
    hop_length: STFT hop, samples. With a sine window and hop = n_fft / 2 the squared
      window sums to one, so overlap-add of windowed frames reconstructs exactly.
    window: Name of the analysis and synthesis window (only "sine").
  """
  sample_rate: int = 16000
  n_fft: int = 1024
  hop_length: int = 512
  window: str = "sine"

  def __post_init__(self):
    if self.window != "sine":
      raise ValueError(f"unsupported window {self.window!r}: only 'sine'")
    if self.n_fft != 2 * self.hop_length:
      raise ValueError("the sine window reconstructs exactly only with hop = n_fft / 2")

  @property
  def num_bins(self) -> int:
    """Frequency bins of a one-sided spectrum, n_fft // 2 + 1."""
    return self.n_fft // 2 + 1

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


DEFAULT_AUDIO_CONFIG = AudioConfig()
