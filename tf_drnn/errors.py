"""Errors that end a command with one clear line instead of a traceback."""


class UserError(Exception):
  """Bad input from the user: a file, a flag or a directory. Printed as one line."""


class AudioFileError(UserError):
  """An audio file that is missing, empty, corrupt, silent, NaN or of the wrong shape."""

  def __init__(self, path, problem):
    super().__init__(f"{path}: {problem}")
    self.path = str(path)
    self.problem = problem


class OutputError(AudioFileError):
  """An output that cannot be written (full disk, read-only folder). `fatal`: later files would fail too."""

  def __init__(self, path, problem, fatal=False):
    super().__init__(path, problem)
    self.fatal = fatal


def _lines(error):
  return [line.strip() for line in str(error).splitlines() if line.strip()]


def first_line(error, limit=200, empty=None):
  """The first non-blank line of an exception's message, at most `limit` characters (None: all),
  for one-line error reports. An empty message gives `empty`, or the exception's type name when
  that is None."""
  lines = _lines(error)
  if lines:
    return lines[0][:limit]
  return type(error).__name__ if empty is None else empty


def last_line(error, limit=200):
  """The last non-blank line of an exception's message (where a decoder puts its reason), at most
  `limit` characters; the exception's type name for an empty message."""
  lines = _lines(error)
  return lines[-1][:limit] if lines else type(error).__name__
