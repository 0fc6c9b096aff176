"""The Keras / TensorFlow side: separation throughput and training throughput.

separation  tf_drnn.Separator on a synthesized song (tf_drnn.synth), after one
            warm-up call that traces the block function: seconds of audio per second.
training    a few steps of the real-size model (the benchmarked model's structure, freshly
            initialized) on the tf.data pipeline of tf_drnn.data.pipeline, with the same step
            as tf-drnn-train (XLA-compiled forward/backward, Adam): frames per second, and
            the input pipeline's share of step time (time waiting in next(iterator) over
            the whole step).
"""
import time

import numpy as np
from tf_drnn.config import DEFAULT_AUDIO_CONFIG


def separation_throughput(model, seconds=30.0, sample_rate=DEFAULT_AUDIO_CONFIG.sample_rate, repeats=1):
  """{"audio_seconds", "wall_seconds", "audio_seconds_per_second"} of Separator.separate."""
  from tf_drnn import Separator
  from tf_drnn.synth import sung_like_mixture
  vocals, accompaniment = sung_like_mixture(seconds, sample_rate, seed=0)
  song = vocals + accompaniment
  separator = Separator(model)
  separator.separate(song[:sample_rate], sample_rate)  # Warm-up: traces the block function.
  best = float("inf")
  for _ in range(max(1, repeats)):
    start = time.perf_counter()
    stems = separator.separate(song, sample_rate)
    best = min(best, time.perf_counter() - start)
  if not np.all(np.isfinite(stems["vocals"])):
    raise RuntimeError("the Separator's output is not finite")
  return {"audio_seconds": float(seconds), "wall_seconds": best,
          "audio_seconds_per_second": float(seconds / best),
          "block_frames": separator.block_samples // separator.config.hop_length}


def training_sources(data_dir=None, clips=4, sample_rate=DEFAULT_AUDIO_CONFIG.sample_rate):
  """(sources, description): a few MIR-1K training clips, or synthesized songs without data."""
  from tf_drnn.data.sources import load_sources
  if data_dir:
    from tf_drnn.data import load_dataset
    tracks = load_dataset("mir1k", data_dir).tracks("train")
    step = max(1, len(tracks) // clips)
    chosen = tracks[::step][:clips]
    return load_sources(chosen), f"{len(chosen)} MIR-1K training clips"
  from tf_drnn.data.base import unit_energy_mix
  from tf_drnn.synth import sung_like_mixture
  sources = []
  for seed in range(clips):
    _, vocals, accompaniment = unit_energy_mix(*sung_like_mixture(8.0, sample_rate, seed=seed))
    sources.append((vocals, accompaniment))
  return sources, f"{clips} synthesized 8 s songs (no --data_dir)"


def training_throughput(structure, sources, steps=5, batch_size=16, sequence_length=100, loss="mse",
                        discriminative_weight=0.05, jit_compile=True, warmup_steps=1):
  """Times `steps` training steps (after `warmup_steps` that compile) of a model of `structure`,
  compiled as tf-drnn-train compiles it, on batches of its example generator.

  structure: tf_drnn.model.describe() of the benchmarked model (architecture, context,
  num_layers, hidden_units, output_format). Returns frames/s, seconds per step and the
  input pipeline's share.
  """
  import keras
  from tf_drnn.data.pipeline import batches
  from tf_drnn.data.sources import statistics_magnitudes
  from tf_drnn.model import ModelParts
  from tf_drnn.train import TrainOptions, compiled_model

  keras.utils.set_random_seed(0)
  options = TrainOptions(data_dir="", model_dir="", loss=loss, discriminative_weight=discriminative_weight,
                         batch_size=batch_size, sequence_length=sequence_length, learning_rate=1e-4,
                         **{k: structure[k] for k in ("architecture", "context", "num_layers", "hidden_units",
                                                      "output_format")})
  model = compiled_model(options, jit_compile)
  ModelParts(model).features.set_statistics(statistics_magnitudes(sources, max_frames=2000))
  frames_per_batch = float(batch_size * sequence_length)
  iterator = batches(sources, batch_size, sequence_length, circular_shift=10000, seed=0)
  start = time.perf_counter()
  for _ in range(warmup_steps):
    model.train_on_batch(*next(iterator))
  compile_seconds = time.perf_counter() - start
  input_time = step_time = 0.0
  losses = []
  for _ in range(steps):
    t0 = time.perf_counter()
    batch = next(iterator)
    t1 = time.perf_counter()
    losses.append(float(model.train_on_batch(*batch)))
    t2 = time.perf_counter()
    input_time += t1 - t0
    step_time += t2 - t0
  if not np.all(np.isfinite(losses)):
    raise RuntimeError("training loss is not finite")
  return {"steps": steps, "batch_size": batch_size, "sequence_length": sequence_length,
          "seconds_per_step": step_time / steps, "frames_per_second": frames_per_batch * steps / step_time,
          "input_pipeline_share": input_time / step_time if step_time > 0 else 0.0,
          "warmup_seconds": compile_seconds, "jit_compile": bool(jit_compile),
          "parameters": int(model.count_params())}
