r"""Which rule should split the band the model cannot see? Measured on MIR-1K (16 kHz) and produced songs.

    python -m benchmarks.high_band --output_dir=/tmp/high_band                  # validation songs
    python -m benchmarks.high_band --output_dir=/tmp/high_band_test --split=test --rules=average
    python -m benchmarks.high_band --output_dir=/tmp/high_band_produced --rate=0 --produced_dir=../shared/MUSDB18-7

MIR-1K has no sound above 8 kHz, so the rules of tf_drnn.fullband are measured on a proxy:
the bundled model's vocal mask is kept below a cutoff c (--cutoffs, e.g. 4 and 5 kHz) and
replaced above c by each rule computed from the mask below c, just as the full-band path
extends it above its reliable cutoff (7 kHz). Rows: each rule, the model's own mask above c
(a ceiling: what a model that saw the band would give) and the ideal ratio mask above c (the
oracle). Scores: vocal and accompaniment SDR in the band above c against the true sources
(an FFT brick wall on the whole clip; length-weighted means over clips), and full-band NSDR
(simple SDR minus the mixture's, not BSS Eval). With the accompaniment = mixture - vocals and
0 dB mixtures the two sources' full-band NSDRs are equal (and in a band, one source's NSDR is
the other's SDR), so the table shows one.

Second table (--rate, default 44100): the clips resampled to that rate and separated by
Separator at it, old path (the model's band only: stems resampled back, what tf-drnn-separate
gave before full-band separation) against the full-band path with each rule; SDR below 7 kHz
(must not get worse), in 7-8 kHz (the resampler's roll-off band, split by the rule above the
7 kHz cutoff) and over the full band.

Third table (--produced_dir, a stems collection such as MUSDB18-7): its validation songs as mixed,
mono, at their own rate, the headline metric of produced music (BSS Eval v3 over the whole excerpt,
mean vocal SDR over songs): each rule's full-band path, and the model's band with the true vocals of
the band it cannot see added (the ceiling of any rule or learned model for that band). BSS Eval's
512-tap distortion filter forgives vocals that lack a band (not an accompaniment that leaks into them),
so these SDRs see less of the band than a listener does.

Writes results.json and summary.md into --output_dir.
"""
import os
import time

from absl import flags

import numpy as np

from benchmarks.run import DEFAULT_DATA_DIR, recorded_path
from tf_drnn.cli_util import run_app, run_guarded

FLAGS = flags.FLAGS
REFERENCES = ("model", "oracle")


def define_flags():
  from tf_drnn.fullband import HIGH_BAND_RULES
  from tf_drnn.flags_common import define_data_dir, define_dev_clips, define_model, define_output_dir
  define_output_dir("results.json and summary.md", required=True)
  define_data_dir(DEFAULT_DATA_DIR, note="MIR-1K only.")
  define_model()
  flags.DEFINE_enum("split", "dev", ["dev", "test"], "dev: the validation songs (choose here); test: once.")
  define_dev_clips(["abjones_5", "amy_9"])
  flags.DEFINE_list("cutoffs", ["4000", "5000"], "Proxy cutoffs c in Hz.")
  flags.DEFINE_list("rules", list(HIGH_BAND_RULES), "Rules to score.")
  flags.DEFINE_integer("rate", 44100, "Also separate the clips resampled to this rate (0: skip).")
  flags.DEFINE_integer("max_clips", 0, "Score only the first N clips (0: all).")
  flags.DEFINE_string("produced_dir", None, "Also score the validation songs of this stems collection (MUSDB18-7).")


def band(signal, rate, low, high=np.inf):
  """The part of `signal` [samples] between `low` and `high` Hz (FFT brick wall, float64)."""
  spectrum = np.fft.rfft(np.asarray(signal, np.float64))
  frequencies = np.fft.rfftfreq(len(signal), 1 / rate)
  spectrum[(frequencies < low) | (frequencies >= high)] = 0
  return np.fft.irfft(spectrum, n=len(signal))


def sdr(reference, estimate):
  """10 log10(|s|^2 / |s - s_hat|^2) in dB."""
  error = np.sum((reference - estimate) ** 2)
  return float(10 * np.log10(max(np.sum(reference ** 2), 1e-30) / max(error, 1e-30)))


def model_masks(model, mixture):
  """(vocal mask, magnitude, spectrum) [frames, bins] of the model on a whole mono clip."""
  from tf_drnn.models import offline_masks
  masks, spectrum = offline_masks(model, mixture)
  return np.asarray(masks[:, 0], np.float64), np.abs(spectrum), spectrum


def proxy_masks(mask, magnitude, spectrum, vocals, accompaniment, cutoff, rules, config):
  """{row: vocal mask [frames, bins]}: the model's below `cutoff`, each rule / reference above."""
  from tf_drnn import fullband, spectral
  result = {rule: fullband.extend_mask(mask, magnitude, cutoff, rule, config) for rule in rules}
  result["model"] = mask
  true_vocals = np.abs(spectral.stft_numpy(vocals, config))
  true_accompaniment = np.abs(spectral.stft_numpy(accompaniment, config))
  ideal = true_vocals / np.maximum(true_vocals + true_accompaniment, 1e-12)
  frequencies = np.arange(mask.shape[1]) * config.sample_rate / config.n_fft
  result["oracle"] = np.where(frequencies >= cutoff, ideal, mask)
  return result


def score(mixture, vocals, accompaniment, vocals_hat, rate, bands, accompaniment_hat=None):
  """{band name: {vocals, accompaniment: (SDR, mixture SDR)}}; accompaniment: mixture - vocals by default."""
  accompaniment_hat = mixture - vocals_hat if accompaniment_hat is None else accompaniment_hat
  result = {}
  for name, (low, high) in bands.items():
    parts = [band(s, rate, low, high) if (low, high) != (0, np.inf) else np.asarray(s, np.float64)
             for s in (mixture, vocals, accompaniment, vocals_hat, accompaniment_hat)]
    m, v, a, v_hat, a_hat = parts
    result[name] = {"vocals": (sdr(v, v_hat), sdr(v, m)), "accompaniment": (sdr(a, a_hat), sdr(a, m))}
  return result


def aggregate(rows):
  """[(num_samples, score dict)] -> {band: {source: {GSDR, GNSDR}}}, length-weighted."""
  weights = np.array([n for n, _ in rows], np.float64)
  weights /= weights.sum()
  result = {}
  for band_name in rows[0][1]:
    result[band_name] = {}
    for source in ("vocals", "accompaniment"):
      values = np.array([s[band_name][source] for _, s in rows])  # [clips, 2]
      result[band_name][source] = {"GSDR": float(weights @ values[:, 0]),
                                   "GNSDR": float(weights @ (values[:, 0] - values[:, 1]))}
  return result


def resampled_rows(model, clips, rules, rate):
  """The MIR-1K clips resampled to `rate`: the old path (the model's band only) against each rule's full band."""
  import soxr
  from tf_drnn import Separator
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  from tf_drnn.fullband import reliable_cutoff_hz
  cutoff = reliable_cutoff_hz(rate, config)
  bands = {"below_cutoff": (0, cutoff), "cutoff_to_8k": (cutoff, config.sample_rate / 2), "full": (0, np.inf)}
  separators = {rule: Separator(model, high_band=rule) for rule in rules}
  rows = {row: [] for row in ["model band only (before)"] + list(rules)}
  for _, mixture, vocals, accompaniment in clips:
    mixture, vocals, accompaniment = (soxr.resample(s, config.sample_rate, rate, "HQ")
                                      for s in (mixture, vocals, accompaniment))
    at_model_rate = soxr.resample(mixture, rate, config.sample_rate, "HQ")
    # Before: both stems of the model at its rate, resampled back (they miss the band it cannot see).
    old = separators[rules[0]].separate(at_model_rate, config.sample_rate)
    old = [soxr.resample(old[stem], config.sample_rate, rate, "HQ")[:len(mixture)]
           for stem in ("vocals", "accompaniment")]
    rows["model band only (before)"].append(
        (len(mixture), score(mixture, vocals, accompaniment, old[0], rate, bands, accompaniment_hat=old[1])))
    for rule, separator in separators.items():
      vocals_hat = separator.separate(mixture, rate)["vocals"]
      rows[rule].append((len(mixture), score(mixture, vocals, accompaniment, vocals_hat, rate, bands)))
  return {"rate": rate, "cutoff_hz": cutoff, "rows": {row: aggregate(v) for row, v in rows.items()}}


def vocal_sdr_v3(mixture, vocals, accompaniment, vocals_hat):
  """BSS Eval v3 vocal SDR (dB) of `vocals_hat` (accompaniment: mixture - vocals_hat); mono [samples]."""
  from tf_drnn.metrics import bss_eval
  return float(bss_eval(np.stack([vocals, accompaniment]), np.stack([vocals_hat, mixture - vocals_hat]))[0][0])


def high_band_of(signal, rate):
  """signal - up(down(signal)): the part of `signal` [samples] at `rate` that the model cannot see."""
  from tf_drnn.audio import fit_length, resample
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  low = resample(resample(signal, rate, config.sample_rate), config.sample_rate, rate)
  return np.asarray(signal, np.float64) - fit_length(np.asarray(low, np.float64), len(signal))


def produced_rows(separators, songs):
  """{row: {song name: vocal SDR}} on produced songs (mono, as mixed, each at its own rate).

  separators: {rule: a Separator with that --high_band rule}, "accompaniment" among them. Rows: each
  rule's full-band path, and "oracle": the "accompaniment" rule's vocals (only the model's band) plus
  the true vocals' part above it."""
  rows = {row: {} for row in list(separators) + ["oracle"]}
  for song in songs:
    mixture, vocals, accompaniment, rate = song.native()
    mixture, vocals, accompaniment = (np.asarray(s, np.float64).mean(axis=1) for s in (mixture, vocals, accompaniment))
    estimates = {rule: separator.separate_pair(mixture[:, None].astype(np.float32), rate)[0][:, 0]
                 for rule, separator in separators.items()}
    estimates["oracle"] = estimates["accompaniment"] + high_band_of(vocals, rate)
    for row in rows:
      rows[row][song.name] = vocal_sdr_v3(mixture, vocals, accompaniment, np.asarray(estimates[row], np.float64))
  return rows


def run(output_dir, data_dir, model_path, split, dev_clips, cutoffs, rules, rate, max_clips, produced_dir=None):
  from tf_drnn import spectral
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG as config
  from tf_drnn.data import load_dataset
  from tf_drnn.errors import UserError
  from tf_drnn.scoring import mixtures
  from tf_drnn.fullband import HIGH_BAND_RULES
  from tf_drnn import Separator
  from tf_drnn.models import load_model, resolve_model_path
  unknown = [r for r in rules if r not in HIGH_BAND_RULES]
  if unknown or not rules:
    raise UserError(f"--rules: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(HIGH_BAND_RULES)}")
  start = time.perf_counter()
  model = load_model(model_path)
  tracks = load_dataset("mir1k", data_dir, dev_clips).tracks(split)
  if max_clips:
    tracks = tracks[:max_clips]
  clips = list(mixtures(tracks))
  proxy = {c: {row: [] for row in list(rules) + list(REFERENCES)} for c in cutoffs}
  for _, mixture, vocals, accompaniment in clips:
    mask, magnitude, spectrum = model_masks(model, mixture)
    for cutoff in cutoffs:
      bands = {"above_c": (cutoff, np.inf), "full": (0, np.inf)}
      for row, vocal_mask in proxy_masks(mask, magnitude, spectrum, vocals, accompaniment, cutoff, rules,
                                         config).items():
        vocals_hat = spectral.istft_numpy(vocal_mask * spectrum, len(mixture), config)
        proxy[cutoff][row].append((len(mixture), score(mixture, vocals, accompaniment, vocals_hat,
                                                       config.sample_rate, bands)))
  results = {"split": split, "clips": [c[0] for c in clips],
             "model": recorded_path(resolve_model_path(model_path), output_dir),
             "proxy": {str(c): {row: aggregate(v) for row, v in rows.items()} for c, rows in proxy.items()}}
  if rate:
    results["resampled"] = resampled_rows(model, clips, rules, rate)
  if produced_dir:
    songs = load_dataset("stems", produced_dir).tracks("dev")
    rows = produced_rows({rule: Separator(model, high_band=rule) for rule in dict.fromkeys(rules + ["accompaniment"])},
                         songs)
    results["produced"] = {"data_dir": recorded_path(produced_dir, output_dir), "songs": [song.name for song in songs],
                           "mean_vocal_SDR": {row: float(np.mean(list(v.values()))) for row, v in rows.items()},
                           "vocal_SDR": rows}
  results["seconds"] = time.perf_counter() - start
  os.makedirs(output_dir, exist_ok=True)
  from tf_drnn.atomic import write_json, write_text
  write_json(os.path.join(output_dir, "results.json"), results)
  summary = render(results)
  write_text(os.path.join(output_dir, "summary.md"), summary)
  print(summary)


def render(results):
  names = results["clips"]
  lines = [f"High-band rules, {results['split']} split: {len(names)} MIR-1K clips "
           f"({names[0]} … {names[-1]}), model {os.path.basename(results['model'])}, "
           f"{results['seconds']:.0f} s.", ""]
  for cutoff, rows in results["proxy"].items():
    lines += [f"Proxy cutoff c = {float(cutoff) / 1000:g} kHz: the model's mask below c, above c by each row "
              "(dB, length-weighted).", "",
              "| mask above c | vocal SDR above c | accomp. SDR above c | NSDR full band |",
              "| --- | ---: | ---: | ---: |"]
    for row, scores in rows.items():
      label = {"model": "model's own mask (ceiling)", "oracle": "ideal ratio mask (oracle)"}.get(row, f"rule: {row}")
      high, full = scores["above_c"], scores["full"]
      lines.append(f"| {label} | {high['vocals']['GSDR']:.2f} | {high['accompaniment']['GSDR']:.2f} "
                   f"| {full['vocals']['GNSDR']:.2f} |")
    lines.append("")
  if "resampled" in results:
    resampled = results["resampled"]
    cutoff = resampled["cutoff_hz"] / 1000
    lines += [f"The clips resampled to {resampled['rate']} Hz, separated at that rate (SDR, dB; "
              f"the rule splits x_high above {cutoff:g} kHz).", "",
              f"| path | vocal SDR < {cutoff:g} kHz | accomp. SDR < {cutoff:g} kHz | vocal SDR {cutoff:g}–8 kHz "
              f"| accomp. SDR {cutoff:g}–8 kHz | vocal SDR full | accomp. SDR full |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row, scores in resampled["rows"].items():
      label = row if row.startswith("model") else f"full band, rule: {row}"
      cells = [f"{scores[b][s]['GSDR']:.2f}" for b in ("below_cutoff", "cutoff_to_8k", "full")
               for s in ("vocals", "accompaniment")]
      lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
  if "produced" in results:
    produced = results["produced"]
    lines += [f"Produced music: the {len(produced['songs'])} validation songs of {produced['data_dir']} as mixed, "
              "mono, at their own rate (BSS Eval v3 over each excerpt, mean vocal SDR over songs, dB).", "",
              "| above the model's band | mean vocal SDR |", "| --- | ---: |"]
    for row, value in produced["mean_vocal_SDR"].items():
      label = "the true vocals (oracle)" if row == "oracle" else f"rule: {row}"
      lines.append(f"| {label} | {value:.2f} |")
    lines.append("")
  return "\n".join(lines)


def main(argv):
  del argv
  run_guarded(lambda: run(FLAGS.output_dir, FLAGS.data_dir, FLAGS.model, FLAGS.split, FLAGS.dev_clips,
                          [float(c) for c in FLAGS.cutoffs], FLAGS.rules, FLAGS.rate, FLAGS.max_clips,
                          FLAGS.produced_dir))


if __name__ == "__main__":
  run_app(define_flags, main)
