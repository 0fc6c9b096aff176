"""The two stems of a separation as files: their names, the plan that checks every output before
any work, and the writers that put both in place together (or neither)."""
import os

import numpy as np

from tf_drnn.errors import OutputError, UserError, first_line

STEMS = ("vocals", "accompaniment")


def output_paths(path, output_dir):
  stem, extension = os.path.splitext(os.path.basename(path))
  extension = extension.lower() if extension.lower() in (".wav", ".flac", ".ogg") else ".wav"
  return [os.path.join(output_dir, f"{stem}_{name}{extension}") for name in STEMS]


def plan_outputs(paths, output_dir, overwrite=False, subtype=None, extra_targets=None):
  """Every output of a run, checked before any work -> [(input path, its target paths)].

  Targets are output_paths(path) plus `extra_targets(path)` (the demo's figure). Raises one
  UserError (the first problem, and how many more) when: the output folder cannot be written;
  `subtype` is unknown or cannot be written in a target's format; a target is one of the inputs
  (never replaced, even with `overwrite`); two inputs would write the same target (inputs with
  the same name, e.g. a/song.wav and b/song.wav, or song.wav and song.mp3: separate them into
  different folders); a target's name is too long for the file system; a target exists and is not
  a regular file; or it exists and not `overwrite`. A target still free here may be taken by the
  time it is written: AtomicStemWriters then keeps the other file (unless `overwrite`).
  """
  import soundfile
  from tf_drnn.atomic import check_output_dir
  check_output_dir(output_dir)
  paths = [os.fspath(p) for p in paths]
  problems = []
  if subtype is not None and subtype.upper() not in soundfile.available_subtypes():
    problems.append(f"unknown --subtype={subtype} (choose one of {', '.join(sorted(soundfile.available_subtypes()))})")
  inputs = _file_ids(paths)
  owners, plan, existing = {}, [], []
  for path in paths:
    audio = output_paths(path, output_dir)
    targets = audio + list(extra_targets(path) if extra_targets else [])
    for target in targets:
      problem = _naming_problem(target, path, owners)
      if problem:
        problems.append(problem)
        continue
      if target in audio and subtype is not None and not problems:
        problems += _format_problems(target, subtype)
      if not os.path.lexists(target):
        continue
      problem = _existing_target_problem(target, inputs)
      if problem:
        problems.append(problem)
      elif not overwrite:
        existing.append(f"{target}: already exists (pass --overwrite to replace it)")
    plan.append((path, targets))
  problems += existing  # Last: --overwrite is suggested only where it loses nothing but old outputs.
  if problems:
    more = f" (and {len(problems) - 1} more problem(s) with the outputs)" if len(problems) > 1 else ""
    raise UserError(problems[0] + more)
  return plan


def _file_ids(paths):
  """{(device, inode)} of the files at `paths` that exist (a missing input is reported when its turn comes)."""
  ids = set()
  for path in paths:
    try:
      status = os.stat(path)
      ids.add((status.st_dev, status.st_ino))
    except OSError:
      pass
  return ids


def _naming_problem(target, path, owners):
  """Why input `path` cannot write `target` by its name (too long, or another input's target), or
  None; `owners` ({real path: input}) then records `path` as its writer."""
  from tf_drnn.atomic import name_length_problem
  too_long = name_length_problem(target)
  if too_long:
    return f"{target}: {too_long}; rename the input or choose a shorter --output_dir"
  key = os.path.realpath(target)
  if key in owners:
    return (f"{target}: both {owners[key]} and {path} would write it (inputs with the same name); "
            "separate them into different --output_dir folders")
  owners[key] = path
  return None


def _format_problems(target, subtype):
  """[why --subtype cannot be written in the format of target's extension], or []."""
  import soundfile
  fmt = os.path.splitext(target)[1].lstrip(".").upper()
  if soundfile.check_format(fmt, subtype.upper()):
    return []
  return [f"{target}: --subtype={subtype} cannot be written as {fmt}"]


def _existing_target_problem(target, inputs):
  """Why the existing `target` can never be replaced (an input of the run, not a regular file), or None."""
  try:
    status = os.stat(target)
    is_input = (status.st_dev, status.st_ino) in inputs
  except OSError:
    is_input = False
  if is_input:
    return f"{target}: is an input of this run, never overwritten; choose another --output_dir"
  if not os.path.isfile(target):
    return f"{target}: exists and is not a regular file; it cannot be replaced"
  return None


class AtomicStemWriters:
  """Writes the stems to temporary files; both are put in place together, only when all is
  written (tf_drnn.atomic.atomic_outputs). A failed write is an OutputError naming the target.

  overwrite: replace existing targets; False: the stems appear only if both targets are still
  free at that moment (another run may have written them meanwhile), else an OutputError.
  """

  def __init__(self, targets, info, source_path, subtype, overwrite=False):
    import contextlib
    self.targets, self.info, self.subtype, self.overwrite = targets, info, subtype, overwrite
    self.files = []
    self._stack = contextlib.ExitStack()

  def open(self, rate, channels):
    import soundfile
    for target, tmp in zip(self.targets, self.tmps):
      fmt = os.path.splitext(target)[1].lstrip(".").upper()
      subtype = self.subtype or (self.info.subtype if self.info is not None and fmt == self.info.format
                                 else None)
      if subtype is not None and not soundfile.check_format(fmt, subtype):
        subtype = None  # The input's subtype does not fit this format (--subtype is checked up front).
      try:
        self.files.append(self._stack.enter_context(
            soundfile.SoundFile(tmp, "w", samplerate=rate, channels=channels, format=fmt, subtype=subtype)))
      except (OSError, RuntimeError) as error:
        raise output_error(target, error) from None

  def write(self, stems):
    for target, f, stem in zip(self.targets, self.files, stems):
      try:
        f.write(np.clip(stem, -1.0, 1.0) if f.subtype.startswith("PCM") else stem)
      except (OSError, RuntimeError) as error:
        raise output_error(target, error) from None

  def __enter__(self):
    from tf_drnn.atomic import atomic_outputs
    self._stack.__enter__()
    try:
      self.tmps = self._stack.enter_context(atomic_outputs(self.targets, self.overwrite))
    except OSError as error:
      self._stack.__exit__(None, None, None)
      raise output_error(self.targets[0], error) from None
    return self

  def __exit__(self, exc_type, exc, tb):
    try:
      return self._stack.__exit__(exc_type, exc, tb)
    except (OSError, RuntimeError) as error:  # Flushing or renaming into place failed.
      if exc is not None:
        raise exc from None
      raise output_error(getattr(error, "filename", None) or self.targets[0], error) from None


def output_error(target, error):
  """An OSError or libsndfile error while writing `target` -> OutputError (fatal: full disk, read-only)."""
  import errno
  import shutil
  fatal_codes = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM)
  code = getattr(error, "errno", None)
  if isinstance(error, FileExistsError):  # Free when planned, taken when the stems were done.
    return OutputError(target, "already exists: written while this input was separated (another run?); "
                       "kept, nothing written for this input (pass --overwrite to replace it)")
  if isinstance(error, OSError) and code:
    return OutputError(target, f"cannot write: {os.strerror(code)}", fatal=code in fatal_codes)
  line = first_line(error)
  try:
    full = shutil.disk_usage(os.path.dirname(os.path.abspath(target))).free < 1 << 20
  except OSError:
    full = False
  if full:
    return OutputError(target, f"cannot write: {os.strerror(errno.ENOSPC)}", fatal=True)
  # libsndfile reports every failed write(2) as "System error." (the errno is not kept).
  return OutputError(target, f"cannot write ({line})", fatal="System error" in line)
