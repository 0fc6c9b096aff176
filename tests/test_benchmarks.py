"""Fast tests of the benchmark's pure parts: statistics, roofline arithmetic, MAC counts,
rendering, file discovery, the memory child, the command's error line. No wall-clock assertions.
"""
import json
import re
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import latency, memory, report, roofline
from benchmarks import run as bench_run
from tf_drnn.errors import UserError
from tf_drnn.model import ModelParts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- latency statistics ----------------------------------------------------------------------------

def test_percentiles_of_known_samples():
  samples = np.arange(1, 102)  # 1..101
  assert latency.percentiles(samples) == {"p50": 51.0, "p90": 91.0, "p99": 100.0}
  assert latency.percentiles([7.0]) == {"p50": 7.0, "p90": 7.0, "p99": 7.0}
  with pytest.raises(ValueError):
    latency.percentiles([])


def test_summarize_in_milliseconds_with_real_time_factor():
  seconds = np.full(10, 0.002)  # 2 ms per call
  summary = latency.summarize(seconds, hop_seconds=512 / 16000)
  assert summary["p50_ms"] == pytest.approx(2.0)
  assert summary["p99_ms"] == pytest.approx(2.0)
  assert summary["calls"] == 10
  assert summary["real_time_factor"] == pytest.approx(0.032 / 0.002)  # 16x faster than real time


def test_config_keys_round_trip():
  for threads in (1, 2, 8):
    for xnnpack in (True, False):
      assert latency.parse_config_key(latency.config_key(threads, xnnpack)) == (threads, xnnpack)
  assert latency.config_key(2, False) == "2t_builtin"


# --- roofline arithmetic ---------------------------------------------------------------------------

def test_roofline_bound_with_hand_numbers():
  # 1e6 MACs at 1e9 MAC/s = 1 ms; 4e6 bytes at 1e9 B/s = 4 ms: memory-bound at 4 ms.
  seconds, limit = roofline.bound(1e6, 4e6, 1e9, 1e9)
  assert seconds == pytest.approx(4e-3) and limit == "memory"
  seconds, limit = roofline.bound(1e7, 4e6, 1e9, 1e9)
  assert seconds == pytest.approx(1e-2) and limit == "compute"
  assert roofline.multiple(8.0, 4.0) == pytest.approx(2.0)


def test_bytes_per_frame_per_variant():
  parameters = {"macs_per_frame": 1000, "weights": 1000, "biases": 10}
  assert roofline.bytes_per_frame(parameters, "float32") == 4040
  assert roofline.bytes_per_frame(parameters, "float16") == 4040  # run as float32
  assert roofline.bytes_per_frame(parameters, "float16", runtime=False) == 2040  # stored as float16
  assert roofline.bytes_per_frame(parameters, "dynamic") == 1040
  assert roofline.bytes_per_frame(parameters, "int8") == 1040


def test_variant_roofline_uses_the_estimated_int8_rate():
  parameters = {"macs_per_frame": 2_000_000, "weights": 2_000_000, "biases": 0}
  machine = {"matmul_gflops_f32": 20.0, "copy_bandwidth_gbs": 10.0}  # 10 GMAC/s float32
  f32 = roofline.variant_roofline(parameters, "float32", machine)
  assert f32["bound_ms"] == pytest.approx(0.8)  # 8 MB at 10 GB/s > 2e6 MACs at 10 GMAC/s (0.2 ms)
  assert f32["limited_by"] == "memory" and not f32["peak_estimated"]
  int8 = roofline.variant_roofline(parameters, "int8", machine)
  assert int8["peak_gmacs"] == pytest.approx(10.0 * roofline.INT8_SPEEDUP)
  assert int8["peak_estimated"]
  assert int8["bound_ms"] == pytest.approx(max(2e6 / 20e9, 2e6 / 10e9) * 1e3)
  assert "cache_bound_ms" not in int8  # No working-set bandwidth measured.
  # With a cache-level bandwidth measured on a working set that holds twice the int8 weights:
  machine.update({"working_set_copy_gbs": 50.0, "working_set_bytes": 4.2e6})
  int8 = roofline.variant_roofline(parameters, "int8", machine)
  assert int8["cache_bound_ms"] == pytest.approx(0.1)  # 2e6 MACs at 20 GMAC/s > 2 MB at 50 GB/s
  assert int8["cache_limited_by"] == "compute"
  assert "cache_bound_ms" not in roofline.variant_roofline(parameters, "float32", machine)  # 8 MB: too big


def test_variant_roofline_uses_the_measured_litert_rates():
  parameters = {"macs_per_frame": 2_000_000, "weights": 2_000_000, "biases": 0}
  machine = {"matmul_gflops_f32": 20.0, "copy_bandwidth_gbs": 1000.0,  # compute-bound on purpose
             "litert_gmacs_float32": 40.0, "litert_gmacs_int8": 160.0}
  f32 = roofline.variant_roofline(parameters, "float32", machine)
  int8 = roofline.variant_roofline(parameters, "int8", machine)
  assert f32["peak_gmacs"] == pytest.approx(40.0) and int8["peak_gmacs"] == pytest.approx(160.0)
  assert not int8["peak_estimated"]
  assert int8["bound_ms"] == pytest.approx(2e6 / 160e9 * 1e3)
  assert "measured" in report.peak_note(dict(machine, peak_gmacs_f32=10.0))


def test_litert_matmul_probe_is_an_int8_matmul(tmp_path):
  from tf_drnn.litert import make_interpreter
  path = str(tmp_path / "probe.tflite")
  macs = roofline.matmul_tflite(path, "int8", rows=8, size=64)
  assert macs == 8 * 64 * 64
  interpreter = make_interpreter(path)
  ops = {op["op_name"] for op in interpreter._get_ops_details()}
  assert "FULLY_CONNECTED" in ops or "BATCH_MATMUL" in ops
  kernel_types = {t["dtype"] for t in interpreter.get_tensor_details() if len(t["shape"]) == 2}
  assert np.int8 in kernel_types  # int8 weights and activations inside
  assert roofline.time_litert(path, macs, repeats=3) > 0


def test_mac_count_of_tiny_models_matches_a_hand_count(tiny_model):
  # drnn2, context 3, 3 x 16 units, 513 bins, two heads.
  hand = (3 * 513 * 16) + (16 * 16 + 16 * 16) + (16 * 16) + 2 * (16 * 513)
  parameters = roofline.count_parameters(tiny_model)
  assert parameters["macs_per_frame"] == hand == 41808
  assert parameters["biases"] == 16 * 3 + 2 * 513
  from tf_drnn.model import build_model
  srnn = build_model("srnn", context=1, num_layers=2, hidden_units=8, output_format="one_source")
  assert roofline.count_parameters(srnn)["macs_per_frame"] == (513 * 8 + 8 * 8) + (8 * 8 + 8 * 8) + 8 * 513


# --- memory ---------------------------------------------------------------------------------------

def test_ru_maxrss_units_and_vm_hwm_parsing(tmp_path):
  assert memory.ru_maxrss_to_bytes(100, "linux") == 102400  # KiB
  assert memory.ru_maxrss_to_bytes(100, "darwin") == 100  # bytes
  status = tmp_path / "status"
  status.write_text("Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t  100 kB\n")
  assert memory.vm_hwm_bytes(str(status)) == 12345 * 1024
  assert memory.vm_hwm_bytes(str(tmp_path / "missing")) is None
  value, source = memory.peak_rss_bytes()
  assert value > 0 and source in ("VmHWM", "ru_maxrss", "psutil")


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
  """The conftest's tiny DRNN-2 exported as float32, or a skip where the exporter is unusable."""
  try:
    from tf_drnn_export import convert
  except ImportError as error:
    pytest.skip(f"the exporter is not importable: {error}")
  from tf_drnn.model import build_model
  model = build_model("drnn2", context=3, num_layers=3, hidden_units=16)
  rng = np.random.default_rng(0)
  ModelParts(model).features.set_statistics(np.abs(rng.standard_normal((200, 513))).astype(np.float32))
  path = str(tmp_path_factory.mktemp("bench") / "tiny_float32.tflite")
  sidecar = convert.export_tflite(model, path, "float32")
  return path, sidecar


def test_memory_child_streams_without_tensorflow(tiny_tflite):
  path, _ = tiny_tflite
  report_ = memory.peak_rss(path, calls=20, threads=1, xnnpack=False)
  assert report_["finite"] and report_["calls"] == 20
  assert not report_["tensorflow_imported"]
  assert report_["peak_rss_bytes"] >= report_["after_imports_bytes"] > 0
  assert report_["peak_rss_mb"] == pytest.approx(report_["peak_rss_bytes"] / 1e6)


def test_latency_and_quality_streaming_on_a_tiny_file(tiny_tflite):
  path, sidecar = tiny_tflite
  summary, samples = latency.benchmark_file(path, [1], calls=5, warmup=1, hop_seconds=0.032,
                                            xnnpack_modes=(True,))
  for signature in latency.SIGNATURES:
    entry = summary[signature]["1t_xnnpack"]
    assert entry["calls"] == 5 and entry["p50_ms"] > 0
    assert len(samples[(signature, "1t_xnnpack")]) == 5
  assert "invoke_only" in summary["separate_frame"]["1t_xnnpack"]
  from tf_drnn.litert import tflite_separate_fn
  separate = tflite_separate_fn(path)
  mixture = np.random.default_rng(0).standard_normal(3000).astype(np.float32) * 0.1
  vocals, accompaniment = separate(mixture)
  assert vocals.shape == accompaniment.shape == mixture.shape
  # The two stems of a soft mask add up to the mixture (once the latency is trimmed).
  np.testing.assert_allclose(vocals + accompaniment, mixture, atol=1e-4)


# --- rendering ------------------------------------------------------------------------------------

def _fake_results(scale=1.0):
  def entry(p50):
    return {"p50_ms": p50 * scale, "p90_ms": 1.5 * p50 * scale, "p99_ms": 2 * p50 * scale,
            "mean_ms": p50 * scale, "calls": 100, "real_time_factor": 32.0 / (p50 * scale)}
  variants = {}
  for name, p50, size in (("float32", 2.0, 22.3e6), ("int8", 0.5, 5.7e6)):
    variants[name] = {
        "size_bytes": size,
        "latency": {s: {"1t_xnnpack": entry(p50), "2t_xnnpack": entry(p50 / 2), "1t_builtin": entry(2 * p50)}
                    for s in latency.SIGNATURES},
        "memory": {"xnnpack": {"peak_rss_mb": 80.0}, "builtin": {"peak_rss_mb": 60.0}},
        "quality": {"global": {"vocals": {"GNSDR": 7.25}, "accompaniment": {"GNSDR": 7.0}}},
        "roofline": {"bound_ms": p50 / 2, "limited_by": "memory", "multiple": {s: 2.0 for s in latency.SIGNATURES},
                     "invoke_only_multiple": {"separate_frame": 1.5}},
    }
  return {
      "environment": {"cpu_model": "Test CPU", "machine": "aarch64", "usable_cores": 2, "system": "Linux",
                      "python": "3.11", "numpy": "2", "tensorflow": "2.21", "ai_edge_litert": "2.3",
                      "date_utc": "2026-01-01T00:00:00+00:00"},
      "settings": {"calls": 100, "warmup": 10, "memory_calls": 50, "quality_clips": 3},
      "model": {"path": "m.keras", "parameters": {"macs_per_frame": 5.6e6, "weights": 5.6e6}},
      "machine": {"matmul_gflops_f32": 100.0, "peak_gmacs_f32": 50.0, "peak_gmacs_int8_estimated": 100.0,
                  "copy_bandwidth_gbs": 20.0, "working_set_copy_gbs": 80.0, "working_set_bytes": 8e6},
      "variants": variants,
      "keras": {"size_bytes": 22.3e6, "quality": {"global": {"vocals": {"GNSDR": 7.5}}},
                "separation": {"audio_seconds": 30.0, "wall_seconds": 1.5, "audio_seconds_per_second": 20.0},
                "training": {"frames_per_second": 12000.0, "seconds_per_step": 0.13, "batch_size": 16,
                             "sequence_length": 100, "steps": 5, "warmup_seconds": 20.0,
                             "input_pipeline_share": 0.02, "data": "fake"}},
  }


def test_summary_table_has_every_configuration_and_the_reference_row():
  text = report.render_summary(_fake_results())
  table = [line for line in text.splitlines() if line.startswith("|")]
  header = table[0]
  for column in ("size MB", "1T XNNPACK p50/p90/p99 ms", "2T XNNPACK p50/p90/p99 ms",
                 "1T no XNNPACK p50/p90/p99 ms", "real-time factor", "peak RSS MB", "vocal GNSDR dB", "roofline"):
    assert column in header
  assert header.index("1T XNNPACK") < header.index("2T XNNPACK") < header.index("1T no XNNPACK")
  assert len(table) == 2 + 2 * 2 + 1  # header, rule, 2 variants x 2 signatures, keras
  int8_pcm = next(line for line in table if line.startswith("| int8 | separate_pcm"))
  cells = [c.strip() for c in int8_pcm.strip("|").split("|")]
  assert cells[2] == "5.70"  # MB
  assert cells[3] == "0.500/0.750/1.000"
  assert cells[6] == "64"  # 0.032 s / 0.5 ms
  assert cells[7] == "80 / 60"
  assert cells[8] == "7.25"
  assert cells[9] == "2.0"
  assert "keras (reference)" in table[-1] and "7.50" in table[-1]
  assert "Test CPU" in text and "12000 frames/s" in text and "2.0% of step time" in text


def test_compare_renders_ratios_side_by_side(tmp_path):
  a, b = _fake_results(), _fake_results(scale=2.0)
  b["environment"]["cpu_model"] = "Other CPU"
  text = report.render_compare(a, b, "old", "new")
  row = next(line for line in text.splitlines() if line.startswith("| float32 | separate_frame"))
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[4:7] == ["2.000", "4.000", "2.00"]
  assert "Test CPU" in text and "Other CPU" in text
  paths = []
  for name, results in (("a", a), ("b", b)):
    (tmp_path / name).mkdir()
    path = tmp_path / name / "results.json"
    path.write_text(json.dumps(results))
    paths.append(str(path))
  written = bench_run.compare(paths, str(tmp_path / "out"))
  assert (tmp_path / "out" / "compare.md").read_text() == written
  assert "a vs b" in written
  with pytest.raises(UserError):
    bench_run.compare(paths[:1], str(tmp_path / "out"))


def test_plot_latency_writes_a_png(tmp_path):
  rng = np.random.default_rng(0)
  samples = {(v, s, k): rng.gamma(4, 1e-4, 200) for v in ("float32", "int8") for s in latency.SIGNATURES
             for k in ("1t_xnnpack", "1t_builtin")}
  path = report.plot_latency(samples, str(tmp_path / "latency.png"), title="test")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# --- inputs and the command -------------------------------------------------------------------------

def test_find_tflite_files_by_sidecar_quantization(tmp_path):
  for name, quantization in (("m_a.tflite", "float32"), ("m_b.tflite", "int8")):
    (tmp_path / name).write_bytes(b"x")
    (tmp_path / name.replace(".tflite", ".json")).write_text(json.dumps({"quantization": quantization}))
  found = bench_run.find_tflite_files(str(tmp_path), ["int8", "float32"])
  assert os.path.basename(found["int8"][0]) == "m_b.tflite"
  with pytest.raises(UserError, match="dynamic"):
    bench_run.find_tflite_files(str(tmp_path), ["dynamic"])


def test_bad_flags_are_user_errors(monkeypatch, tmp_path):
  import tf_drnn.models
  monkeypatch.setattr(tf_drnn.models, "BUNDLED_MODEL", str(tmp_path / "absent.keras"))
  with pytest.raises(UserError, match="--model=PATH"):
    bench_run.resolve_model(None)
  with pytest.raises(UserError, match="no such model"):
    bench_run.resolve_model(str(tmp_path / "nope.keras"))
  with pytest.raises(UserError):
    bench_run.parse_variants(["float64"])
  with pytest.raises(UserError):
    bench_run.parse_threads(["0"])
  assert bench_run.parse_threads(["2", "1", "2"]) == [1, 2]


def test_command_prints_one_error_line_for_a_missing_model(tmp_path):
  completed = subprocess.run(
      [sys.executable, "-m", "benchmarks.run", f"--output_dir={tmp_path / 'out'}",
       f"--model={tmp_path / 'missing.keras'}"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert completed.returncode == 2
  lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
  assert lines[-1].startswith("error: ") and "missing.keras" in lines[-1]
  assert "Traceback" not in completed.stderr


def test_arm64_report_renders_every_part():
  """benchmarks/arm64_report.py: the setup, the parity table and its verdicts, the timings and the estimate."""
  from benchmarks import arm64_report
  environment = {"cpu": "Test CPU", "python": "3.11", "numpy": "2.0", "ai_edge_litert": "2.3", "time": "now",
                 "arm_features": ["neon"]}

  def bench(scale):
    return {"environment": environment, "estimate_source": "a paper",
            "core_rates": {"Cortex-A55": {"ghz": 1.8, "macs_per_cycle": {"int8": 16, "float32": 4}}},
            "models": [{"file": f"m_{q}.tflite", "quantization": q, "macs_per_frame": 5.6e6,
                        "separate_frame": {"p50_ms": scale}, "separate_pcm": {"p50_ms": 2 * scale},
                        "estimate": {"Cortex-A55": {"ms_per_frame": 3.0}}} for q in ("float32", "int8")]}
  runs = {"x86_64": {"bench": bench(1.0), "separate_seconds": {"m_float32": 1.5}},
          "cortex-a53": {"bench": bench(5.0), "separate_seconds": {"m_float32": 9.5}}}
  stems = {"vocals": {"max_abs": 3e-6, "rel_rms": 2e-6}, "accompaniment": {"max_abs": 1e-6, "rel_rms": 1e-7}}
  parities = {"m_float32": {"cortex-a53": stems}, "m_int8": {"cortex-a53": stems, "host_int8_vs_float32": stems}}
  text = arm64_report.render(arm64_report.summarize(runs, parities, ["numpy 2"], "bookworm"))
  for line in ("- Emulated CPUs: `-cpu cortex-a53` (features: neon).",
               "| m_float32 | 3.00e-06 | 2.00e-06 |",
               "- float32: largest difference 3.00e-06 (within the 1e-05 tolerance).",
               "| m_int8.tflite | 5.60 M | 1.000 | 2.000 | 5.000 | 10.000 | 3.000 | — |",
               "| m_int8 | — | — |"):
    assert line in text.splitlines(), line
  assert "own quantization error on the host (RMS of int8 stems minus float32 stems over the stem's RMS): " \
         "m_int8: 2.00e-06." in text
  assert text.index("## Parity") < text.index("## Timings") < text.index("## The phone estimate")


def test_results_record_paths_relative_to_the_results_or_the_repository(tmp_path):
  from benchmarks.run import _REPO, recorded_path
  out = str(tmp_path / "out")
  assert recorded_path(str(tmp_path / "out" / "bundled" / "drnn2_int8.tflite"), out) == os.path.join("bundled",
                                                                                             "drnn2_int8.tflite")
  assert recorded_path(os.path.join(_REPO, "tf_drnn", "pretrained", "drnn2.keras"), out) == os.path.join(
      "tf_drnn", "pretrained", "drnn2.keras")
  assert recorded_path(os.path.join(os.pardir, "shared", "MIR-1K"), out) == os.path.join(os.pardir, "shared", "MIR-1K")
  assert recorded_path("/elsewhere/model.keras", out) == "/elsewhere/model.keras"


def test_oracle_stft_settings_are_read_as_audio_configs():
  from benchmarks.oracle_stft import parse_stft
  from tf_drnn.config import AudioConfig
  assert parse_stft("1024/64/asymmetric_sine") == AudioConfig(n_fft=1024, hop_length=64, window="asymmetric_sine")
  for text, problem in (("1024/64", "expected N_FFT/HOP/WINDOW"), ("1024/300/sine", "hop = n_fft / 2"),
                        ("1024/128/hann", "unsupported window")):
    with pytest.raises(UserError, match=f"^--stfts={text}: .*{re.escape(problem)}"):
      parse_stft(text)


# --- the band above the model's ---------------------------------------------------------------------

def test_high_band_is_what_the_model_rate_cannot_carry():
  from benchmarks.high_band import high_band_of
  rate = 44100
  t = np.arange(rate) / rate
  low, high = 0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 12000 * t)
  middle = slice(2000, -2000)  # away from the resampler's edges
  assert np.sum(high_band_of(low, rate)[middle] ** 2) < 1e-6 * np.sum(low[middle] ** 2)
  np.testing.assert_allclose(high_band_of(low + high, rate)[middle], high[middle], atol=2e-3)


def test_produced_rows_score_each_rule_and_the_true_high_band(tmp_path):
  import soundfile
  from benchmarks.high_band import high_band_of, produced_rows
  from tf_drnn.data import load_dataset
  from tf_drnn.data.multitrack import MUSDB_VALIDATION
  rate = 44100
  t = np.arange(rate // 2) / rate
  vocals = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 12000 * t)  # a voice with "air"
  accompaniment = 0.3 * np.sin(2 * np.pi * 196 * t) + 0.1 * np.sin(2 * np.pi * 10000 * t)  # and a hi-hat
  song = tmp_path / "train" / MUSDB_VALIDATION[0]
  song.mkdir(parents=True)
  soundfile.write(song / "vocals.wav", vocals, rate, subtype="FLOAT")
  soundfile.write(song / "accompaniment.wav", accompaniment, rate, subtype="FLOAT")
  songs = load_dataset("stems", str(tmp_path)).tracks("dev")
  low_vocals = vocals - high_band_of(vocals, rate)

  class BandOnly:  # a perfect model of the 16 kHz band, nothing above it (the "accompaniment" rule)
    def separate_pair(self, mixture, rate):
      return low_vocals[:, None], None

  class AllAbove:  # the same, and everything above the band to the vocals
    def separate_pair(self, mixture, rate):
      return (low_vocals + high_band_of(mixture[:, 0], rate))[:, None], None
  rows = produced_rows({"accompaniment": BandOnly(), "everything": AllAbove()}, songs)
  assert list(rows) == ["accompaniment", "everything", "oracle"]
  name = MUSDB_VALIDATION[0]
  assert all(list(scores) == [name] for scores in rows.values())
  assert rows["oracle"][name] > 40  # the true vocals above the band, added to a perfect band: perfect
  # BSS Eval's 512-tap distortion filter forgives a band missing from the vocals, not the hi-hat in them.
  assert rows["accompaniment"][name] > 40
  vocal_power, hihat_power = (0.3 ** 2 + 0.05 ** 2) / 2, 0.1 ** 2 / 2
  assert rows["everything"][name] == pytest.approx(10 * np.log10(vocal_power / hihat_power), abs=0.3)
