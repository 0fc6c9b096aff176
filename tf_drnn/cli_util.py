"""Shared command-line helpers: one clear error line instead of a traceback."""
import os
import sys

from tf_drnn.errors import UserError


def quiet_tensorflow():
  """Silences TensorFlow's C++ start-up chatter (CUDA probes, CPU feature notes)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_guarded(function):
  """Runs `function`; a UserError (bad file, flag, directory) exits 2 with one line on stderr."""
  try:
    return function()
  except UserError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)


def run_app(define_flags, main):
  """Entry point of an absl command: quiet TF, define the flags, run main."""
  from absl import app
  quiet_tensorflow()
  define_flags()
  app.run(main)
