"""Shared command-line helpers: one clear error line instead of a traceback."""
import os
import sys

from tf_drnn.errors import UserError


def quiet_tensorflow():
  """Silences TensorFlow's C++ start-up chatter (CUDA probes, CPU feature notes)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 2 still prints CUDA probe errors on CPUs


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


class Terminated(BaseException):
  """Raised by the SIGTERM handler, so that `finally` blocks (atomic writers) clean up on the way out."""


def _raise_terminated(signum, frame):
  raise Terminated()


def install_sigterm_handler():
  """SIGTERM raises Terminated in the main thread (instead of killing the process on the spot)."""
  import signal
  signal.signal(signal.SIGTERM, _raise_terminated)


def interruptible(main):
  """Wraps an absl main: Ctrl-C exits 130 and SIGTERM 143, each with one line on stderr, no traceback.

  The exception unwinds the stack first, so temporary files of unfinished outputs are removed.
  """
  def wrapped(argv):
    try:
      return main(argv)
    except KeyboardInterrupt:
      print("interrupted (Ctrl-C); unfinished outputs were not written", file=sys.stderr)
      sys.exit(130)
    except Terminated:
      print("terminated (SIGTERM); unfinished outputs were not written", file=sys.stderr)
      sys.exit(143)
  return wrapped


def run_app(define_flags, main, import_tensorflow=True):
  """Entry point of an absl command: quiet TF, define the flags, run main (after importing TF quietly)."""
  from absl import app, flags
  quiet_tensorflow()
  define_flags()
  # absl's --help lists the key flags of the main module (sys.argv[0]); a console script's
  # main module is its wrapper, so adopt the defining module's flags for it.
  for flag in flags.FLAGS.get_key_flags_for_module(sys.modules[define_flags.__module__]):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  @interruptible
  def quiet_main(argv):  # Flags are parsed (and --help answered) before TensorFlow loads.
    install_sigterm_handler()
    if import_tensorflow:
      import_tensorflow_quietly()
    return main(argv)
  app.run(quiet_main)


def import_tensorflow_quietly():
  """Imports TensorFlow with stderr (file descriptor 2) sent to /dev/null meanwhile.

  Its native start-up lines (CUDA probes logged before absl::InitializeLog) ignore
  TF_CPP_MIN_LOG_LEVEL and would bury a one-line error. Python exceptions still surface.
  """
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    import tensorflow  # noqa: F401
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
