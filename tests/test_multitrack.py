"""Multitrack collections: MUSDB18-HQ and stems-folder readers, bad collections, BSS Eval v4,
training and evaluating end to end on tiny collections the tests write (44.1 kHz stereo)."""
import json
import os
import warnings

import numpy as np
import pytest
import soundfile

from conftest import run_command, sung_like_mixture
from tf_drnn.bss_eval import bss_eval_v4
from tf_drnn.config import DEFAULT_AUDIO_CONFIG
from tf_drnn.data import load_dataset
from tf_drnn.data.multitrack import MUSDB18HQ, MUSDB_VALIDATION, StemsFolders, read_native
from tf_drnn.errors import UserError

RATE = 44100
SECONDS = 1.5
MUSDB_TRAIN = [MUSDB_VALIDATION[0], "Artist A - Song One", "Artist B - Song Two"]
MUSDB_TEST = ["Artist C - Song Three", "Artist D - Song Four"]


def stereo_stems(seed, seconds=SECONDS, rate=RATE):
  """{stem: float32 [samples, 2]}: a voice panned left of centre and three accompaniment stems."""
  vocals, accompaniment = sung_like_mixture(seconds, rate, seed=seed)
  rng = np.random.default_rng(seed)
  t = np.arange(len(vocals)) / rate
  bass = 0.2 * np.sin(2 * np.pi * (55 + 5 * seed) * t).astype(np.float32)
  drums = (0.1 * rng.standard_normal(len(t)) * np.exp(-20 * (t % 0.5))).astype(np.float32)
  pan = lambda x, left, right: np.stack([left * x, right * x], axis=1)
  return {"vocals": pan(vocals, 1.0, 0.7), "drums": pan(drums, 0.8, 1.0), "bass": pan(bass, 1.0, 1.0),
          "other": pan(accompaniment, 0.6, 1.0)}


def write_song(folder, stems, rate=RATE, mixture=True, extension="wav"):
  os.makedirs(folder, exist_ok=True)
  for name, signal in stems.items():
    soundfile.write(os.path.join(folder, f"{name}.{extension}"), signal, rate, subtype="FLOAT")
  if mixture:
    soundfile.write(os.path.join(folder, f"mixture.{extension}"), sum(stems.values()), rate, subtype="FLOAT")


def write_musdb(root):
  for split, names in (("train", MUSDB_TRAIN), ("test", MUSDB_TEST)):
    for i, name in enumerate(names):
      write_song(os.path.join(root, split, name), stereo_stems(i + 10 * (split == "test")))
  return root


def write_stems_collection(root):
  """train/: two songs with differently named stems (a mono FLAC guitar among them, 48 kHz);
  test/: one song at 22.05 kHz without a mixture file."""
  for i, song in enumerate(("Song A", "Song B")):
    stems = stereo_stems(i, rate=48000)
    stems = {"vocals": stems["vocals"], "keys": stems["other"], "rhythm": stems["drums"] + stems["bass"]}
    write_song(os.path.join(root, "train", song), stems, rate=48000, mixture=False)
    soundfile.write(os.path.join(root, "train", song, "guitar.flac"), 0.05 * stems["keys"][:, 0], 48000)
  stems = stereo_stems(5, rate=22050)
  write_song(os.path.join(root, "test", "Song C"), {"vocals": stems["vocals"], "band": stems["other"]},
             rate=22050, mixture=False)
  return root


@pytest.fixture(scope="module")
def musdb_dir(tmp_path_factory):
  return write_musdb(str(tmp_path_factory.mktemp("musdb18hq")))


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory):
  return write_stems_collection(str(tmp_path_factory.mktemp("stems")))


# --- readers ------------------------------------------------------------------------------------

def test_musdb_splits_and_standard_validation_tracks(musdb_dir):
  dataset = load_dataset("musdb18hq", musdb_dir, None)
  assert isinstance(dataset, MUSDB18HQ)
  assert dataset.clip_names("train") == sorted(MUSDB_TRAIN[1:])
  assert dataset.clip_names("dev") == [MUSDB_VALIDATION[0]]  # the one of musdb's 14 present
  assert dataset.clip_names("test") == sorted(MUSDB_TEST)
  # --dev_clips names songs instead; the trainers' MIR-1K default list means "the layout's own".
  other = load_dataset("musdb18hq", musdb_dir, ["Artist A - Song One"])
  assert other.clip_names("dev") == ["Artist A - Song One"]
  assert load_dataset("musdb18hq", musdb_dir, ("abjones_5_08", "abjones_5_09", "amy_9_08", "amy_9_09")
                      ).clip_names("dev") == [MUSDB_VALIDATION[0]]
  with pytest.raises(UserError, match="--dev_clips: no song 'Nobody - Nothing' among the training songs"):
    load_dataset("musdb18hq", musdb_dir, ["Nobody - Nothing"]).tracks("train")


def test_musdb_training_sources_are_model_rate_mono_channel_mean(musdb_dir):
  track = load_dataset("musdb18hq", musdb_dir, None).tracks("test")[0]
  stems = stereo_stems(10)  # MUSDB_TEST[0] sorts first
  vocals, accompaniment = track.sources()
  rate = DEFAULT_AUDIO_CONFIG.sample_rate
  assert vocals.dtype == np.float32 and vocals.shape == accompaniment.shape == (int(SECONDS * rate),)
  from tf_drnn.audio import resample
  np.testing.assert_allclose(vocals, resample(stems["vocals"].mean(1), RATE, rate), atol=1e-5)
  expected = resample((stems["drums"] + stems["bass"] + stems["other"]).mean(1), RATE, rate)
  np.testing.assert_allclose(accompaniment, expected, atol=1e-5)
  mixture, native_vocals, native_accompaniment, native_rate = track.native()
  assert native_rate == RATE and mixture.shape == (int(SECONDS * RATE), 2)
  np.testing.assert_array_equal(native_vocals, stems["vocals"])
  np.testing.assert_allclose(mixture, native_vocals + native_accompaniment, atol=1e-6)


def test_stems_folder_any_names_rates_and_channels(stems_dir):
  dataset = load_dataset("stems", stems_dir, ["Song B"])
  assert isinstance(dataset, StemsFolders)
  assert (dataset.clip_names("train"), dataset.clip_names("dev"), dataset.clip_names("test")) == (
      ["Song A"], ["Song B"], ["Song C"])
  song_a = dataset.songs("train")[0]
  assert [os.path.basename(p) for p in song_a.accompaniment] == ["guitar.flac", "keys.wav", "rhythm.wav"]
  mixture, vocals, accompaniment, rate = read_native(song_a)
  stems = stereo_stems(0, rate=48000)
  guitar = soundfile.read(song_a.accompaniment[0], dtype="float32")[0]
  expected = stems["other"] + stems["drums"] + stems["bass"] + 0.05 * stems["other"][:, :1]
  assert rate == 48000 and mixture.shape == (int(SECONDS * 48000), 2)
  np.testing.assert_allclose(accompaniment, stems["other"] + stems["drums"] + stems["bass"] + guitar[:, None],
                             atol=1e-6)  # the mono guitar is spread over both channels
  np.testing.assert_allclose(accompaniment, expected, atol=1e-4)
  np.testing.assert_allclose(mixture, vocals + accompaniment, atol=1e-6)  # no mixture file: the sum
  vocals_16k, _ = dataset.tracks("test")[0].sources()
  assert len(vocals_16k) == int(SECONDS * DEFAULT_AUDIO_CONFIG.sample_rate)


def test_flat_stems_folder_is_train_and_test(tmp_path):
  write_song(str(tmp_path / "One"), {"vocals": stereo_stems(0)["vocals"], "band": stereo_stems(0)["other"]})
  dataset = StemsFolders(str(tmp_path))
  assert dataset.clip_names("train") == dataset.clip_names("test") == ["One"]
  with pytest.raises(UserError, match="no song folders found"):
    StemsFolders(str(tmp_path / "One")).tracks("train")


# --- bad collections: every case named on one line; the song skipped or the reader stopped -------

def _bad_song(folder, case):
  stems = stereo_stems(3)
  if case == "no vocals":
    del stems["vocals"]
  elif case == "different lengths":
    stems["bass"] = stems["bass"][:-100]
  elif case == "silent vocals":
    stems["vocals"] = np.zeros_like(stems["vocals"])
  elif case == "missing stem":
    del stems["drums"]
  elif case == "NaN sample":
    stems["drums"][1000, 0] = np.nan
  elif case == "absurd sample":
    stems["other"][5, 1] = 1e20
  write_song(folder, stems, mixture=False)
  if case == "different rates":
    soundfile.write(os.path.join(folder, "bass.wav"), stems["bass"][::2], RATE // 2)
  elif case == "unreadable":
    with open(os.path.join(folder, "other.wav"), "wb") as f:
      f.write(b"RIFF not really a wave file")
  elif case == "empty file":
    open(os.path.join(folder, "drums.wav"), "wb").close()


@pytest.mark.parametrize("case,problem", [
    ("no vocals", "no vocals stem (vocals.<ext>)"),
    ("missing stem", "missing accompaniment stem(s) drums.wav"),
    ("different lengths", "stems of different lengths (vocals.wav 66150 samples, drums.wav 66150 samples, "
                          "bass.wav 66050 samples, other.wav 66150 samples)"),
    ("different rates", "stems at different sample rates (vocals.wav 44100 Hz, drums.wav 44100 Hz, "
                        "bass.wav 22050 Hz, other.wav 44100 Hz)"),
    ("silent vocals", "silent vocal stem vocals.wav (peak below -80 dBFS)"),
    ("NaN sample", "drums.wav: contains NaN or infinite samples"),
    ("absurd sample", "other.wav: absurd amplitude: a sample of magnitude 1e+20"),
    ("unreadable", "other.wav: corrupt or unsupported audio"),
    ("empty file", "drums.wav: empty file (0 bytes)"),
])
def test_bad_song_is_skipped_with_one_line(tmp_path, capsys, case, problem):
  root = write_musdb(str(tmp_path / "musdb"))
  bad = os.path.join(root, "test", "Zed - Broken")
  _bad_song(bad, case)
  dataset = MUSDB18HQ(root)
  assert dataset.clip_names("test") == sorted(MUSDB_TEST)  # the others are all still there
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 2, lines
  assert lines[0].startswith(f"warning: {bad}") and problem in lines[0] and lines[0].endswith("; song skipped")
  assert lines[1] == f"warning: {os.path.join(root, 'test')}: skipped 1 of 3 songs (named above)"
  assert [folder for folder, _ in dataset.skipped] == [bad]


def test_stems_folder_without_accompaniment_or_with_silent_accompaniment(tmp_path, capsys):
  stems = stereo_stems(0)
  write_song(str(tmp_path / "train" / "Solo"), {"vocals": stems["vocals"]})
  write_song(str(tmp_path / "train" / "Quiet band"), {"vocals": stems["vocals"], "band": 1e-5 * stems["other"]})
  write_song(str(tmp_path / "train" / "Good"), {"vocals": stems["vocals"], "band": stems["other"]})
  assert StemsFolders(str(tmp_path)).clip_names("train") == ["Good"]
  err = capsys.readouterr().err
  assert "Solo: no accompaniment stems (audio files besides vocals and mixture); song skipped" in err
  assert "Quiet band: silent accompaniment (every stem's peak is below -80 dBFS); song skipped" in err
  assert "skipped 2 of 3 songs" in err


def test_unusable_collections_stop_with_an_error(tmp_path):
  with pytest.raises(UserError, match="data directory does not exist"):
    MUSDB18HQ(str(tmp_path / "missing"))
  (tmp_path / "flat").mkdir()
  with pytest.raises(UserError, match=r"not a MUSDB18-HQ folder \(no train/ or test/ folder\)"):
    MUSDB18HQ(str(tmp_path / "flat"))


# --- BSS Eval v4 -----------------------------------------------------------------------------------

def _v4_signals():
  """2 sources, 3.4 s at 8 kHz, stereo; the vocals silent for the first second (a NaN window)."""
  rng = np.random.default_rng(0)
  rate = 8000
  n = int(3.4 * rate)
  t = np.arange(n) / rate
  vocals = np.stack([np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t)),
                     0.5 * np.sin(2 * np.pi * 660 * t)], 1)
  vocals[:rate] = 0
  accompaniment = 0.3 * rng.standard_normal((n, 2))
  references = np.stack([vocals, accompaniment])
  estimates = np.stack([vocals + 0.3 * accompaniment + 0.05 * rng.standard_normal((n, 2)),
                        accompaniment + 0.2 * vocals + 0.02 * rng.standard_normal((n, 2))])
  return references, estimates, rate


# museval 0.4.1, museval.metrics.bss_eval(references, estimates, window=8000, hop=8000,
# framewise_filters=False, bsseval_sources_version=False) on _v4_signals(): rows SDR, ISR, SIR, SAR;
# [source][window].
MUSEVAL_REFERENCE = [
    [[np.nan, 15.57529, 13.575841], [np.nan, 7.60156, 9.549894]],
    [[np.nan, 27.742887, 45.976394], [np.nan, 27.644793, 28.133974]],
    [[np.nan, 16.952669, 14.698997], [np.nan, 7.81742, 9.869136]],
    [[np.nan, 22.321122, 20.170706], [np.nan, 24.657378, 24.118003]]]


def test_bss_eval_v4_matches_museval():
  references, estimates, rate = _v4_signals()
  scores = bss_eval_v4(references, estimates, rate, rate)
  for ours, theirs in zip(scores, MUSEVAL_REFERENCE):
    np.testing.assert_allclose(ours, np.array(theirs, float), atol=1e-4)  # NaN where museval has NaN
  assert np.isnan(scores[0][:, 0]).all() and np.isfinite(scores[0][:, 1:]).all()
  # SDR (images) is the plain signal-to-error ratio of each window.
  v, e = references[0, rate:2 * rate], estimates[0, rate:2 * rate]
  assert scores[0][0, 1] == pytest.approx(10 * np.log10(np.sum(v ** 2) / np.sum((e - v) ** 2)))


def test_bss_eval_v4_whole_signal_is_mir_eval_images():
  import mir_eval
  references, estimates, rate = _v4_signals()
  references[0, :rate] = 0.01  # mir_eval wants no silent sample sums; keep the vocals non-silent
  windowed, whole = bss_eval_v4(references, estimates, rate, whole=True)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # bss_eval_images: deprecated in mir_eval 0.8
    reference = mir_eval.separation.bss_eval_images(references, estimates, compute_permutation=False)
  for ours, theirs in zip(whole, reference[:4]):  # sdr, isr, sir, sar
    np.testing.assert_allclose(ours, np.ravel(theirs), atol=1e-5)
  assert windowed[0].shape == (2, 3)  # 3 whole seconds of 3.4: museval drops the tail
  np.testing.assert_allclose(bss_eval_v4(references, estimates, None)[2][:, 0], whole[2], atol=1e-9)


# --- training and evaluation end to end -------------------------------------------------------------

TINY = ["--hidden_units=8", "--num_layers=2", "--train_steps=2", "--eval_every=2", "--sequence_length=8",
        "--batch_size=2", "--warmup_steps=1", "--jit_compile=false"]


def _check_document(document, names, channels=2):
  """Per-song medians and G-metrics, consistent with each other."""
  from tf_drnn.evaluate_multitrack import METRICS, SOURCES
  assert [row["name"] for row in document["tracks"]] == names and document["num_tracks"] == len(names)
  for row in document["tracks"]:
    assert row["channels"] == channels
    for source in SOURCES:
      assert set(row[source]) == set(METRICS) | {"windows", "track"}
      assert row[source]["windows"] == int(row["seconds"])  # 1-s windows, the tail dropped
      track = row[source]["track"]
      assert track["NSDR"] == pytest.approx(track["SDR"] - track["mixture_SDR"])
  weights = np.array([row["seconds"] for row in document["tracks"]])
  for source in SOURCES:
    assert document["museval"][source]["SDR"] == pytest.approx(
        np.median([row[source]["SDR"] for row in document["tracks"]]))
    assert document["global"][source]["GNSDR"] == pytest.approx(
        np.dot(weights, [row[source]["track"]["NSDR"] for row in document["tracks"]]) / weights.sum())


def test_train_and_evaluate_musdb18hq_end_to_end(musdb_dir, tmp_path, caplog):
  """tf-drnn-train --dataset=musdb18hq: a tiny model (dev = the validation track), then evaluated
  at 44.1 kHz stereo with tf-drnn-evaluate --dataset=musdb18hq."""
  model_dir = str(tmp_path / "run")
  with caplog.at_level("INFO", logger="tf_drnn.train"):
    result = run_command("tf_drnn.train", "--dataset=musdb18hq", f"--data_dir={musdb_dir}",
                         f"--model_dir={model_dir}", *TINY)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "loading 2 training clips, 1 dev clips" in caplog.text
  best = json.load(open(os.path.join(model_dir, "best.json")))
  assert best["step"] == 2 and best["options"]["dataset"] == "musdb18hq"
  assert np.isfinite(best["dev"]["score"])
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  output = tmp_path / "musdb.json"
  document = evaluate_command(EvaluateOptions(musdb_dir, model=model_dir, output=str(output),
                                              progress=False, dataset="musdb18hq"))
  assert json.loads(output.read_text()) == document
  _check_document(document, sorted(MUSDB_TEST))
  assert all(row["sample_rate"] == RATE for row in document["tracks"])
  assert "| vocals |" in output.with_suffix(".md").read_text()


def test_train_and_evaluate_stems_folder_end_to_end(stems_dir, tmp_path):
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  from tf_drnn.train import TrainOptions, train
  model_dir = str(tmp_path / "run")
  result = train(TrainOptions(data_dir=stems_dir, model_dir=model_dir, dataset="stems", dev_clips=("Song B",),
                              hidden_units=8, num_layers=2, train_steps=2, eval_every=2, sequence_length=8,
                              batch_size=2, warmup_steps=1, jit_compile=False))
  # Dev songs are scored as mixed, by their vocal SDR (GSDR), which ranks the models.
  assert result["metric"] == {"stems": "GSDR"}
  assert result["score"] == result["collections"]["stems"]["vocals"]["GSDR"] and np.isfinite(result["score"])
  assert json.load(open(os.path.join(model_dir, "best.json")))["step"] == 2
  document = evaluate_command(EvaluateOptions(stems_dir, model=model_dir, output=str(tmp_path / "s.json"),
                                              progress=False, dataset="stems"))
  _check_document(document, ["Song C"])
  assert document["tracks"][0]["sample_rate"] == 22050


def test_evaluate_mixture_gives_known_scores(musdb_dir, tmp_path):
  """The mixture as both estimates: NSDR 0, and each 1-s window's vocal SDR is the window's
  voice-to-accompaniment ratio (BSS Eval v4 images SDR = signal-to-error ratio)."""
  output = tmp_path / "mixture.json"
  result = run_command("tf_drnn.evaluate", "--noprogress", "--dataset=musdb18hq", f"--data_dir={musdb_dir}",
                       "--method=mixture", f"--output={output}")
  assert result.returncode == 0, result.stderr[-3000:]
  document = json.loads(output.read_text())
  _check_document(document, sorted(MUSDB_TEST))
  for row, seed in zip(document["tracks"], (10, 11)):
    stems = stereo_stems(seed)
    vocals, accompaniment = stems["vocals"], stems["drums"] + stems["bass"] + stems["other"]
    ratios = [10 * np.log10(np.sum(vocals[k * RATE:(k + 1) * RATE].astype(float) ** 2)
                            / np.sum(accompaniment[k * RATE:(k + 1) * RATE].astype(float) ** 2))
              for k in range(int(SECONDS))]
    assert row["vocals"]["SDR"] == pytest.approx(np.median(ratios), abs=1e-4)
    assert row["vocals"]["track"]["NSDR"] == pytest.approx(0.0, abs=1e-9)
  assert document["global"]["vocals"]["GNSDR"] == pytest.approx(0.0, abs=1e-9)
  assert json.loads(result.stdout.strip().splitlines()[-1])["num_tracks"] == 2
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  with pytest.raises(UserError, match=r"^--gain_db applies to --dataset=mir1k only, not musdb18hq$"):
    evaluate_command(EvaluateOptions(musdb_dir, output=str(tmp_path / "x.json"), gain_db=-10.0, dataset="musdb18hq"))
  with pytest.raises(UserError, match=r"^--method=rpca does not apply to --dataset=musdb18hq"):
    evaluate_command(EvaluateOptions(musdb_dir, method="rpca", output=str(tmp_path / "x.json"), dataset="musdb18hq"))


def test_bad_output_path_fails_before_the_songs_are_read(musdb_dir, tmp_path, monkeypatch):
  """As for MIR-1K (issue 15, case 16): --output under a file fails at once, not after the evaluation."""
  from tf_drnn import evaluate, evaluate_multitrack
  (tmp_path / "file").write_bytes(b"x")
  monkeypatch.setattr(evaluate_multitrack, "native_estimator", lambda *a, **k: pytest.fail("evaluated first"))
  with pytest.raises(UserError, match="is a file, not a directory"):
    evaluate.evaluate_command(evaluate.EvaluateOptions(musdb_dir, dataset="musdb18hq", method="mixture",
                                                       output=str(tmp_path / "file" / "x.json"), progress=False))
  assert (tmp_path / "file").read_bytes() == b"x"


def test_bss_eval_v4_survives_a_mono_stem_and_a_silent_window():
  """A vocal stem with the same samples on both channels (a mono stem spread over two) makes the
  projection system singular: museval solves it by least squares, and so do we. The stereo scores
  then equal those of one channel, and a window where the voice is silent is NaN."""
  references, estimates, rate = _v4_signals()
  references, estimates = references[..., :1], estimates[..., :1]  # [2, samples, 1]
  references[0, rate:2 * rate] = 0.0  # a silent vocal second
  taps = 128  # Short filters: the singular system is 4 x 128 wide, and least squares on it is quick.
  mono = bss_eval_v4(references, estimates, rate, rate, filters_len=taps, whole=True)
  stereo = bss_eval_v4(np.repeat(references, 2, axis=-1), np.repeat(estimates, 2, axis=-1), rate, rate,
                       filters_len=taps, whole=True)
  for ours, one_channel in zip(stereo[0] + stereo[1], mono[0] + mono[1]):
    np.testing.assert_allclose(ours, one_channel, atol=1e-4)
  assert np.isnan(stereo[0][0][:, 1]).all()  # the silent window, for both sources
  assert np.isfinite(stereo[0][0][:, 2]).all() and np.isfinite(stereo[1][0]).all()


def test_evaluate_mono_scores_the_downmix_by_bss_eval_v3(musdb_dir, tmp_path):
  """--mono: each song's channel mean, whole-song scores by BSS Eval v3 sources (mir_eval), the
  mean over songs beside the G-metrics; a song that cannot be scored is listed, not averaged."""
  from tf_drnn import metrics
  from tf_drnn.evaluate import EvaluateOptions, evaluate_command
  from tf_drnn.evaluate_multitrack import aggregate
  document = evaluate_command(EvaluateOptions(musdb_dir, method="mixture", output=str(tmp_path / "m.json"),
                                              progress=False, mono=True, dataset="musdb18hq"))
  assert document["mono"] and [row["channels"] for row in document["tracks"]] == [1, 1]
  sdrs = []
  for row, seed in zip(document["tracks"], (10, 11)):
    stems = stereo_stems(seed)
    vocals, accompaniment = stems["vocals"].mean(1), (stems["drums"] + stems["bass"] + stems["other"]).mean(1)
    mixture = vocals + accompaniment
    expected = metrics.score_clip("", vocals, accompaniment, mixture, mixture)
    assert row["vocals"]["track"]["SDR"] == pytest.approx(expected.sdr[0], abs=1e-3)
    assert row["vocals"]["track"]["NSDR"] == pytest.approx(0.0, abs=1e-6)
    sdrs.append(expected.sdr[0])
  assert document["global"]["vocals"]["mean_SDR"] == pytest.approx(np.mean(sdrs), abs=1e-3)
  unscorable = json.loads(json.dumps(document["tracks"][0]))
  for source in ("vocals", "accompaniment"):
    unscorable[source]["track"].update(SDR=float("nan"), NSDR=float("nan"))
  _, with_bad = aggregate(document["tracks"] + [unscorable])
  assert with_bad["vocals"]["GNSDR"] == pytest.approx(document["global"]["vocals"]["GNSDR"])
  assert with_bad["vocals"]["mean_SDR"] == pytest.approx(np.mean(sdrs), abs=1e-3)


@pytest.mark.parametrize("flag", ["--mono", "--high_band=average"])
def test_multitrack_flags_are_refused_for_mir1k(tmp_path, flag):
  result = run_command("tf_drnn.evaluate", flag, f"--data_dir={tmp_path}", f"--output={tmp_path}/r.json")
  assert result.returncode != 0
  name = flag[2:].split("=")[0]
  assert result.stderr.strip().splitlines()[-1].startswith(f"error: --{name} applies to --dataset=musdb18hq or stems")


def test_training_on_two_collections_keeps_the_best_mean_dev_score(stems_dir, tmp_path, caplog):
  """--dataset=mir1k,stems: examples from both, each collection's dev split scored by its own rule
  (MIR-1K: vocal GNSDR of 0 dB remixes; stems: vocal SDR as mixed), the model ranked by their mean."""
  from conftest import write_fake_mir1k
  from tf_drnn.train import TrainOptions, train
  mir1k = write_fake_mir1k(str(tmp_path / "mir1k"))
  with caplog.at_level("INFO", logger="tf_drnn.train"):
    result = train(TrainOptions(data_dir=f"{mir1k},{stems_dir}", model_dir=str(tmp_path / "run"),
                                dataset="mir1k,stems", dataset_weights=(0.5, 0.5), dev_clips=("amy_9", "Song B"),
                                voice_db_range=(0, 0, -10, 0), hidden_units=8, num_layers=2, train_steps=2,
                                eval_every=2, sequence_length=8, batch_size=2, warmup_steps=1, jit_compile=False))
  assert "mir1k (" in caplog.text and "stems (" in caplog.text
  assert result["metric"] == {"mir1k": "GNSDR", "stems": "GSDR"}
  parts = [result["collections"]["mir1k"]["vocals"]["GNSDR"], result["collections"]["stems"]["vocals"]["GSDR"]]
  assert result["score"] == pytest.approx(np.mean(parts)) and np.isfinite(parts).all()
  best = json.load(open(tmp_path / "run" / "best.json"))
  assert best["dev"]["score"] == pytest.approx(result["score"])


def test_training_says_where_it_looked_and_warns_without_dev_songs(tmp_path, caplog):
  from tf_drnn.train_options import checked_tracks
  from tf_drnn.train import TrainOptions
  write_song(str(tmp_path / "only_test" / "test" / "Song"), {"vocals": stereo_stems(0)["vocals"],
                                                             "band": stereo_stems(0)["other"]})
  options = lambda data_dir: TrainOptions(data_dir=data_dir, model_dir=str(tmp_path / "run"), dataset="stems")  # noqa: E731
  with pytest.raises(UserError, match=r"no training clips found \(looked in .*only_test/train\)"):
    checked_tracks(options(str(tmp_path / "only_test")))
  write_song(str(tmp_path / "flat" / "Song"), {"vocals": stereo_stems(0)["vocals"], "band": stereo_stems(0)["other"]})
  with caplog.at_level("WARNING", logger="tf_drnn.train"):
    collections = checked_tracks(options(str(tmp_path / "flat")))
  assert [t.name for t in collections[0].train] == ["Song"] and collections[0].dev == []
  assert "stems (" in caplog.text and "no dev clips: nothing ranks the models on it" in caplog.text


def test_a_stem_that_cannot_be_opened_is_named_as_such_not_as_corrupt(tmp_path, capsys, monkeypatch):
  """A permission-denied stem (simulated: the tests may run as root, who may open anything)."""
  import builtins
  write_song(str(tmp_path / "Locked"), {"vocals": stereo_stems(0)["vocals"], "band": stereo_stems(0)["other"]})
  locked = str(tmp_path / "Locked" / "band.wav")
  real_open = builtins.open

  def guarded_open(file, *args, **kwargs):
    if os.fspath(file) == locked:
      raise PermissionError(13, "Permission denied")
    return real_open(file, *args, **kwargs)
  monkeypatch.setattr(builtins, "open", guarded_open)
  assert StemsFolders(str(tmp_path)).clip_names("test") == []
  assert f"warning: {locked}: cannot read (Permission denied); song skipped" in capsys.readouterr().err


def test_dev_scoring_names_a_clip_it_cannot_score(caplog, monkeypatch):
  """Training's dev scoring: an unscorable dev clip (here a silent voice) gets a warning line."""
  from tf_drnn.data.base import Track
  from tf_drnn.train import TrainingProgress
  from tf_drnn.train_options import Collection
  rng = np.random.default_rng(0)
  loud = Track("loud", lambda: (rng.standard_normal(4000).astype(np.float32), rng.standard_normal(4000).astype(
      np.float32)))
  silent = Track("silent", lambda: (np.zeros(4000, np.float32), np.ones(4000, np.float32)))
  progress = TrainingProgress.__new__(TrainingProgress)
  progress.trained_model = None
  progress.dev_sets = [Collection("stems", "d", [], [loud, silent], (), None, "GSDR")]
  import tf_drnn.models
  monkeypatch.setattr(tf_drnn.models, "offline_estimates", lambda model, mixture: (0.5 * mixture, 0.5 * mixture))
  with caplog.at_level("WARNING", logger="tf_drnn.train"):
    result = progress.evaluate_dev()
  assert "stems dev clip silent not scored: silent vocals reference" in caplog.text
  assert np.isfinite(result["score"])
