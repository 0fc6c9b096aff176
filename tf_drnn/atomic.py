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
