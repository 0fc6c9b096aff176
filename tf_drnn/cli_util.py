"""Shared command-line helpers: one clear error line instead of a traceback."""
import os
import sys

from tf_drnn.errors import UserError, first_line


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


def check_arguments(argv, usage=None):
  """Refuses what absl leaves over after the flags in a command that takes flags only:
  `--random_shift false` is --random_shift (on) and a stray argument `false`. UserError."""
  extra = argv[1:]
  if extra:
    raise UserError(f"unexpected argument{'s' * (len(extra) > 1)} {' '.join(repr(a) for a in extra)}: "
                    "this command takes flags only (a boolean flag is written --name, --noname or --name=false)")


def parse_flags(argv):
  """absl's parsing with our one-line errors: an unknown flag, a bad value or a missing required
  flag is `error: ...` on stderr and exit 2, not absl's FATAL block."""
  from absl import flags
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    message = first_line(error, limit=None)
    missing = [name for name in flags.FLAGS if flags.FLAGS[name].value is None
               and f"--{name} must have a value other than None" in message]
    if missing:
      message = f"--{missing[0]} is required (see --help)"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_app(define_flags, main, import_tensorflow=True, usage=None):
  """Entry point of an absl command: quiet TF, define the flags, run main (after importing TF quietly).

  usage: the synopsis `--help` starts with, positional arguments included (e.g. "tf-drnn-separate
  --output_dir=DIR FILE [FILE ...]"). Without one, the command takes flags only, and a stray
  argument is an error line.
  """
  from absl import app, flags
  quiet_tensorflow()
  define_flags()
  # absl's --help lists the key flags of the main module (sys.argv[0]); a console script's
  # main module is its wrapper, so adopt the defining module's flags for it.
  module = sys.modules[define_flags.__module__]
  for flag in flags.FLAGS.get_key_flags_for_module(module):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  sys.modules["__main__"].__doc__ = f"usage: {usage or os.path.basename(sys.argv[0]) + ' [flags]'}\n"

  try:
    app.run(command_main(main, import_tensorflow, usage), flags_parser=parse_flags)
  except SystemExit as stop:  # absl ends --help with status 1; asking for help is no failure.
    if stop.code == 1 and set(sys.argv[1:]) & {"--help", "-h", "-?", "--helpshort", "--helpfull"}:
      sys.exit(0)
    raise


def command_main(main, import_tensorflow=True, usage=None):
  """What `app.run` runs after parsing the flags: SIGTERM handling, the stray-argument check of a
  flags-only command (usage None), TensorFlow imported quietly, then `main(argv)`."""
  @interruptible
  def quiet_main(argv):  # Flags are parsed (and --help answered) before TensorFlow loads.
    install_sigterm_handler()
    if usage is None:
      run_guarded(lambda: check_arguments(argv))
    if import_tensorflow:
      run_guarded(import_tensorflow_quietly)
    return main(argv)
  return quiet_main


def import_tensorflow_quietly():
  """Imports TensorFlow with stderr (file descriptor 2) sent to /dev/null meanwhile.

  Its native start-up lines (CUDA probes logged before absl::InitializeLog) ignore
  TF_CPP_MIN_LOG_LEVEL and would bury a one-line error. Python exceptions still surface; TensorFlow
  not installed at all (the base install is the LiteRT runtime) is a UserError saying what to install.
  """
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    import tensorflow  # noqa: F401
  except ModuleNotFoundError as error:
    if error.name != "tensorflow":
      raise
    raise UserError(TENSORFLOW_MISSING) from None
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


TENSORFLOW_MISSING = ('TensorFlow is not installed: Keras models (the bundled ones), training and export need '
                      'pip install "tf-drnn[train]"; this install runs exported .tflite models '
                      '(e.g. tf-drnn-separate --model=FILE.tflite)')
