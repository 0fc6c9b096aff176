"""The machine and software a benchmark ran on (recorded in results.json)."""
import datetime
import os
import platform
import sys


def cpu_model():
  """The CPU's model name: /proc/cpuinfo where present (Linux, x86 or ARM), else platform.processor()."""
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
  except OSError:
    text = ""
  for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
    for line in text.splitlines():
      name, _, value = line.partition(":")
      if name.strip() == key and value.strip():
        return value.strip()
  if sys.platform == "darwin":
    import subprocess
    try:
      return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                            text=True, timeout=5).stdout.strip() or platform.processor()
    except (OSError, subprocess.SubprocessError):
      pass
  return platform.processor() or platform.machine()


def usable_cores():
  """Cores this process may run on (the affinity mask where the OS has one)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def _version(module_name, distribution=None):
  try:
    from importlib import metadata
    return metadata.version(distribution or module_name)
  except Exception:  # Not installed (or no metadata): try the module itself.
    try:
      module = __import__(module_name)
      return getattr(module, "__version__", None)
    except ImportError:
      return None


def load_average():
  """The 1, 5 and 15 minute load averages (None where the OS has none): a busy machine's timings mean little."""
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except (AttributeError, OSError):
    return None


def describe_environment():
  """A dict for results.json: machine, CPU, cores, versions and the date (UTC)."""
  import numpy
  return {
      "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "machine": platform.machine(),
      "system": platform.system(),
      "platform": platform.platform(),
      "cpu_model": cpu_model(),
      "cpu_count": os.cpu_count(),
      "usable_cores": usable_cores(),
      "python": platform.python_version(),
      "numpy": numpy.__version__,
      "tensorflow": _version("tensorflow"),
      "keras": _version("keras"),
      "ai_edge_litert": _version("ai_edge_litert", "ai-edge-litert"),
      "load_average_at_start": load_average(),
  }


def one_line(environment):
  """"AMD EPYC, x86_64, 2 cores, Linux" for summaries."""
  return (f"{environment.get('cpu_model')} ({environment.get('machine')}, {environment.get('usable_cores')} "
          f"usable cores, {environment.get('system')}); Python {environment.get('python')}, "
          f"NumPy {environment.get('numpy')}, TensorFlow {environment.get('tensorflow')}, "
          f"ai-edge-litert {environment.get('ai_edge_litert')}; {environment.get('date_utc')}"
          + (f"; load average {environment['load_average_at_start'][0]:.1f} at start"
             if environment.get("load_average_at_start") else ""))
