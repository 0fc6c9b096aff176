"""`tf-drnn-demo`: separate a synthesized song (or your own file) and draw the spectrograms.

Writes OUTPUT_DIR/<name>_vocals.wav, <name>_accompaniment.wav and <name>_spectrograms.png
(mixture / vocals / accompaniment, like Figure 4 of Huang et al. 2014).
"""
import os


def plot_spectrograms(signals, sample_rate, path, titles):
  """Log-magnitude spectrograms of `signals` (mono [samples] each), stacked, saved as PNG atomically."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  from tf_drnn import spectral
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG
  figure, axes = plt.subplots(len(signals), 1, figsize=(9, 2.4 * len(signals)), sharex=True)
  for axis, signal, title in zip(axes, signals, titles):
    magnitude = np.abs(spectral.stft_numpy(signal, DEFAULT_AUDIO_CONFIG)).T
    decibels = 20 * np.log10(magnitude + 1e-6)
    duration = len(signal) / sample_rate
    axis.imshow(decibels, origin="lower", aspect="auto", cmap="magma", vmin=decibels.max() - 80,
                vmax=decibels.max(), extent=[0, duration, 0, sample_rate / 2000])
    axis.set_title(title)
    axis.set_ylabel("kHz")
  axes[-1].set_xlabel("seconds")
  figure.tight_layout()
  from tf_drnn.atomic import atomic_output
  with atomic_output(path) as tmp:
    figure.savefig(tmp, dpi=100, format="png")
  plt.close(figure)


SYNTHETIC_NAME = "synthetic_song.wav"


def _figure_path(input_path, output_dir):
  name = os.path.splitext(os.path.basename(input_path))[0]
  return os.path.join(output_dir, f"{name}_spectrograms.png")


def demo(output_dir, input_path=None, model=None, seconds=6.0, overwrite=False):
  """Separates `input_path` (or a synthesized song) and writes stems + figure. Returns the paths.

  Outputs are planned like tf-drnn-separate's (tf_drnn.stems.plan_outputs): an existing
  output, the synthesized song included, is kept unless `overwrite`; an input never is.
  """
  from tf_drnn.audio import read_audio, write_audio
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG
  from tf_drnn.errors import UserError
  from tf_drnn import Separator
  from tf_drnn.stems import plan_outputs
  synthetic = input_path is None
  if synthetic:
    input_path = os.path.join(output_dir, SYNTHETIC_NAME)
    if os.path.lexists(input_path) and not overwrite:
      raise UserError(f"{input_path}: already exists (pass --overwrite to replace it)")
  plan_outputs([input_path], output_dir, overwrite, extra_targets=lambda path: [_figure_path(path, output_dir)])
  separator = Separator(model)
  if synthetic:
    from tf_drnn.synth import sung_like_mixture
    vocals, accompaniment = sung_like_mixture(seconds, DEFAULT_AUDIO_CONFIG.sample_rate)
    write_audio(input_path, vocals + accompaniment, DEFAULT_AUDIO_CONFIG.sample_rate)
  stem_paths = separator.separate_file(input_path, output_dir, overwrite=overwrite)
  mixture, rate = read_audio(input_path, mono=True)
  stems = [read_audio(p, mono=True)[0] for p in stem_paths]
  figure_path = _figure_path(input_path, output_dir)
  plot_spectrograms([mixture] + stems, rate, figure_path, ["mixture", "vocals (estimated)",
                                                             "accompaniment (estimated)"])
  return stem_paths + [figure_path]


def define_flags():
  from absl import flags

  from tf_drnn.flags_common import define_model, define_output_dir
  define_output_dir("the stems and the figure", default="tf_drnn_demo")
  flags.DEFINE_string("input", None, "Your own song (any format, rate, channels); default: a synthesized one.")
  define_model()
  flags.DEFINE_bool("overwrite", False, "Replace existing outputs (the stems, the figure, the synthesized song); "
                    "--input is never overwritten.")


def main(argv):
  del argv
  from absl import flags
  from tf_drnn.cli_util import run_guarded
  values = flags.FLAGS
  for path in run_guarded(lambda: demo(values.output_dir, values.input, values.model, overwrite=values.overwrite)):
    print(path)


def run():
  from tf_drnn.cli_util import run_app
  run_app(define_flags, main)


if __name__ == "__main__":
  run()
