"""Nothing lost, nothing hangs: tf-drnn-separate / tf-drnn-demo against careless or hostile input.

Every case runs the command's `main` in this process (flags passed as a namespace) and checks
the exit status, that there is exactly one `error:` line and no traceback, and that the files
around it are unchanged byte for byte, with no temporary file left behind.
"""
import errno
import os
import signal
import types

import numpy as np
import pytest
import soundfile

from conftest import sung_like_mixture
from tf_drnn import atomic, blocks, cli_util, models, separate
from tf_drnn.errors import AudioFileError, UserError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def write_song(path, seconds=0.4, rate=16000, channels=1, subtype="PCM_16", gain=1.0):
  vocals, accompaniment = sung_like_mixture(seconds, sample_rate=rate)
  mixture = gain * (vocals + accompaniment)
  if channels > 1:
    mixture = np.stack([mixture] * channels, 1)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if path.endswith(".mp3"):
    subtype = "MPEG_LAYER_III"
  soundfile.write(path, mixture, rate, subtype=subtype)
  return path


def snapshot(root):
  """{relative path: bytes (None for a folder)} of everything under root, hidden files included."""
  files = {}
  for directory, folders, names in os.walk(root):
    for name in folders:
      files[os.path.relpath(os.path.join(directory, name), root)] = None
    for name in names:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, root)] = f.read()
  return files


def temporaries(root):
  return [name for _, _, names in os.walk(root) for name in names if name.startswith(".tmp-")]


def run_separate(capsys, model, paths, output_dir, **flags):
  """tf-drnn-separate's main (with its interrupt handling) -> (exit status, stdout, error lines, stderr)."""
  values = types.SimpleNamespace(model=model, output_dir=str(output_dir), binary_mask=False, subtype=None,
                                 overwrite=False, high_band=None)
  for key, value in flags.items():
    setattr(values, key, value)
  main = cli_util.interruptible(lambda argv: separate.main(argv, values))
  try:
    main(["tf-drnn-separate"] + [str(p) for p in paths])
    status = 0
  except SystemExit as exit_:
    status = exit_.code
  out, err = capsys.readouterr()
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert "Traceback" not in err
  return status, out, errors, err


# --- 1, 2: outputs never replace an input or each other -----------------------------------------

def test_overwrite_never_replaces_an_input_of_the_run(capsys, tiny_model, tmp_path):
  """Case 1: X.wav's vocals would land on X_vocals.wav, an input of the same run."""
  work = tmp_path / "w"
  write_song(str(work / "X_vocals.wav"))
  write_song(str(work / "X.wav"), seconds=0.5)
  before = snapshot(tmp_path)
  status, _, errors, _ = run_separate(capsys, tiny_model, [work / "X_vocals.wav", work / "X.wav"], work,
                                      overwrite=True)
  assert status == 2 and len(errors) == 1
  assert "X_vocals.wav: is an input of this run" in errors[0]
  assert snapshot(tmp_path) == before  # Nothing separated, nothing written.


@pytest.mark.parametrize("names", [("a/song.wav", "b/song.wav"), ("song.wav", "song.mp3")])
@pytest.mark.parametrize("overwrite", [False, True])
def test_inputs_with_the_same_name_are_one_error_before_any_work(capsys, tiny_model, tmp_path, names, overwrite):
  """Case 2: both inputs would write o/song_vocals.wav; with or without --overwrite nothing is written,
  and the line does not suggest --overwrite (that would lose one of them)."""
  inputs = [write_song(str(tmp_path / name)) for name in names]
  write_song(str(tmp_path / "o" / "song_vocals.wav"), seconds=0.2)  # A previous run's output.
  write_song(str(tmp_path / "o" / "song_accompaniment.wav"), seconds=0.2)
  before = snapshot(tmp_path)
  status, _, errors, _ = run_separate(capsys, tiny_model, inputs, tmp_path / "o", overwrite=overwrite)
  assert status == 2 and len(errors) == 1, errors
  assert "would write it (inputs with the same name)" in errors[0] and "--overwrite" not in errors[0]
  assert snapshot(tmp_path) == before


def test_demo_keeps_existing_outputs_unless_overwrite(tiny_model, tmp_path):
  """Case 3: tf-drnn-demo plans its outputs like tf-drnn-separate."""
  from tf_drnn.demo import demo
  work = tmp_path / "w"
  song = write_song(str(work / "X.wav"))
  write_song(str(work / "X_vocals.wav"), seconds=0.2)
  before = snapshot(tmp_path)
  with pytest.raises(UserError, match="X_vocals.wav: already exists"):
    demo(str(work), song, tiny_model)
  assert snapshot(tmp_path) == before
  outputs = demo(str(work), song, tiny_model, overwrite=True)
  assert [os.path.basename(p) for p in outputs] == ["X_vocals.wav", "X_accompaniment.wav", "X_spectrograms.png"]
  after = snapshot(tmp_path)
  assert after["w/X.wav"] == before["w/X.wav"] and after["w/X_vocals.wav"] != before["w/X_vocals.wav"]
  assert soundfile.info(str(work / "X_vocals.wav")).frames == soundfile.info(song).frames
  with pytest.raises(UserError, match="synthetic_song.wav: already exists"):  # Its own song, too.
    (work / "synthetic_song.wav").write_bytes(b"mine")
    demo(str(work), None, tiny_model)
  assert (work / "synthetic_song.wav").read_bytes() == b"mine"
  assert not temporaries(tmp_path)


# --- 6: stems replaced as a pair -----------------------------------------------------------------

def test_a_stem_that_cannot_be_replaced_keeps_the_other(capsys, tiny_model, tmp_path):
  """Case 6: good_vocals.wav is a directory; --overwrite must not replace good_accompaniment.wav alone."""
  song = write_song(str(tmp_path / "good.wav"))
  (tmp_path / "o" / "good_vocals.wav").mkdir(parents=True)
  write_song(str(tmp_path / "o" / "good_accompaniment.wav"), seconds=0.2)
  before = snapshot(tmp_path)
  status, _, errors, _ = run_separate(capsys, tiny_model, [song], tmp_path / "o", overwrite=True)
  assert status == 2 and len(errors) == 1 and "good_vocals.wav: exists and is not a regular file" in errors[0]
  assert snapshot(tmp_path) == before


def test_atomic_outputs_put_the_first_file_back_when_the_second_rename_fails(tmp_path, monkeypatch):
  """Case 6, at the last moment: the second rename fails after the first target was replaced."""
  targets = [tmp_path / "a.wav", tmp_path / "b.wav"]
  for target in targets:
    target.write_bytes(b"old " + target.name.encode())
  real_replace = os.replace

  def failing_replace(src, dst):
    if os.fspath(dst) == str(targets[1]) and os.path.basename(os.fspath(src)).startswith(".tmp-") \
        and not os.path.basename(os.fspath(src)).startswith(".tmp-old-"):
      raise OSError(errno.EIO, os.strerror(errno.EIO), os.fspath(dst))
    return real_replace(src, dst)

  monkeypatch.setattr(os, "replace", failing_replace)
  with pytest.raises(OSError):
    with atomic.atomic_outputs(targets) as tmps:
      for tmp in tmps:
        with open(tmp, "wb") as f:
          f.write(b"new")
  assert [t.read_bytes() for t in targets] == [b"old a.wav", b"old b.wav"]
  assert sorted(os.listdir(tmp_path)) == ["a.wav", "b.wav"]


# --- 7, 9, 10: input sanity before any work ------------------------------------------------------

@pytest.mark.parametrize("subtype", [None, "PCM_16"])
def test_absurd_amplitude_is_refused_with_one_line(capsys, tiny_model, tmp_path, subtype):
  """Case 7: one sample of 1e20 in a float WAV made the rest NaN (or constant -32768 as PCM_16)."""
  path = str(tmp_path / "loud.wav")
  write_song(path, subtype="FLOAT")
  data, rate = soundfile.read(path, dtype="float32")
  data[3000] = 1e20
  soundfile.write(path, data, rate, subtype="FLOAT")
  status, _, errors, _ = run_separate(capsys, tiny_model, [path], tmp_path / "o", subtype=subtype)
  assert status == 1 and len(errors) == 1 and "loud.wav: absurd amplitude" in errors[0], errors
  assert not os.path.exists(tmp_path / "o") or not os.listdir(tmp_path / "o")
  with pytest.raises(ValueError, match="magnitude over 1000"):
    separate.Separator(tiny_model, block_frames=8).separate(data, rate)


def test_hot_float_input_separates_to_finite_output(capsys, tiny_model, tmp_path):
  """Case 7: a float WAV peaking 12 dB over full scale is not absurd: finite, non-constant stems."""
  path = write_song(str(tmp_path / "hot.wav"), subtype="FLOAT", gain=4.0 / 0.6)
  assert 1.5 < np.abs(soundfile.read(path)[0]).max() < 1000
  status, _, errors, _ = run_separate(capsys, tiny_model, [path], tmp_path / "o")
  assert status == 0 and not errors
  for name in ("hot_vocals.wav", "hot_accompaniment.wav"):
    stem, _ = soundfile.read(str(tmp_path / "o" / name))
    assert np.all(np.isfinite(stem)) and np.std(stem) > 1e-3


def test_thousand_channels_are_refused_from_the_header(tiny_model, tmp_path):
  """Case 9: a 279 KB WAV with 1000 channels took 13.6 GB; now the header is enough to refuse it."""
  import tracemalloc
  path = str(tmp_path / "wide.wav")
  soundfile.write(path, np.full((139, 1000), 0.1, np.float32), 16000, subtype="PCM_16")
  assert os.path.getsize(path) < 300_000
  separator = separate.Separator(tiny_model, block_frames=8)
  tracemalloc.start()
  try:
    with pytest.raises(AudioFileError, match="1000 channels; at most 16 are supported"):
      separator.separate_file(path, str(tmp_path / "o"))
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert peak < 50 * 2 ** 20
  assert not os.path.exists(tmp_path / "o")


def test_pipes_and_devices_are_refused_without_opening_them(capsys, tiny_model, tmp_path):
  """Case 10: a named pipe as input hung forever (it was opened before the check)."""
  fifo = str(tmp_path / "pipe.wav")
  os.mkfifo(fifo)
  song = write_song(str(tmp_path / "good.wav"))

  def hung(signum, frame):
    raise AssertionError("opened the pipe: blocked")
  previous = signal.signal(signal.SIGALRM, hung)
  signal.alarm(120)
  try:
    status, out, errors, _ = run_separate(capsys, tiny_model, [fifo, "/dev/null", song], tmp_path / "o")
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
  assert status == 1 and len(errors) == 2
  assert all("not a regular file" in line for line in errors)
  assert sorted(os.listdir(tmp_path / "o")) == ["good_accompaniment.wav", "good_vocals.wav"]


# --- 11: file-system errors: one line each ------------------------------------------------------

def test_output_dir_that_is_or_lies_under_a_file(capsys, tiny_model, tmp_path):
  song = write_song(str(tmp_path / "song.wav"))
  (tmp_path / "file").write_bytes(b"x")
  before = snapshot(tmp_path)
  for output_dir, problem in ((tmp_path / "file", "exists and is not a directory"),
                              (tmp_path / "file" / "sub", "is a file, not a directory")):
    status, _, errors, _ = run_separate(capsys, tiny_model, [song], output_dir)
    assert status == 2 and len(errors) == 1 and problem in errors[0], errors
  assert snapshot(tmp_path) == before


def test_read_only_output_folder_is_one_line_before_any_work(capsys, tiny_model, tmp_path, monkeypatch):
  song = write_song(str(tmp_path / "song.wav"))
  (tmp_path / "ro").mkdir()
  real_access = os.access
  monkeypatch.setattr(os, "access", lambda path, mode: False if os.fspath(path) == str(tmp_path / "ro")
                      else real_access(path, mode))  # Tests run as root, which chmod cannot stop.
  status, _, errors, _ = run_separate(capsys, tiny_model, [song], tmp_path / "ro")
  assert status == 2 and len(errors) == 1 and "the output folder is not writable" in errors[0]
  assert not os.listdir(tmp_path / "ro")


@pytest.mark.parametrize("failure", ["ENOSPC", "libsndfile"])
def test_full_disk_is_one_line_and_stops_the_batch(capsys, tiny_model, tmp_path, monkeypatch, failure):
  """A full disk: libsndfile says only "System error."; the line says what happened, no temporary
  file is left, and the files after it are not attempted."""
  import shutil
  songs = [write_song(str(tmp_path / f"song{i}.wav")) for i in range(2)]

  def write(self, data):
    if failure == "ENOSPC":
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    raise soundfile.LibsndfileError(2, "System error.")  # SF_ERR_SYSTEM, as a failed write(2) gives.
  monkeypatch.setattr(soundfile.SoundFile, "write", write)
  usage = shutil.disk_usage(str(tmp_path))
  monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=4096))
  status, _, errors, err = run_separate(capsys, tiny_model, songs, tmp_path / "o")
  assert status == 1 and len(errors) == 1, err
  assert "song0_vocals.wav: cannot write: No space left on device" in errors[0]
  assert "stopped: 1 file(s) not attempted" in err
  assert not os.listdir(tmp_path / "o")


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_interrupt_is_one_line_and_leaves_no_temporary_file(capsys, tiny_model, tmp_path, monkeypatch, signal_name):
  """Ctrl-C exits 130 with one line (it printed a 63-line traceback); SIGTERM (143) used to leave hidden
  .tmp-* files: its handler now raises, so the atomic writers clean up."""
  songs = [write_song(str(tmp_path / f"song{i}.wav")) for i in range(2)]
  real_process = blocks.BlockRunner.process

  def process(self, samples):
    assert temporaries(tmp_path)  # Mid-file: the temporary outputs exist.
    if signal_name == "SIGINT":
      raise KeyboardInterrupt
    os.kill(os.getpid(), signal.SIGTERM)
    return real_process(self, samples)
  monkeypatch.setattr(blocks.BlockRunner, "process", process)
  previous = signal.getsignal(signal.SIGTERM)
  cli_util.install_sigterm_handler()
  try:
    status, _, errors, err = run_separate(capsys, tiny_model, songs, tmp_path / "o")
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert status == (130 if signal_name == "SIGINT" else 143)
  assert len(err.strip().splitlines()) == 1 and not errors, err
  assert not temporaries(tmp_path) and not os.listdir(tmp_path / "o")


# --- the smaller ones ---------------------------------------------------------------------------

def test_random_bytes_mp3_is_corrupt_not_missing(capsys, tiny_model, tmp_path):
  path = tmp_path / "noise.mp3"
  path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
  status, _, errors, _ = run_separate(capsys, tiny_model, [path], tmp_path / "o")
  assert status == 1 and len(errors) == 1
  assert "noise.mp3: corrupt or unsupported audio" in errors[0] and "does not exist" not in errors[0]


def test_a_keras_file_that_is_not_a_model_is_named_so(tmp_path):
  path = tmp_path / "notes.keras"
  path.write_bytes(b"just some text")
  with pytest.raises(UserError) as raised:
    models.load_model(str(path))
  assert "not a Keras model file" in str(raised.value) and "not found" not in str(raised.value).lower()


@pytest.mark.parametrize("subtype,name,problem", [("PCM_99", "song.wav", "unknown --subtype=PCM_99"),
                                                  ("PCM_24", "song.ogg", "cannot be written as OGG")])
def test_invalid_subtype_is_an_error_line(capsys, tiny_model, tmp_path, subtype, name, problem):
  song = write_song(str(tmp_path / name), subtype="VORBIS" if name.endswith(".ogg") else "PCM_16")
  status, _, errors, _ = run_separate(capsys, tiny_model, [song], tmp_path / "o", subtype=subtype)
  assert status == 2 and len(errors) == 1 and problem in errors[0], errors
  assert not os.path.exists(tmp_path / "o")


def test_truncated_wav_is_separated_with_a_warning(capsys, tiny_model, tmp_path):
  """A WAV cut mid-data: a `warning:` line says how much is there, and that much is separated."""
  path = write_song(str(tmp_path / "cut.wav"), seconds=1.0)
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2])
  frames = soundfile.info(path).frames
  status, _, errors, err = run_separate(capsys, tiny_model, [path], tmp_path / "o")
  assert status == 0 and not errors
  warnings = [line for line in err.splitlines() if line.startswith("warning:")]
  assert len(warnings) == 1 and f"the header declares 16000 samples, the file holds {frames}" in warnings[0]
  assert soundfile.info(str(tmp_path / "o" / "cut_vocals.wav")).frames == frames


# --- robustness issue 1: two runs, one --output_dir: a target taken meanwhile is kept ---------------

@pytest.mark.parametrize("overwrite", [False, True])
def test_a_target_taken_while_separating_is_kept_unless_overwrite(capsys, tiny_model, tmp_path, monkeypatch,
                                                                  overwrite):
  """Another run writes o/song_vocals.wav after this one planned its outputs: without --overwrite it
  stays (it was silently replaced), this input gets one error line, no stem and no temporary file."""
  song = write_song(str(tmp_path / "song.wav"))
  taken = tmp_path / "o" / "song_vocals.wav"
  real_process = blocks.BlockRunner.process

  def process(self, samples):
    if not taken.exists():
      taken.write_bytes(b"the other run's vocals")
    return real_process(self, samples)
  monkeypatch.setattr(blocks.BlockRunner, "process", process)
  status, _, errors, err = run_separate(capsys, tiny_model, [song], tmp_path / "o", overwrite=overwrite)
  if overwrite:
    assert status == 0 and not errors and soundfile.info(str(taken)).frames == soundfile.info(song).frames
  else:
    assert status == 1 and len(errors) == 1, err
    assert f"{taken}: already exists: written while this input was separated" in errors[0]
    assert taken.read_bytes() == b"the other run's vocals"
    assert sorted(os.listdir(tmp_path / "o")) == ["song_vocals.wav"]
  assert not temporaries(tmp_path)


RACER = """
import os, sys, time
import numpy as np
from tf_drnn.errors import UserError
from tf_drnn.stems import AtomicStemWriters, plan_outputs
song, out, ready, go, value = sys.argv[1:]
targets = plan_outputs([song], out)[0][1]  # Both runs find the targets free.
try:
  with AtomicStemWriters(targets, None, song, None) as writers:
    writers.open(16000, 1)
    writers.write([np.full((400, 1), float(value), np.float32)] * 2)
    open(ready, "w").close()
    while not os.path.exists(go):  # Both have finished their stems before either puts them in place.
      time.sleep(0.01)
except UserError as error:
  print(f"error: {error}", file=sys.stderr)
  sys.exit(1)
"""


def test_two_processes_writing_one_target_never_replace_each_other(tmp_path):
  """Two real processes plan, write and put in place song_vocals/accompaniment.wav at the same time:
  one wins both stems, the other exits 1 with one error line naming the taken target."""
  import subprocess
  import sys
  import time
  song = write_song(str(tmp_path / "song.wav"), seconds=0.05)
  out = tmp_path / "o"
  racers = [subprocess.Popen([sys.executable, "-c", RACER, song, str(out), str(tmp_path / f"ready{i}"),
                              str(tmp_path / "go"), str(0.25 * (i + 1))], cwd=os.path.dirname(__file__),
                             stderr=subprocess.PIPE, text=True) for i in range(2)]
  deadline = time.time() + 60
  while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.time() < deadline:
    assert all(racer.poll() is None for racer in racers), [racer.stderr.read() for racer in racers]
    time.sleep(0.01)
  (tmp_path / "go").touch()
  results = [(racer.wait(60), racer.stderr.read()) for racer in racers]
  assert sorted(code for code, _ in results) == [0, 1], results
  winner = [i for i, (code, _) in enumerate(results) if code == 0][0]
  lines = [err for code, err in results if code == 1][0].strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"error: {out / 'song_vocals.wav'}: already exists"), lines
  for name in ("song_vocals.wav", "song_accompaniment.wav"):
    np.testing.assert_allclose(soundfile.read(str(out / name))[0], 0.25 * (winner + 1), atol=1e-4)
  assert sorted(os.listdir(out)) == ["song_accompaniment.wav", "song_vocals.wav"]


def test_without_hard_links_the_output_is_still_created_exclusively(tmp_path, monkeypatch):
  """A file system without hard links (EPERM): an exclusive create and a copy, never a replace."""
  monkeypatch.setattr(os, "link", lambda src, dst: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
  target = tmp_path / "a.txt"
  with atomic.atomic_output(target, overwrite=False) as tmp:
    open(tmp, "w").write("first")
  target.write_text("mine")
  with pytest.raises(FileExistsError) as raised:
    with atomic.atomic_output(target, overwrite=False) as tmp:
      open(tmp, "w").write("second")
  assert raised.value.filename == str(target) and target.read_text() == "mine"
  assert os.listdir(tmp_path) == ["a.txt"]


# --- robustness issue 2: one supported sample-rate range, refused before any work ------------------

@pytest.mark.parametrize("rate", [0, 1, 999, 768001, 100_000_000])
def test_sample_rate_outside_the_range_in_a_header_is_one_line(capsys, tiny_model, tmp_path, rate):
  """A header at 1e8 Hz used 8 GB, one at 1 Hz took minutes: refused from the header."""
  import struct
  path = write_song(str(tmp_path / "odd.wav"))
  data = bytearray(open(path, "rb").read())
  data[24:32] = struct.pack("<II", rate, 2 * rate)  # fmt chunk: sample rate and byte rate
  open(path, "wb").write(bytes(data))
  status, _, errors, _ = run_separate(capsys, tiny_model, [path], tmp_path / "o")
  assert status == 1 and errors == [f"error: {path}: sample rate {rate} Hz is outside the supported "
                                    "1000-768000 Hz"], errors
  assert not os.path.exists(tmp_path / "o") or not os.listdir(tmp_path / "o")


@pytest.mark.parametrize("rate,problem", [
    (float("nan"), "sample rate nan Hz is not a whole number"), (float("inf"), "sample rate inf Hz is not"),
    (1e9, "sample rate 1000000000 Hz is outside the supported 1000-768000 Hz"),
    (True, "sample rate True is not a number"), (1e-3, "sample rate 0.001 Hz is not a whole number"),
    (44100.5, "not a whole number"), (999, "outside the supported"), (-16000, "outside the supported"),
    ("16000", "sample rate '16000' is not a number")])
def test_separator_refuses_unsupported_sample_rates_before_any_work(tiny_model, rate, problem):
  """NaN or inf looped forever in the resampler, 1e9 Hz took 6 GB, True or 1e-3 a MemoryError."""
  with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
    separate.Separator(tiny_model, block_frames=8).separate(np.full(1000, 0.1, np.float32), rate)


def test_the_supported_sample_rates_are_whole_numbers_from_1000_to_768000_hz():
  from tf_drnn import audio
  for rate in (1000, 768000, 44100, np.int32(44100), 48000.0):
    assert audio.sample_rate_problem(rate) is None, rate
  for rate in (999, 768001, 44100.5, np.float64("nan"), False, None):
    assert audio.sample_rate_problem(rate), rate
  assert audio.check_sample_rate("x.wav", np.int64(8000)) == 8000


# --- robustness issue 3: blocks bounded in samples x channels, not in seconds ----------------------

def test_blocks_are_a_budget_of_samples_times_channels(tiny_model, tmp_path, monkeypatch):
  """16 channels at 384 kHz were read 10 s at a time (61 M values, 5.2 GB at the peak)."""
  from tf_drnn import audio, fullband
  assert audio.block_frames(16) * 16 <= audio.BLOCK_VALUES <= 2 ** 21
  assert audio.block_frames(16) < 384000  # Under a second at 384 kHz (it was 10 s).
  assert audio.block_frames(1) == audio.BLOCK_VALUES
  path = str(tmp_path / "wide.wav")
  soundfile.write(path, np.full((2000, 16), 0.1, np.float32), 384000, subtype="PCM_16")
  asked = []
  monkeypatch.setattr(separate, "_read_blocks", lambda path, frames: asked.append(frames) or iter(()))
  with pytest.raises(AudioFileError, match="silent"):  # No block read: nothing separated.
    separate.Separator(tiny_model, block_frames=8).separate_file(path, str(tmp_path / "o"))
  assert asked == [audio.block_frames(16)]

  sizes = []

  class Recorder:  # The API feeds the runner blocks of the same budget.
    def __init__(self, separator, rate, channels):
      pass

    def process(self, block):
      sizes.append(block.shape)
      return block, block

    def finish(self):
      return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
  monkeypatch.setattr(fullband, "FullBandRunner", Recorder)
  monkeypatch.setattr(audio, "BLOCK_VALUES", 300)
  separate.Separator(tiny_model, block_frames=8).separate(np.full((250, 3), 0.1, np.float32), 48000)
  assert sizes == [(100, 3), (100, 3), (50, 3)]


# --- robustness issue 4: what the API accepts as a waveform ------------------------------------------

@pytest.mark.parametrize("waveform,problem", [
    (np.zeros(1000, np.float32), r"waveform: silent audio \(all samples are zero\)"),
    (np.full(1000, 0.1 + 0.1j), "dtype complex128"), (np.ones(1000, bool), "dtype bool"),
    (np.full(1000, 128, np.uint8), "dtype uint8"), (np.array(["0.1"] * 1000), "dtype <U3"),
    (np.full((2, 1000), 0.1, np.float32), r"got shape \(2, 1000\) \(a \[channels, samples\] array\? pass "
                                          r"waveform\.T\)"),
    (np.full((2, 10), 0.1, np.float32), r"more samples than channels, got shape \(2, 10\)"),
    (np.full((16, 16), 0.1, np.float32), r"got shape \(16, 16\)")])
def test_separator_refuses_waveforms_it_would_misread(tiny_model, waveform, problem):
  """Silence (the CLI refuses silent files), complex (lost its imaginary part), bool/uint8 (a DC
  offset) and a (2, N <= 16) array (read as N channels) were all separated."""
  with pytest.raises(ValueError, match=problem):
    separate.Separator(tiny_model, block_frames=8).separate(waveform, 16000)


def test_separator_takes_integer_pcm_as_it_always_has(tiny_model):
  """Signed-integer arrays are separated as their values (not rescaled), as before; [N, 2] is stereo."""
  separator = separate.Separator(tiny_model, block_frames=8)
  pcm = (100 * np.sin(np.arange(3200) / 7)).astype(np.int16)
  stems = separator.separate(pcm, 16000)
  reference = separator.separate(pcm.astype(np.float32), 16000)
  np.testing.assert_array_equal(stems["vocals"], reference["vocals"])
  assert separator.separate(np.stack([pcm, pcm], 1).astype(np.int32), 16000)["vocals"].shape == (3200, 2)


# --- robustness issue 7: names too long for the file system, before any work --------------------------

def test_a_stem_name_too_long_is_one_line_before_any_work(capsys, tiny_model, tmp_path):
  song = write_song(str(tmp_path / ("s" * 240 + ".wav")))  # song_accompaniment.wav: 258 bytes
  status, _, errors, _ = run_separate(capsys, tiny_model, [song], tmp_path / "o")
  assert status == 2 and len(errors) == 1, errors
  assert errors[0].startswith(f"error: {tmp_path / 'o' / ('s' * 240 + '_accompaniment.wav')}: file name too long "
                              "(258 bytes; this file system allows 255)")
  assert not os.path.exists(tmp_path / "o")


def test_a_failed_rename_names_the_target_not_the_temporary_file(tmp_path):
  """Past the checks (say a caller skipped them), "File name too long" names the target."""
  target = str(tmp_path / ("n" * 300 + ".json"))
  with pytest.raises(UserError, match="file name too long"):
    atomic.check_output_file(target)
  for overwrite in (True, False):
    with pytest.raises(OSError) as raised:
      with atomic.atomic_output(target, overwrite) as tmp:
        open(tmp, "w").write("x")
    assert raised.value.errno == errno.ENAMETOOLONG and raised.value.filename == target
    assert ".tmp-" not in str(raised.value)
  assert not os.listdir(tmp_path)
