"""`tf-drnn-evaluate` and the scoring loop: structure of the outputs, clip selection, gain, workers."""
import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import background_job, run_command, write_fake_mir1k
from tf_drnn import evaluate, metrics, scoring
from tf_drnn.data.base import Track, unit_energy_mix
from tf_drnn.errors import UserError

RATE = 16000
# Train (abjones, amy), dev (abjones_5_08) and test (Ani, annar) clips, of different lengths.
FAKE_CLIPS = {"abjones_1_01": 0.5, "amy_1_01": 0.6, "abjones_5_08": 0.7,
              "Ani_1_01": 0.8, "Ani_1_02": 0.55, "annar_1_01": 0.65}
TEST_CLIPS = ["Ani_1_01", "Ani_1_02", "annar_1_01"]  # MIR1K sorts names case-sensitively.


def sources(seconds, seed):
  """(vocals, accompaniment): a harmonic voice over a noisy low drone, float32 [samples]."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * RATE)) / RATE
  f0 = 300 + 40 * np.sin(2 * np.pi * 3 * t) + 50 * seed
  phase = 2 * np.pi * np.cumsum(f0) / RATE
  vocals = 0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))
  accompaniment = 0.3 * np.sin(2 * np.pi * 98 * t) + 0.05 * rng.standard_normal(len(t))
  return vocals.astype(np.float32), accompaniment.astype(np.float32)


@pytest.fixture
def fake_mir1k(tmp_path):
  """A MIR-1K-like folder: Wavfile/<clip>.wav (left = accompaniment, right = voice) and
  authors_demo_results/ for Ani_1_01 (test) and abjones_5_08 (dev): the true sources, cut to whole
  512-sample hops and each file scaled on its own, like the authors' files."""
  root = tmp_path / "MIR-1K"
  (root / "Wavfile").mkdir(parents=True)
  (root / "authors_demo_results").mkdir()
  for seed, (name, seconds) in enumerate(FAKE_CLIPS.items()):
    vocals, accompaniment = sources(seconds, seed)
    soundfile.write(root / "Wavfile" / f"{name}.wav", np.stack([accompaniment, vocals], 1), RATE,
                    subtype="FLOAT")
    if name in ("Ani_1_01", "abjones_5_08"):
      _, v, a = unit_energy_mix(vocals, accompaniment)
      cut = len(v) // 512 * 512
      for part, signal in (("signal", v), ("noise", a)):
        signal = 0.9 * signal[:cut] / np.abs(signal[:cut]).max()
        soundfile.write(root / "authors_demo_results" / f"{name}_iter400_softmask_{part}.wav", signal, RATE)
  return root


def run_cli(*args):
  return run_command("tf_drnn.evaluate", "--noprogress", *args)


def check_outputs(output, method, clips, data_dir):
  """The JSON and Markdown files of a run have the documented structure and consistent numbers."""
  document = json.loads(output.read_text())
  assert document["method"] == method
  assert document["data_dir"] == os.path.abspath(data_dir)
  assert [row["name"] for row in document["clips"]] == clips
  assert document["num_clips"] == len(clips)
  lengths = {name: len(sources(FAKE_CLIPS[name], list(FAKE_CLIPS).index(name))[0]) for name in clips}
  assert [row["num_samples"] for row in document["clips"]] == [lengths[n] for n in clips]
  assert document["total_seconds"] == pytest.approx(sum(lengths.values()) / RATE)
  for row in document["clips"]:
    for source in metrics.SOURCES:
      assert set(row[source]) == {"SDR", "SIR", "SAR", "NSDR", "mixture_SDR"}
      assert row[source]["NSDR"] == pytest.approx(row[source]["SDR"] - row[source]["mixture_SDR"])
  weights = np.array([row["num_samples"] for row in document["clips"]], float)
  for source in metrics.SOURCES:
    assert set(document["global"][source]) == {"GNSDR", "GSIR", "GSAR", "GSDR"}
    nsdr = [row[source]["NSDR"] for row in document["clips"]]
    assert document["global"][source]["GNSDR"] == pytest.approx(np.dot(weights, nsdr) / weights.sum())
  markdown = output.with_suffix(".md").read_text()
  assert "| source | GNSDR | GSIR | GSAR | GSDR |" in markdown
  vocals_row = next(line for line in markdown.splitlines() if line.startswith("| vocals |"))
  assert f"{document['global']['vocals']['GNSDR']:.2f}" in vocals_row
  assert f"{len(clips)} clips, {document['total_seconds']:.1f} s" in markdown
  for name in clips:
    assert f"| {name} |" in markdown
  return document


def evaluate_mir1k(data_dir, **options):
  """What tf-drnn-evaluate does on the MIR-1K folder `data_dir` with these EvaluateOptions."""
  return evaluate.evaluate_command(evaluate.EvaluateOptions(data_dir, **options))

# --- the command -------------------------------------------------------------------------------

def test_cli_oracle_irm_writes_json_and_markdown(fake_mir1k, tmp_path):
  output = tmp_path / "out" / "results.json"
  result = run_cli(f"--data_dir={fake_mir1k}", "--method=oracle_irm", f"--output={output}", "--workers=1")
  assert result.returncode == 0, result.stderr
  document = check_outputs(output, "oracle_irm", TEST_CLIPS, fake_mir1k)
  assert document["split"] == "test" and document["model"] is None
  assert document["global"]["vocals"]["GNSDR"] > 8  # An oracle on a voice over a drone.
  assert json.loads(result.stdout.strip().splitlines()[-1])["num_clips"] == 3
  assert not [p for p in os.listdir(output.parent) if p.startswith(".tmp")]  # Atomic writes leave nothing.


def test_cli_scores_a_tiny_model(fake_mir1k, tmp_path):
  from tf_drnn.model import build_model
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  build_model(hidden_units=8).save(model_dir / "model.keras")
  model = model_dir  # a training model_dir (a .keras file resolves like it: tests/test_separate.py)
  output = tmp_path / "model.json"
  result = run_cli(f"--data_dir={fake_mir1k}", f"--model={model}", "--split=dev", f"--output={output}",
                   "--workers=1")
  assert result.returncode == 0, result.stderr
  document = check_outputs(output, "model", ["abjones_5_08"], fake_mir1k)
  assert document["model"] == os.path.abspath(model)
  assert document["split"] == "dev"
  assert all(np.isfinite(v) for source in metrics.SOURCES for v in document["global"][source].values())


@pytest.mark.parametrize("case,args,message", [
    ("missing data dir", ["--data_dir={tmp}/nowhere", "--method=mixture"], "does not exist"),
    ("no data dir flag", ["--method=mixture"], "--data_dir is required"),
    ("empty data dir", ["--data_dir={tmp}", "--method=mixture"], "no MIR-1K clips"),
    ("bad model path", ["--data_dir={data}", "--model={tmp}/missing.keras"], "no such model file"),
    ("model dir without model", ["--data_dir={data}", "--model={tmp}"], "no such model file"),
    ("corrupt model", ["--data_dir={data}", "--model={tmp}/bad.keras"], "cannot load model"),
    ("model with a baseline", ["--data_dir={data}", "--method=rpca", "--model={tmp}/x.keras"], "--model applies"),
    ("unknown clip", ["--data_dir={data}", "--method=mixture", "--clips=Ani_9_99"], "unknown clip"),
    ("no authors' files", ["--data_dir={tmp}/copy", "--method=authors"], "authors' results directory"),
    ("rpca hop not dividing", ["--data_dir={data}", "--method=rpca", "--rpca_hop=300"], "must divide"),
    ("rpca hop elsewhere", ["--data_dir={data}", "--method=mixture", "--rpca_hop=256"], "--rpca_hop applies"),
    ("authors at -40 dB", ["--data_dir={data}", "--method=authors", "--gain_db=-40"], "--gain_db does not apply"),
])
def test_cli_bad_input_is_one_error_line_and_exit_2(fake_mir1k, tmp_path, case, args, message):
  (tmp_path / "bad.keras").write_bytes(b"not a zip file")
  copy = tmp_path / "copy" / "Wavfile"
  copy.mkdir(parents=True)
  (copy / "Ani_1_01.wav").write_bytes((fake_mir1k / "Wavfile" / "Ani_1_01.wav").read_bytes())
  empty = tmp_path / "empty"
  empty.mkdir()
  args = [a.format(tmp=empty if case == "empty data dir" else tmp_path, data=fake_mir1k) for a in args]
  result = run_cli(*args, f"--output={tmp_path}/out.json")
  assert result.returncode == 2, (result.stdout, result.stderr)
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
  assert not (tmp_path / "out.json").exists()


@background_job("baseline_without_tensorflow")
def _baseline_without_tensorflow_job(work):
  data = write_fake_mir1k(os.path.join(work, "MIR-1K"))
  code = ("import sys; from tf_drnn import evaluate; "
          f"evaluate.evaluate_command(evaluate.EvaluateOptions({data!r}, method='rpca', "
          f"output={os.path.join(work, 'r.json')!r}, workers=1, progress=False)); "
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; print('ok')")
  return ["-c", code], {"OPENBLAS_NUM_THREADS": "1"}


@pytest.mark.background("baseline_without_tensorflow")
def test_baseline_methods_do_not_import_tensorflow(background):
  assert background.returncode == 0 and background.stdout.strip() == "ok", background.stderr
  assert json.load(open(os.path.join(background.work, "r.json")))["method"] == "rpca"


def test_cli_help_lists_the_flags_without_tensorflow():
  code = ("import sys; from tf_drnn import evaluate\n"
          "sys.argv = ['tf-drnn-evaluate', '--help']\n"
          "try:\n  evaluate.run()\nexcept SystemExit:\n  pass\n"
          "print('TF' if 'tensorflow' in sys.modules else 'noTF')")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  for flag in ("--model", "--data_dir", "--split", "--method", "--gain_db", "--max_clips", "--workers",
               "--output"):
    assert flag in result.stdout
  assert result.stdout.strip().splitlines()[-1] == "noTF"


# --- clip selection ----------------------------------------------------------------------------

def test_authors_method_scores_their_clips_padded_to_length(fake_mir1k, tmp_path):
  document = evaluate_mir1k(fake_mir1k, method="authors", output=str(tmp_path / "a.json"),
                            workers=1, progress=False)
  assert [row["name"] for row in document["clips"]] == ["Ani_1_01", "abjones_5_08"]  # Both splits.
  assert document["split"] is None
  for row in document["clips"]:
    # The true sources, rescaled and cut short by < 1 hop (up to 7% of these short clips): only
    # the missing tail is error.
    assert row["vocals"]["SDR"] > 10 and row["accompaniment"]["SDR"] > 10
  only_test = evaluate_mir1k(fake_mir1k, method="authors", split="test", output=str(tmp_path / "b.json"),
                             workers=1, progress=False)
  assert [row["name"] for row in only_test["clips"]] == ["Ani_1_01"]
  mixture = evaluate_mir1k(fake_mir1k, method="mixture", clips=["authors"],
                           output=str(tmp_path / "c.json"), workers=1, progress=False)
  assert [row["name"] for row in mixture["clips"]] == ["Ani_1_01", "abjones_5_08"]
  for ours, theirs in zip(mixture["clips"], document["clips"]):  # Same references, same mixture SDR.
    assert ours["vocals"]["mixture_SDR"] == pytest.approx(theirs["vocals"]["mixture_SDR"])
  with pytest.raises(UserError, match="no clips selected"):
    evaluate_mir1k(fake_mir1k, method="authors", clips=["annar_1_01"], output=str(tmp_path / "d.json"))


def test_select_tracks_by_split_name_and_max_clips(fake_mir1k):
  from tf_drnn.data.mir1k import MIR1K
  dataset = MIR1K(fake_mir1k)
  names = lambda tracks: [t.name for t in tracks]
  assert names(evaluate.select_tracks(dataset, "test")) == TEST_CLIPS
  assert names(evaluate.select_tracks(dataset, "dev")) == ["abjones_5_08"]
  assert names(evaluate.select_tracks(dataset, "train")) == ["abjones_1_01", "amy_1_01"]
  assert names(evaluate.select_tracks(dataset, "test", max_clips=2)) == ["Ani_1_01", "annar_1_01"]  # Both ends.
  assert names(evaluate.select_tracks(dataset, "test", max_clips=9)) == TEST_CLIPS
  assert names(evaluate.select_tracks(dataset, "test", clips=["amy_1_01", "Ani_1_02"])) == ["amy_1_01", "Ani_1_02"]
  vocals, accompaniment = evaluate.select_tracks(dataset, "test")[0].sources()
  expected = sources(FAKE_CLIPS["Ani_1_01"], list(FAKE_CLIPS).index("Ani_1_01"))
  np.testing.assert_allclose(vocals, expected[0], atol=1e-6)  # Right channel = voice.
  np.testing.assert_allclose(accompaniment, expected[1], atol=1e-6)


# --- the scoring loop --------------------------------------------------------------------------

def synthetic_tracks(lengths=(0.5, 0.9)):
  return [Track(f"clip{i}", lambda i=i, s=s: sources(s, i)) for i, s in enumerate(lengths)]


def test_evaluate_tracks_keeps_the_training_contract():
  scores, result = scoring.evaluate_tracks(lambda mixture: (0.5 * mixture, 2 * mixture), synthetic_tracks())
  assert [s.name for s in scores] == ["clip0", "clip1"]
  assert [s.num_samples for s in scores] == [8000, 14400]
  assert result["vocals"]["GNSDR"] == pytest.approx(0, abs=1e-3)  # A rescaled mixture: NSDR 0.
  assert result["accompaniment"]["GNSDR"] == pytest.approx(0, abs=1e-3)
  # GSIR is the length-weighted mean: (8000 SIR_0 + 14400 SIR_1) / 22400.
  expected = (8000 * scores[0].sir[0] + 14400 * scores[1].sir[0]) / 22400
  assert result["vocals"]["GSIR"] == pytest.approx(expected)


@pytest.mark.parametrize("gain_db", [-40.0, 20.0])
def test_gain_reaches_the_separator_and_is_divided_back(gain_db):
  gain = 10 ** (gain_db / 20)
  levels = []

  def quiet_sensitive(mixture):
    levels.append(np.sqrt(np.mean(mixture ** 2)))
    return 0.7 * mixture, 0.3 * mixture + 0.05  # The offset is small against 0 dB only.

  tracks = synthetic_tracks()
  plain_scores, _ = scoring.evaluate_tracks(quiet_sensitive, tracks)
  plain_levels, levels[:] = list(levels), []
  scores, _ = scoring.evaluate_tracks(quiet_sensitive, tracks, gain=gain)
  np.testing.assert_allclose(levels, np.array(plain_levels) * gain, rtol=1e-5)
  assert scores[0].sdr[0] == pytest.approx(plain_scores[0].sdr[0], abs=1e-3)  # Scale-invariant part.
  # The fixed offset, divided by the gain, weighs 1/gain as much: a changed score proves the division.
  assert abs(scores[0].sdr[1] - plain_scores[0].sdr[1]) > 1e-3


def test_worker_processes_give_the_same_scores():
  estimator, _ = evaluate.make_estimator("oracle_ibm")  # NumPy-only: it separates in the workers too
  tracks = synthetic_tracks((0.4, 0.6, 0.5))
  serial, serial_result = evaluate.score_estimates(estimator, tracks, workers=1)
  parallel, parallel_result = evaluate.score_estimates(estimator, tracks, workers=2, separate_in_workers=True)
  assert [s.name for s in parallel] == ["clip0", "clip1", "clip2"]
  for a, b in zip(parallel, serial):
    np.testing.assert_allclose(a.sdr + a.sir + a.sar + a.mixture_sdr, b.sdr + b.sir + b.sar + b.mixture_sdr,
                               rtol=1e-6)
  for source in metrics.SOURCES:
    assert parallel_result[source] == pytest.approx(serial_result[source])


def test_the_oracle_masks_under_the_stft_it_is_given():
  from benchmarks.oracle_stft import ideal_mask_scores
  from tf_drnn.baselines import oracle_separator
  from tf_drnn.config import DEFAULT_AUDIO_CONFIG, AudioConfig
  live = AudioConfig(hop_length=128, window="asymmetric_sine")
  vocals, accompaniment = sources(0.5, 3)
  mixture = vocals + accompaniment
  ours = scoring.OracleEstimator("irm", live)("clip", mixture, vocals, accompaniment)
  np.testing.assert_array_equal(ours[0], oracle_separator(mixture, vocals, accompaniment, "irm", live)[0])
  default = scoring.OracleEstimator("irm")("clip", mixture, vocals, accompaniment)
  assert np.max(np.abs(ours[0] - default[0])) > 1e-3
  tracks = synthetic_tracks()  # the benchmark of each STFT's ceiling scores as evaluate's oracle does
  _, evaluated = scoring.score_estimates(evaluate.make_estimator("oracle_irm")[0], tracks)
  row = ideal_mask_scores(DEFAULT_AUDIO_CONFIG, tracks, tracks)
  assert row["mir1k_test_vocal_GNSDR"] == pytest.approx(evaluated["vocals"]["GNSDR"])
  as_mixed, _ = scoring.score_estimates(scoring.OracleEstimator("irm"), tracks, voice_db=None)
  assert row["produced_dev_mean_vocal_SDR"] == pytest.approx(np.mean([s.sdr[0] for s in as_mixed]))


def test_oracle_scores_far_above_the_mixture_through_the_loop():
  tracks = synthetic_tracks()
  _, floor = evaluate.score_estimates(evaluate.make_estimator("mixture")[0], tracks)
  _, oracle = evaluate.score_estimates(evaluate.make_estimator("oracle_irm")[0], tracks)
  assert floor["vocals"]["GNSDR"] == 0.0
  assert oracle["vocals"]["GNSDR"] > 10 and oracle["accompaniment"]["GNSDR"] > 10


def test_no_tracks_is_a_user_error():
  with pytest.raises(UserError):
    evaluate.score_estimates(evaluate.make_estimator("mixture")[0], [])


# --- clips that cannot be scored, and the output path (issue 15) ---------------------------------

def test_unscorable_clips_are_skipped_with_a_note_not_a_crash():
  """A silent voice, a silent accompaniment and a 1-sample clip among good ones: the good ones are
  scored as if alone, the others come back skipped with the reason (training's dev scoring too)."""
  good = synthetic_tracks((0.5, 0.9))
  silent_voice = Track("silent_voice", lambda: (np.zeros(8000, np.float32), sources(0.5, 3)[1]))
  silent_accompaniment = Track("silent_accompaniment", lambda: (sources(0.5, 4)[0], np.zeros(8000, np.float32)))
  one_sample = Track("one_sample", lambda: (np.ones(1, np.float32), np.ones(1, np.float32)))
  separate = lambda mixture: (0.6 * mixture, 0.4 * mixture)
  scores, result = scoring.evaluate_tracks(
      separate, [good[0], silent_voice, one_sample, silent_accompaniment, good[1]])
  assert [s.name for s in scores] == ["clip0", "silent_voice", "one_sample", "silent_accompaniment", "clip1"]
  assert [s.skipped for s in scores[1:4]] == [
      "silent vocals reference (all samples zero): BSS Eval cannot score it",
      "too short to score (1 samples; BSS Eval v3 needs at least 512)",
      "silent accompaniment reference (all samples zero): BSS Eval cannot score it"]
  _, alone = scoring.evaluate_tracks(separate, good)
  for source in metrics.SOURCES:
    assert result[source] == pytest.approx(alone[source])


def test_a_silent_estimate_is_skipped_and_no_scored_clip_gives_nan():
  scores, result = scoring.evaluate_tracks(lambda mixture: (0 * mixture, mixture), synthetic_tracks())
  assert [s.skipped for s in scores] == ["silent vocals estimate (all samples zero): BSS Eval cannot score it"] * 2
  assert np.isnan(result["vocals"]["GNSDR"])


def test_a_singular_projection_falls_back_to_least_squares():
  """A singular system (here one sample) is solved by least squares, as mir_eval does, not an error."""
  sdr, sir, sar = metrics.bss_eval(np.ones((2, 1)), np.ones((2, 1)))
  assert sdr.shape == sir.shape == sar.shape == (2,)


def test_evaluate_notes_skipped_clips_in_json_and_markdown(fake_mir1k, tmp_path):
  vocals, accompaniment = sources(0.6, 9)
  soundfile.write(fake_mir1k / "Wavfile" / "annar_1_02.wav", np.stack([accompaniment, 0 * vocals], 1), RATE,
                  subtype="FLOAT")
  output = tmp_path / "r.json"
  document = evaluate_mir1k(fake_mir1k, method="oracle_irm", output=str(output), workers=1,
                            progress=False)
  on_disk = json.loads(output.read_text())
  assert on_disk == json.loads(json.dumps(document))
  assert [row["name"] for row in on_disk["clips"]] == TEST_CLIPS
  reason = "silent vocals reference (all samples zero): BSS Eval cannot score it"
  assert on_disk["skipped_clips"] == [{"name": "annar_1_02", "num_samples": len(vocals), "skipped": reason}]
  markdown = output.with_suffix(".md").read_text()
  assert "1 clip(s) skipped, not in the scores: annar_1_02: silent vocals reference" in markdown
  assert on_disk["global"]["vocals"]["GNSDR"] > 8


@pytest.mark.parametrize("where", ["under_a_file", "a_directory"])
def test_bad_output_path_fails_before_the_evaluation(fake_mir1k, tmp_path, monkeypatch, where):
  """Issue 15, case 16: --output=file/x.json failed only after the whole evaluation."""
  (tmp_path / "file").write_bytes(b"x")
  (tmp_path / "dir.json").mkdir()
  output = tmp_path / "file" / "x.json" if where == "under_a_file" else tmp_path / "dir.json"
  monkeypatch.setattr(evaluate, "score_estimates", lambda *a, **k: pytest.fail("evaluated before the check"))
  with pytest.raises(UserError, match="is a file, not a directory" if where == "under_a_file" else "is a directory"):
    evaluate_mir1k(fake_mir1k, method="mixture", output=str(output), workers=1, progress=False)
  assert (tmp_path / "file").read_bytes() == b"x" and not os.listdir(tmp_path / "dir.json")


# --- the voice-to-accompaniment ratio (--voice_db) --------------------------------------------------

@pytest.mark.parametrize("voice_db", [-5.0, 5.0])
def test_mixtures_put_the_voice_at_the_ratio(voice_db):
  for name, mixture, vocals, accompaniment in scoring.mixtures(synthetic_tracks(), voice_db):
    ratio = 10 * np.log10(np.sum(vocals.astype(np.float64) ** 2) / np.sum(accompaniment.astype(np.float64) ** 2))
    assert ratio == pytest.approx(voice_db, abs=1e-4), name
    np.testing.assert_array_equal(mixture, vocals + accompaniment)


def noise_tracks(lengths=(1.5, 2.0)):
  """Broadband noise voice and accompaniment: little of one lies in the other's 512-tap filter span."""
  def load(i, seconds):
    rng = np.random.default_rng(100 + i)
    return tuple(rng.standard_normal((2, int(seconds * RATE))).astype(np.float32) * [[0.2], [1.5]])
  return [Track(f"noise{i}", functools.partial(load, i, s)) for i, s in enumerate(lengths)]


def test_mixture_and_oracle_scores_move_with_the_voice_level():
  tracks = noise_tracks()
  mixture_estimator, oracle_estimator = (evaluate.make_estimator(m)[0] for m in ("mixture", "oracle_irm"))
  floor, oracle = {}, {}
  for voice_db in (-5.0, 5.0):
    scores, floor[voice_db] = evaluate.score_estimates(mixture_estimator, tracks, voice_db=voice_db)
    _, oracle[voice_db] = evaluate.score_estimates(oracle_estimator, tracks, voice_db=voice_db)
    for score in scores:  # The mixture's own SDR: about +D for the voice, -D for the accompaniment.
      assert score.mixture_sdr[0] == pytest.approx(voice_db, abs=0.5)
      assert score.mixture_sdr[1] == pytest.approx(-voice_db, abs=0.5)
    # The mixture as the estimate: NSDR 0, GSDR the mixture's SDR.
    assert floor[voice_db]["vocals"]["GNSDR"] == pytest.approx(0.0, abs=1e-6)
    assert floor[voice_db]["vocals"]["GSDR"] == pytest.approx(voice_db, abs=0.5)
    assert floor[voice_db]["accompaniment"]["GSDR"] == pytest.approx(-voice_db, abs=0.5)
  # A louder voice is easier to extract (higher GSDR) but gains less over its mixture (lower GNSDR).
  assert oracle[5.0]["vocals"]["GSDR"] > oracle[-5.0]["vocals"]["GSDR"]
  assert oracle[5.0]["vocals"]["GNSDR"] < oracle[-5.0]["vocals"]["GNSDR"]
  assert oracle[5.0]["accompaniment"]["GSDR"] < oracle[-5.0]["accompaniment"]["GSDR"]
  for voice_db in (-5.0, 5.0):  # GNSDR = GSDR - the mixture's SDR, for each level.
    assert oracle[voice_db]["vocals"]["GNSDR"] == pytest.approx(oracle[voice_db]["vocals"]["GSDR"] - voice_db,
                                                                abs=0.5)


def test_voice_db_is_reported_and_combines_with_gain_db(fake_mir1k, tmp_path):
  output = str(tmp_path / "minus5.json")
  document = evaluate_mir1k(fake_mir1k, method="mixture", voice_db=-5.0, gain_db=-20.0, workers=1,
                            output=output, progress=False)
  assert document["voice_db"] == -5.0 and document["gain_db"] == -20.0
  assert document["mixing"].startswith("-5 dB:")
  assert json.load(open(output))["voice_db"] == -5.0
  table = open(evaluate.markdown_path(output)).read()
  assert "voice -5 dB over the accompaniment" in table and "| GSDR |" in table
  vocals = document["global"]["vocals"]
  assert f"| vocals | {vocals['GNSDR']:.2f} | {vocals['GSIR']:.2f} | {vocals['GSAR']:.2f} | {vocals['GSDR']:.2f} |" \
      in table
  plain = evaluate_mir1k(fake_mir1k, method="mixture", workers=1, output=str(tmp_path / "plain.json"),
                         progress=False)
  assert plain["voice_db"] == 0.0 and plain["mixing"].startswith("0 dB:")
  # The mixture's own SDR follows the ratio: about 5 dB lower for the voice, higher for the accompaniment.
  assert document["global"]["vocals"]["GSDR"] == pytest.approx(plain["global"]["vocals"]["GSDR"] - 5, abs=1.5)
  assert document["global"]["accompaniment"]["GSDR"] == pytest.approx(
      plain["global"]["accompaniment"]["GSDR"] + 5, abs=1.5)


@pytest.mark.parametrize("kwargs,message", [
    (dict(method="mixture", voice_db=float("nan")), "--voice_db must be a finite number of dB, got nan"),
    (dict(method="authors", voice_db=-5.0), "--voice_db does not apply to --method=authors"),
])
def test_bad_voice_db_is_a_user_error(fake_mir1k, tmp_path, kwargs, message):
  with pytest.raises(UserError) as raised:
    evaluate_mir1k(fake_mir1k, output=str(tmp_path / "r.json"), progress=False, **kwargs)
  assert str(raised.value).startswith(message)
  assert not os.path.exists(tmp_path / "r.json")


# --- robustness issue: unscorable clips and the worker pool; flag values; output names ----------------

def test_unscorable_clips_are_skipped_here_and_never_pickled_for_the_pool():
  """--workers=2 died with "Can't pickle local object" once a clip could not be scored: the clip went
  to the pool with the (unpicklable) model estimator."""
  tracks = [synthetic_tracks((0.2,))[0], Track("silent_voice", lambda: (np.zeros(3200, np.float32),
                                                                         sources(0.2, 3)[1]))]
  separate = lambda mixture: (0.6 * mixture, 0.4 * mixture)  # A local lambda: it cannot be pickled.
  scores, _ = evaluate.score_estimates(evaluate.BlindEstimator(separate), tracks, workers=2)
  assert [s.name for s in scores] == ["clip0", "silent_voice"]
  assert scores[0].skipped is None and np.isfinite(scores[0].sdr[0])
  assert scores[1].skipped == "silent vocals reference (all samples zero): BSS Eval cannot score it"


@pytest.mark.parametrize("args,message", [
    (["--voice_db=100"], "--voice_db=100 is outside the supported -30 ... +30 dB"),
    (["--gain_db=100"], "--gain_db=100 is outside the supported -60 ... +30 dB"),
    (["--gain_db=-100"], "--gain_db=-100 is outside the supported -60 ... +30 dB"),
    (["--gain_db=nan"], "--gain_db must be a finite number of dB, got nan"),
    (["--voice_db=-inf"], "--voice_db must be a finite number of dB, got -inf"),
    (["--gain_db=20", "--voice_db=20"], "--gain_db=20 with --voice_db=20 puts the voice +40 dB over unit RMS"),
    (["--dataset=stems", "--voice_db=5"], "--voice_db applies to --dataset=mir1k only, not stems"),
])
def test_level_flags_are_checked_before_any_work(fake_mir1k, tmp_path, monkeypatch, args, message):
  """--voice_db=100 and --gain_db=100 or nan gave tracebacks; --voice_db was ignored for multitrack sets."""
  monkeypatch.setattr(evaluate, "score_estimates", lambda *a, **k: pytest.fail("evaluated before the check"))
  result = run_cli(f"--data_dir={fake_mir1k}", "--method=mixture", *args, f"--output={tmp_path}/r.json")
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
  assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("name", ["r" * 251 + ".json", "d" * 256 + "/r.json"], ids=["file", "folder"])
def test_an_output_name_too_long_fails_before_the_evaluation(fake_mir1k, tmp_path, monkeypatch, name):
  """Its "File name too long" came after the whole evaluation, and named the temporary file."""
  monkeypatch.setattr(evaluate, "score_estimates", lambda *a, **k: pytest.fail("evaluated before the check"))
  output = str(tmp_path / name)
  with pytest.raises(UserError) as raised:
    evaluate_mir1k(fake_mir1k, method="mixture", output=output, workers=1, progress=False)
  what = "file name" if name.startswith("r") else "folder name 'dddddddddddddddd'..."
  assert str(raised.value) == f"{output}: {what} too long (256 bytes; this file system allows 255)"
  assert os.listdir(tmp_path) == ["MIR-1K"]
