"""Runs exported .tflite files with LiteRT (ai-edge-litert), the way an app streams them.

    separate = tflite_separate_fn("m.tflite")          # reads m.json, the sidecar
    vocals, accompaniment = separate(mixture)          # mono float32 at 16 kHz, aligned to the input
"""
import json

import numpy as np

from tf_drnn.errors import UserError


def make_interpreter(path, threads=1, xnnpack=True):
  """A LiteRT Interpreter for `path`; xnnpack=False disables the default (XNNPACK) delegate."""
  from ai_edge_litert.interpreter import Interpreter, OpResolverType
  resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  return Interpreter(model_path=str(path), num_threads=int(threads), experimental_op_resolver_type=resolver)


def read_sidecar(path):
  """The sidecar dict of FILE.tflite (FILE.json); a UserError naming the file when it is missing."""
  from tf_drnn_export.convert import sidecar_path
  sidecar = sidecar_path(path)
  try:
    with open(sidecar) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{sidecar}: no such file (the sidecar tf-drnn-export writes beside {path})") from None
  except json.JSONDecodeError as error:
    raise UserError(f"{sidecar}: not valid JSON ({error})") from None


def stream_pcm(runner, mixture, hop, latency_samples):
  """Feeds a mono waveform [samples] hop by hop through a `separate_pcm` runner from zero state,
  flushing with `latency_samples` zeros; returns (vocals, accompaniment) [samples], aligned."""
  state = np.zeros(runner.get_input_details()["state"]["shape"], np.float32)
  padded = np.zeros(-(-(len(mixture) + latency_samples) // hop) * hop, np.float32)
  padded[:len(mixture)] = mixture
  vocals, accompaniment = [], []
  for block in padded.reshape(-1, 1, hop):
    outputs = runner(pcm=block, state=state)
    state = outputs["next_state"]
    vocals.append(outputs["vocals"][0])
    accompaniment.append(outputs["accompaniment"][0])
  cut = slice(latency_samples, latency_samples + len(mixture))
  return np.concatenate(vocals)[cut], np.concatenate(accompaniment)[cut]


def tflite_separate_fn(path, threads=1, xnnpack=True):
  """mixture [samples] -> (vocals, accompaniment) through the file's `separate_pcm` signature."""
  sidecar = read_sidecar(path)
  runner = make_interpreter(path, threads, xnnpack).get_signature_runner("separate_pcm")
  hop, latency = int(sidecar["hop_length"]), int(sidecar["latency_samples"])
  return lambda mixture: stream_pcm(runner, mixture, hop, latency)
