"""Atomic file output: write to a temporary file beside the target, rename on success.

A reader never sees a half-written file; a failure leaves the previous file (if any) and
no temporary behind.
"""
import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path):
  """Yields a temporary path (same folder and extension as `path`); renamed to `path` on success."""
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


@contextlib.contextmanager
def atomic_outputs(paths):
  """Like :func:`atomic_output` for files replaced together or not at all: yields temporary paths.

  On success every target is replaced; if one rename fails (say a target became a directory), the
  targets already replaced get their previous files back. No temporary or backup file is left behind.
  """
  paths = [os.fspath(p) for p in paths]
  tmps = []
  try:
    for path in paths:
      directory = os.path.dirname(os.path.abspath(path))
      os.makedirs(directory, exist_ok=True)
      fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
      os.close(fd)
      tmps.append(tmp)
    yield list(tmps)
    for tmp in tmps:
      os.chmod(tmp, 0o666 & ~_umask())
    _replace_together(tmps, paths)
  finally:
    for tmp in tmps:
      if os.path.exists(tmp):
        os.remove(tmp)


def _replace_together(tmps, paths):
  """os.replace(tmp, path) for each pair; on any failure the previous files are put back."""
  import errno
  for path in paths:
    if os.path.isdir(path):
      raise IsADirectoryError(errno.EISDIR, "is a directory, cannot be replaced", path)
  backups, replaced = [], []
  try:
    for path in paths:
      if os.path.lexists(path):
        fd, backup = tempfile.mkstemp(prefix=".tmp-old-", dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
        try:
          os.replace(path, backup)
        except BaseException:
          os.remove(backup)
          raise
        backups.append((backup, path))
    for tmp, path in zip(tmps, paths):
      os.replace(tmp, path)
      replaced.append(path)
  except BaseException:
    restored = {path for _, path in backups}
    for path in replaced:
      if path not in restored:
        os.remove(path)  # There was no file before.
    for backup, path in backups:
      if os.path.lexists(backup):
        os.replace(backup, path)
    raise
  for backup, _ in backups:
    os.remove(backup)


def write_json(path, data):
  """json.dump with indentation, atomically."""
  with atomic_output(path) as tmp, open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True)
    f.write("\n")


def write_text(path, text):
  with atomic_output(path) as tmp, open(tmp, "w") as f:
    f.write(text)


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def check_output_dir(directory):
  """Raises UserError unless `directory` is (or can be created as) a writable folder.

  Checked before any work, so a bad output path fails at the start in one line: the path is a
  file, lies under a file, or its nearest existing folder is not writable.
  """
  from tf_drnn.errors import UserError
  directory = os.path.abspath(os.fspath(directory))
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise UserError(f"{directory}: exists and is not a directory")
  existing = nearest_existing(directory)
  if not os.path.isdir(existing):
    raise UserError(f"{directory}: cannot create it: {existing} is a file, not a directory")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise UserError(f"{existing}: the output folder is not writable (permission denied or read-only)")


def check_output_file(path):
  """Raises UserError unless `path` can be written: not a directory, its folder creatable and writable."""
  from tf_drnn.errors import UserError
  path = os.fspath(path)
  if os.path.isdir(path):
    raise UserError(f"{path}: is a directory; name an output file")
  existing = nearest_existing(os.path.dirname(os.path.abspath(path)))
  if not os.path.isdir(existing):
    raise UserError(f"{path}: cannot create it: {existing} is a file, not a directory")
  check_output_dir(os.path.dirname(os.path.abspath(path)))
  if os.path.lexists(path) and not os.path.isfile(path):
    raise UserError(f"{path}: exists and is not a regular file")


def nearest_existing(path):
  """`path` (absolute) or its nearest ancestor that exists (a folder, or a file in the way)."""
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  return path
