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
  from absl import app, flags
  quiet_tensorflow()
  define_flags()
  # absl's --help lists the key flags of the main module (sys.argv[0]); a console script's
  # main module is its wrapper, so adopt the defining module's flags for it.
  for flag in flags.FLAGS.get_key_flags_for_module(sys.modules[define_flags.__module__]):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)
