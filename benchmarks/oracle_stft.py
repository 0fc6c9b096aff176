r"""What can a ratio mask give at each model's STFT? The ideal ratio mask |V| / (|V| + |A|) of the
true sources, under each model's STFT settings: the ceiling of any magnitude-mask model at that
latency (a live model's short synthesis window costs some of it).

    python -m benchmarks.oracle_stft --output_dir=/tmp/oracle_stft \
        --data_dir=MIR-1K,MUSDB18-7 --models=drnn2_compact,drnn2_live

Scores, at the models' 16 kHz, BSS Eval v3: MIR-1K's public test singers on the paper's 0 dB remixes
(vocal GNSDR) and the produced songs' validation split as mixed, mono (mean vocal SDR over songs).
Writes results.json and summary.md into --output_dir.
"""
import os

import numpy as np
from absl import flags

from tf_drnn.cli_util import run_app, run_guarded

FLAGS = flags.FLAGS
RESULTS_FORMAT = "tf_drnn.benchmarks.oracle_stft/1"


def define_flags():
  from tf_drnn.flags_common import define_data_dir, define_output_dir
  define_output_dir("results.json and summary.md", required=True)
  define_data_dir(note="Two folders: MIR-1K, then a stems collection (MUSDB18-7).", several=True, required=True)
  flags.DEFINE_list("models", ["drnn2_compact", "drnn2_live"], "Models whose STFT settings to score.")
  flags.DEFINE_list("stfts", [], "More STFT settings to score, each N_FFT/HOP/WINDOW (e.g. 1024/64/asymmetric_sine).")
  flags.DEFINE_integer("max_clips", 0, "Score only N clips of each collection, spread evenly (0: all).")


def stft_settings(model):
  """The AudioConfig `model` (bundled name, .keras, model_dir) was trained with."""
  from tf_drnn.model import audio_config
  from tf_drnn.models import load_model
  return audio_config(load_model(model))


def ideal_mask_scores(config, mir1k, produced):
  """{"mir1k_test_vocal_GNSDR", "produced_dev_mean_vocal_SDR", ...} of the ideal ratio mask under `config`."""
  from tf_drnn.scoring import OracleEstimator, score_estimates
  oracle = OracleEstimator("irm", config)
  _, mir1k_global = score_estimates(oracle, mir1k, voice_db=0.0)
  songs, _ = score_estimates(oracle, produced, voice_db=None)
  return {"mir1k_test_vocal_GNSDR": mir1k_global["vocals"]["GNSDR"],
          "mir1k_test_vocal_GSIR": mir1k_global["vocals"]["GSIR"],
          "mir1k_test_vocal_GSAR": mir1k_global["vocals"]["GSAR"],
          "produced_dev_mean_vocal_SDR": float(np.mean([s.sdr[0] for s in songs if not s.skipped]))}


def parse_stft(text):
  """"N_FFT/HOP/WINDOW" -> AudioConfig (16 kHz). UserError."""
  from tf_drnn.config import AudioConfig
  from tf_drnn.errors import UserError
  try:
    n_fft, hop, window = text.split("/")
    return AudioConfig(n_fft=int(n_fft), hop_length=int(hop), window=window)
  except ValueError as error:
    raise UserError(f"--stfts={text}: expected N_FFT/HOP/WINDOW ({error})") from None


def run(output_dir, data_dirs, models, max_clips=0, stfts=()):
  """Scores every setting, writes results.json and summary.md; returns the summary's text."""
  from tf_drnn.atomic import write_json, write_text
  from tf_drnn.data import load_dataset
  from tf_drnn.errors import UserError
  from tf_drnn.scoring import spread_evenly
  if len(data_dirs) != 2:
    raise UserError(f"--data_dir={','.join(data_dirs)}: give two folders, MIR-1K and a stems collection")
  mir1k = spread_evenly(load_dataset("mir1k", data_dirs[0]).tracks("test"), max_clips)
  produced = spread_evenly(load_dataset("stems", data_dirs[1]).tracks("dev"), max_clips)
  settings = [(model, stft_settings(model)) for model in models] + [("", parse_stft(text)) for text in stfts]
  rows = [{"model": model, "audio_config": config.as_dict(), **ideal_mask_scores(config, mir1k, produced)}
          for model, config in settings]
  os.makedirs(output_dir, exist_ok=True)
  write_json(os.path.join(output_dir, "results.json"), {
      "format": RESULTS_FORMAT, "mir1k_clips": len(mir1k), "produced_songs": len(produced), "rows": rows})
  text = summary(rows, len(mir1k), len(produced))
  write_text(os.path.join(output_dir, "summary.md"), text)
  return text


def summary(rows, mir1k_clips, produced_songs):
  lines = [f"Ideal ratio mask, BSS Eval v3 at 16 kHz: MIR-1K public test ({mir1k_clips} clips, 0 dB, vocal GNSDR "
           f"/ GSIR / GSAR) and produced songs ({produced_songs} validation songs as mixed, mono, mean vocal SDR).",
           "", "| STFT of | n_fft / hop / window | MIR-1K GNSDR | GSIR | GSAR | produced SDR |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
  for r in rows:
    c = r["audio_config"]
    lines.append(f"| {r['model'] or '—'} | {c['n_fft']} / {c['hop_length']} / {c['window']} | "
                 f"{r['mir1k_test_vocal_GNSDR']:.2f} | {r['mir1k_test_vocal_GSIR']:.2f} | "
                 f"{r['mir1k_test_vocal_GSAR']:.2f} | {r['produced_dev_mean_vocal_SDR']:.2f} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  print(run_guarded(lambda: run(FLAGS.output_dir, FLAGS.data_dir.split(","), FLAGS.models, FLAGS.max_clips,
                                FLAGS.stfts)), end="")


if __name__ == "__main__":
  run_app(define_flags, main)
