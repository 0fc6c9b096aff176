"""Rendering results: summary.md (one table), the side-by-side comparison, latency.png.

Everything here reads the results dict written to results.json (see benchmarks/run.py), so
a summary can be re-rendered, or two runs compared, without re-running anything.
"""
import json
import os

from benchmarks.environment import one_line
from benchmarks.latency import config_key, parse_config_key
from tf_drnn.config import DEFAULT_AUDIO_CONFIG as CONFIG

DASH = "—"


def fmt(value, digits=2):
  if value is None:
    return DASH
  if isinstance(value, str):
    return value
  if value != value:  # NaN
    return "nan"
  return f"{value:.{digits}f}"


def mb(num_bytes):
  return None if num_bytes is None else num_bytes / 1e6


def latency_configs(results):
  """The (threads, XNNPACK) configurations in a results dict, XNNPACK first, by threads."""
  keys = set()
  for variant in results.get("variants", {}).values():
    for per_signature in variant.get("latency", {}).values():
      keys.update(per_signature)
  return sorted(keys, key=lambda k: (not parse_config_key(k)[1], parse_config_key(k)[0]))


def reference_config(results):
  """The configuration RTF and the roofline are reported for: fewest threads, XNNPACK on if measured."""
  configs = latency_configs(results)
  return configs[0] if configs else config_key(1, True)


def config_label(key):
  threads, xnnpack = parse_config_key(key)
  return f"{threads}T {'XNNPACK' if xnnpack else 'no XNNPACK'}"


def _latency(variant, signature, key):
  return variant.get("latency", {}).get(signature, {}).get(key)


def _triple(entry):
  if not entry:
    return DASH
  digits = 3 if entry["p50_ms"] < 1 else 2
  return "/".join(fmt(entry[f"p{p}_ms"], digits) for p in (50, 90, 99))


def _rss(variant):
  memory = variant.get("memory") or {}
  values = [memory.get(mode, {}).get("peak_rss_mb") for mode in ("xnnpack", "builtin")]
  if all(v is None for v in values):
    return DASH
  return " / ".join(fmt(v, 0) for v in values)


def _gnsdr(entry):
  quality = (entry or {}).get("quality") or {}
  return quality.get("global", {}).get("vocals", {}).get("GNSDR")


def rows(results):
  """Table rows (lists of cells) of the summary: each variant x signature, then the Keras reference."""
  configs = latency_configs(results)
  ref = reference_config(results)
  table = []
  for name, variant in results.get("variants", {}).items():
    signatures = list(variant.get("latency", {})) or ["separate_pcm"]
    for signature in signatures:
      pcm = signature == "separate_pcm"
      entry = _latency(variant, signature, ref)
      roof = (variant.get("roofline") or {}).get("multiple", {}).get(signature)
      table.append([name, signature, fmt(mb(variant.get("size_bytes"))),
                    *[_triple(_latency(variant, signature, key)) for key in configs],
                    fmt(entry["real_time_factor"], 0) if entry else DASH,
                    _rss(variant) if pcm else DASH,
                    fmt(_gnsdr(variant)) if pcm else DASH,
                    fmt(roof, 1) if roof is not None else DASH])
  keras = results.get("keras")
  if keras:
    separation = keras.get("separation") or {}
    table.append(["keras (reference)", "Separator", fmt(mb(keras.get("size_bytes"))),
                  *[DASH for _ in configs],
                  fmt(separation.get("audio_seconds_per_second"), 0), DASH, fmt(_gnsdr(keras)), DASH])
  return table


def header(results):
  ref = config_label(reference_config(results))
  return (["variant", "signature", "size MB"] +
          [f"{config_label(key)} p50/p90/p99 ms" for key in latency_configs(results)] +
          [f"real-time factor ({ref}, p50)", "peak RSS MB (XNNPACK / no XNNPACK)", "vocal GNSDR dB",
           f"× roofline ({ref}, p50)"])


def markdown_table(head, body):
  lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in body]
  return "\n".join(lines)


def peak_note(machine):
  """The roofline's peak MAC rates in words: measured through LiteRT, or the NumPy rate and an estimate."""
  numpy_rate = (f"NumPy float32 matmul {machine['matmul_gflops_f32']:.1f} GFLOP/s "
                f"({machine['peak_gmacs_f32']:.1f} GMAC/s)")
  if machine.get("litert_gmacs_int8"):
    return (f"LiteRT + XNNPACK matmul probe {machine['litert_gmacs_float32']:.1f} GMAC/s float32 and "
            f"{machine['litert_gmacs_int8']:.1f} GMAC/s int8 (measured; {numpy_rate})")
  return (f"{numpy_rate}, int8 {machine['peak_gmacs_int8_estimated']:.1f} GMAC/s (estimated as "
          f"{machine.get('int8_speedup', 2):g}x float32, not measured)")


def render_summary(results):
  """summary.md: the table, then the machine, the roofline inputs and the Keras/TF numbers."""
  settings = results.get("settings", {})
  lines = ["# Benchmark summary", "",
           f"Model: `{results.get('model', {}).get('path')}`; {settings.get('calls')} timed calls per "
           f"signature and configuration after {settings.get('warmup')} warm-up calls; one call = one hop "
           f"({settings.get('hop_length', CONFIG.hop_length)} samples at "
           f"{settings.get('sample_rate', CONFIG.sample_rate)} Hz).", "",
           markdown_table(header(results), rows(results)), ""]
  notes = ["Peak RSS: a fresh process that imports only NumPy + LiteRT, loads the file and streams "
           f"{settings.get('memory_calls')} calls of separate_pcm. GNSDR: separate_pcm under LiteRT on "
           f"{(results.get('quality_clips') or {}).get('count', settings.get('quality_clips'))} MIR-1K test "
           "clips at 0 dB (the Keras row: tf_drnn.Separator on the same clips). The Keras row's "
           "real-time factor is the Separator's whole-song throughput (audio s per s), not a per-call figure."]
  environment = results.get("environment")
  if environment:
    notes.append(f"Machine: {one_line(environment)}.")
  machine = results.get("machine")
  model = results.get("model", {})
  parameters = model.get("parameters") or {}
  if machine:
    notes.append(
        f"Roofline: {parameters.get('macs_per_frame', 0) / 1e6:.2f} M MACs and "
        f"{parameters.get('weights', 0) / 1e6:.2f} M weights per frame; single thread: {peak_note(machine)}, "
        f"copy bandwidth {machine['copy_bandwidth_gbs']:.1f} GB/s (256 MB arrays; "
        f"{machine.get('working_set_copy_gbs', float('nan')):.1f} GB/s on a "
        f"{machine.get('working_set_bytes', 0) / 1e6:.0f} MB working set). Weights read per frame: 4 B "
        "float32 and float16 (dequantized to float32 at load), 1 B dynamic and int8.")
    bounds = []
    for name, variant in results.get("variants", {}).items():
      roof = variant.get("roofline")
      if roof:
        invoke = roof.get("invoke_only_multiple", {})
        extra = [f"{s} Invoke alone {fmt(m, 1)}x" for s, m in invoke.items() if m is not None]
        if "cache_bound_ms" in roof:
          multiples = ", ".join(f"{s} {fmt(m, 1)}x" for s, m in roof.get("cache_multiple", {}).items())
          extra.append(f"weights in cache: bound {roof['cache_bound_ms']:.3f} ms "
                       f"({roof['cache_limited_by']}-bound){', p50 ' + multiples if multiples else ''}")
        bounds.append(f"{name} {roof['bound_ms']:.3f} ms ({roof['limited_by']}-bound"
                      f"{'; ' + '; '.join(extra) if extra else ''})")
    if bounds:
      notes.append("Roofline bounds per frame (multiples in the table: p50 / bound): " + "; ".join(bounds) + ".")
  keras = results.get("keras") or {}
  separation, training = keras.get("separation"), keras.get("training")
  if separation:
    notes.append(f"Keras Separator: {separation['audio_seconds']:.0f} s synthesized song in "
                 f"{separation['wall_seconds']:.2f} s = {separation['audio_seconds_per_second']:.0f} s of audio "
                 "per second.")
  if training:
    notes.append(f"Training ({training.get('data', '')}): {training['frames_per_second']:.0f} frames/s "
                 f"({training['seconds_per_step'] * 1e3:.0f} ms per step of {training['batch_size']} x "
                 f"{training['sequence_length']} frames, mean of {training['steps']} steps after "
                 f"{training['warmup_seconds']:.1f} s of warm-up/compilation); input pipeline "
                 f"{100 * training['input_pipeline_share']:.1f}% of step time.")
  errors = results.get("errors")
  if errors:
    notes.append("Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
  return "\n".join(lines + [f"- {note}" for note in notes]) + "\n"


# --- comparison of two runs ----------------------------------------------------------------------

def _ratio(a, b):
  if a is None or b is None or a == 0:
    return DASH
  return f"{b / a:.2f}"


def render_compare(a, b, name_a="A", name_b="B"):
  """Side-by-side Markdown of two results dicts (same table rows, A and B columns, B/A ratios)."""
  ref_a, ref_b = reference_config(a), reference_config(b)
  head = ["variant", "signature", f"size MB {name_a}", f"size MB {name_b}",
          f"p50 ms {name_a} ({config_label(ref_a)})", f"p50 ms {name_b} ({config_label(ref_b)})", "p50 B/A",
          f"p99 ms {name_a}", f"p99 ms {name_b}", f"RTF {name_a}", f"RTF {name_b}",
          f"peak RSS MB {name_a}", f"peak RSS MB {name_b}", f"GNSDR {name_a}", f"GNSDR {name_b}",
          f"× roofline {name_a}", f"× roofline {name_b}"]
  variants_a, variants_b = a.get("variants", {}), b.get("variants", {})
  names = list(variants_a) + [n for n in variants_b if n not in variants_a]
  body = []
  for name in names:
    va, vb = variants_a.get(name, {}), variants_b.get(name, {})
    signatures = list(va.get("latency", {})) + [s for s in vb.get("latency", {}) if s not in va.get("latency", {})]
    for signature in signatures or ["separate_pcm"]:
      ea, eb = _latency(va, signature, ref_a), _latency(vb, signature, ref_b)
      pa, pb = (ea or {}).get("p50_ms"), (eb or {}).get("p50_ms")
      pcm = signature == "separate_pcm"
      roof = lambda v: ((v.get("roofline") or {}).get("multiple") or {}).get(signature)  # noqa: B023
      body.append([name, signature, fmt(mb(va.get("size_bytes"))), fmt(mb(vb.get("size_bytes"))),
                   fmt(pa, 3), fmt(pb, 3), _ratio(pa, pb),
                   fmt((ea or {}).get("p99_ms"), 3), fmt((eb or {}).get("p99_ms"), 3),
                   fmt((ea or {}).get("real_time_factor"), 0), fmt((eb or {}).get("real_time_factor"), 0),
                   _rss(va) if pcm else DASH, _rss(vb) if pcm else DASH,
                   fmt(_gnsdr(va)) if pcm else DASH, fmt(_gnsdr(vb)) if pcm else DASH,
                   fmt(roof(va), 1), fmt(roof(vb), 1)])
  ka, kb = a.get("keras") or {}, b.get("keras") or {}
  if ka or kb:
    sa = (ka.get("separation") or {}).get("audio_seconds_per_second")
    sb = (kb.get("separation") or {}).get("audio_seconds_per_second")
    body.append(["keras (reference)", "Separator", fmt(mb(ka.get("size_bytes"))), fmt(mb(kb.get("size_bytes"))),
                 DASH, DASH, DASH, DASH, DASH, fmt(sa, 0), fmt(sb, 0), DASH, DASH,
                 fmt(_gnsdr(ka)), fmt(_gnsdr(kb)), DASH, DASH])
  lines = [f"# Benchmark comparison: {name_a} vs {name_b}", "", markdown_table(head, body), ""]
  for label, results in ((name_a, a), (name_b, b)):
    environment = results.get("environment")
    training = (results.get("keras") or {}).get("training")
    line = f"- {label}: " + (one_line(environment) if environment else "machine not recorded")
    if training:
      line += (f"; training {training['frames_per_second']:.0f} frames/s, input pipeline "
               f"{100 * training['input_pipeline_share']:.1f}% of step time")
    lines.append(line)
  return "\n".join(lines) + "\n"


def load_results(path):
  with open(path) as f:
    return json.load(f)


# --- latency.png ---------------------------------------------------------------------------------

def plot_latency(samples, path, title=None):
  """Box plots of per-call latency: one panel per signature, a group of boxes per variant.

  samples: {(variant, signature, config key): per-call seconds}. Whiskers at p1 and p99.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  signatures = sorted({s for _, s, _ in samples})
  variants = list(dict.fromkeys(v for v, _, _ in samples))
  configs = sorted({c for _, _, c in samples}, key=lambda k: (not parse_config_key(k)[1], parse_config_key(k)[0]))
  figure, axes = plt.subplots(1, max(len(signatures), 1), figsize=(6.5 * max(len(signatures), 1), 4.8),
                              squeeze=False)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  width = 0.8 / max(len(configs), 1)
  for axis, signature in zip(axes[0], signatures):
    for c, key in enumerate(configs):
      data, positions = [], []
      for v, variant in enumerate(variants):
        seconds = samples.get((variant, signature, key))
        if seconds is not None and len(seconds):
          data.append([s * 1e3 for s in seconds])
          positions.append(v - 0.4 + width * (c + 0.5))
      if not data:
        continue
      parts = axis.boxplot(data, positions=positions, widths=width * 0.9, whis=(1, 99), showfliers=False,
                           patch_artist=True, manage_ticks=False, medianprops={"color": "black"})
      for box in parts["boxes"]:
        box.set_facecolor(colors[c % len(colors)])
        box.set_alpha(0.7)
      axis.plot([], [], color=colors[c % len(colors)], linewidth=6, alpha=0.7, label=config_label(key))
    axis.set_xticks(range(len(variants)))
    axis.set_xticklabels(variants)
    axis.set_yscale("log")
    axis.set_ylabel("ms per call (box p25-p75, line p50, whiskers p1-p99)")
    axis.set_title(signature)
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend(fontsize=8)
  if title:
    figure.suptitle(title, fontsize=9)
  figure.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path, dpi=110)
  plt.close(figure)
  return path
