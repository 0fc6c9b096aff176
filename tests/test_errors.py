"""One-line error reports: the first (or last) line of an exception's message, whatever it holds."""
import pytest

from tf_drnn.errors import AudioFileError, first_line, last_line


def test_first_line_of_a_message():
  assert first_line(ValueError("\n  bad value  \nmore detail")) == "bad value"
  assert first_line(ValueError("x" * 500)) == "x" * 200
  assert first_line(ValueError("x" * 500), 10) == "x" * 10
  assert first_line(ValueError("x" * 500), limit=None) == "x" * 500
  assert last_line(OSError("reading state.npz\n  bad CRC  \n\n")) == "bad CRC"


@pytest.mark.parametrize("message", ["", "   ", "\n\n"])
def test_an_empty_message_is_the_type_name_or_the_given_text(message):
  assert first_line(RuntimeError(message)) == "RuntimeError"
  assert first_line(RuntimeError(message), empty="") == ""
  assert last_line(EOFError(message)) == "EOFError"


def test_a_decoder_error_without_a_message_is_still_one_line(tmp_path, monkeypatch):
  """separate's block reader named a failing decoder by its message's first line, an IndexError
  when the decoder raised without one."""
  import soundfile

  from tf_drnn import separate

  def failing_open(*args, **kwargs):
    raise RuntimeError("")
  monkeypatch.setattr(soundfile, "SoundFile", failing_open)
  path = str(tmp_path / "song.wav")
  with pytest.raises(AudioFileError, match=r"song.wav: corrupt audio \(RuntimeError\)"):
    list(separate._read_blocks(path, 1024))
