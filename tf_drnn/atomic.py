"""Atomic file output: write to a temporary file beside the target, rename on success.

A reader never sees a half-written file; a failure leaves the previous file (if any) and
no temporary behind. Without `overwrite`, the finished file is hard-linked into place, so it
appears only if its target is still free at that moment (two runs never replace each other).
"""
import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path, overwrite=True):
  """Yields a temporary path (same folder and extension as `path`), put in place as `path` on success.

  overwrite: replace an existing `path` (os.replace); False: appear only if `path` is still free at
  that moment (a hard link, never a replace), else FileExistsError naming `path`. A failure to put
  it in place is an OSError naming `path`, never the temporary file.
  """
  with atomic_outputs([path], overwrite) as tmps:
    yield tmps[0]


@contextlib.contextmanager
def atomic_outputs(paths, overwrite=True):
  """Like :func:`atomic_output` for files put in place together or not at all: yields temporary paths.

  overwrite: on success every target is replaced; if one rename fails (say a target became a
  directory), the targets already replaced get their previous files back. False: each target
  appears only if it is still free when the work is done (another run may have written it
  meanwhile): FileExistsError naming it, and the targets linked before it are removed again.
  No temporary or backup file is left behind.
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
      os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    _commit(tmps, paths, overwrite)
  finally:
    for tmp in tmps:
      if os.path.exists(tmp):
        os.remove(tmp)


def _commit(tmps, paths, overwrite):
  """Puts the finished temporaries in place; an OSError names the target, not the temporary file."""
  try:
    if not overwrite:
      _link_together(tmps, paths)
    elif len(paths) == 1:
      os.replace(tmps[0], paths[0])
    else:
      _replace_together(tmps, paths)
  except OSError as error:
    if error.errno is None:
      raise
    targets = [name for name in (error.filename, error.filename2) if name in paths]
    raise OSError(error.errno, error.strerror, targets[0] if targets else paths[0]) from None


def _link_together(tmps, paths):
  """Links each temporary to its target only where the target is still free (exclusive: never a
  replace); if one is taken, FileExistsError and the targets linked before it are removed again."""
  linked = []
  try:
    for tmp, path in zip(tmps, paths):
      _link_exclusive(tmp, path)
      linked.append(path)
  except BaseException:
    for path in linked:
      os.remove(path)
    raise


def _link_exclusive(tmp, path):
  """os.link(tmp, path); where the file system has no hard links, an exclusive create and a copy."""
  import errno
  import shutil
  try:
    os.link(tmp, path)
    return
  except OSError as error:
    if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK):
      raise
  with open(tmp, "rb") as source, open(path, "xb") as target:  # "x": FileExistsError if taken
    try:
      shutil.copyfileobj(source, target)
    except BaseException:
      os.remove(path)
      raise


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

  Checked before any work, so a bad output path fails at the start in one line: a name in it is
  too long, the path is a file, lies under a file, or its nearest existing folder is not writable.
  """
  from tf_drnn.errors import UserError
  directory = os.path.abspath(os.fspath(directory))
  _check_name_lengths(directory)
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise UserError(f"{directory}: exists and is not a directory")
  existing = nearest_existing(directory)
  if not os.path.isdir(existing):
    raise UserError(f"{directory}: cannot create it: {existing} is a file, not a directory")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise UserError(f"{existing}: the output folder is not writable (permission denied or read-only)")


def check_output_file(path):
  """Raises UserError unless `path` can be written: no name in it too long for the file system, not a
  directory, its folder creatable and writable."""
  from tf_drnn.errors import UserError
  path = os.fspath(path)
  _check_name_lengths(path)
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


def name_length_problem(path):
  """Why `path` cannot be created, a name in it being too long for its file system, or None.

  Each part of `path` that does not exist yet may have os.pathconf(folder, "PC_NAME_MAX") bytes
  (usually 255), asked of the nearest existing folder.
  """
  path = os.path.abspath(os.fspath(path))
  existing = nearest_existing(path)
  if existing == path:
    return None
  folder = existing if os.path.isdir(existing) else os.path.dirname(existing)
  try:
    limit = os.pathconf(folder, "PC_NAME_MAX")
  except (OSError, ValueError):
    limit = 255
  names = os.path.relpath(path, existing).split(os.sep)
  for i, name in enumerate(names):
    size = len(os.fsencode(name))
    if size > limit:
      what = "file name" if i == len(names) - 1 else f"folder name {name[:16]!r}..."
      return f"{what} too long ({size} bytes; this file system allows {limit})"
  return None


def _check_name_lengths(path):
  """Raises UserError naming `path` when :func:`name_length_problem` finds a name too long."""
  from tf_drnn.errors import UserError
  problem = name_length_problem(path)
  if problem:
    raise UserError(f"{path}: {problem}")
