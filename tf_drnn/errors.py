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
