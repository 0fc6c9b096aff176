"""Exports a trained model as a streaming TFLite file with two signatures.

    separate_frame: magnitude [1, bins], state [1, N]  -> vocals, accompaniment [1, bins], next_state
    separate_pcm:   pcm [1, hop],        state [1, M]  -> vocals, accompaniment [1, hop],  next_state

Both run the very layers of the Keras model through :class:`tf_drnn.streaming.FrameStream`
and :class:`tf_drnn.streaming.PcmStream` (one step each, so the recurrence unrolls and the
graph has no control flow). The state is one flat float32 tensor: zeros start a stream, and
each call's `next_state` is the next call's `state`. Only builtin TFLite ops are allowed
(no Select TF ops, no Flex delegate); every file is checked for that and run once under
LiteRT before it is written.

Quantization:
  float32  none.
  float16  weights stored as float16 (dequantized to float32 at load time).
  dynamic  dynamic-range quantization: int8 weights, float activations (hybrid kernels).
  int8     full integer quantization of the dense layers (FULLY_CONNECTED / BATCH_MATMUL:
           int8 weights and activations, calibrated on spectrogram frames fed in sequence
           through the float stream, so the recurrent state inputs are realistic). Everything
           else stays float: the features' LOG and the mask's DIV have no useful int8 form
           (an int8 DIV aborts at run time once a calibrated divisor rounds to zero), and
           RFFT2D has no int8 kernel. Before calibration, a joint-mask model's two heads are
           equalized per frequency bin (see calibration.equalize_head_ranges): the mask is
           unchanged, and every bin then uses the whole int8 range of the heads' output.

A sidecar FILE.json beside FILE.tflite records the audio settings, sizes, delays and
signature layouts an app needs (see docs/on_device.md); exporting a bundled model adds the
measured size, per-frame time and quality of both bundled models (`reference_figures`).

The steps live in the package's modules: conversion (the signatures, the converter, the checks
of a converted file), flatbuffer (float16 weights), calibration (int8) and sidecar (the output
paths, the sidecar, writing both files). They import TensorFlow lazily, so `tf-drnn-export --help`
stays fast.
"""
import os

from tf_drnn.errors import UserError

from .calibration import DEFAULT_CALIBRATION_FRAMES
from .conversion import QUANTIZATIONS, SIGNATURES, check_builtin_only, convert_streaming, signature_layout, smoke_run
from .sidecar import check_output_paths, sidecar_record, write_export


def export_tflite(model, output_path, quantization="float32", calibration_magnitudes=None,
                  calibration_audio=None, model_path=None, max_calibration_steps=DEFAULT_CALIBRATION_FRAMES):
  """Converts `model` to a streaming TFLite file and writes it with its JSON sidecar.

  Args:
    model: A Keras model from :func:`tf_drnn.model.build_model` (trained or loaded).
    output_path: FILE.tflite; the sidecar goes to FILE.json. Both are written atomically, together
      (a write that fails is a UserError "PATH: cannot write (reason)", and neither file changes).
    quantization: One of QUANTIZATIONS.
    calibration_magnitudes: int8 only: magnitude frames [frames, bins], or a list of such
      sequences (each streamed from zero state). The PCM signature is calibrated on audio
      resynthesized from them with random phase.
    calibration_audio: int8 only, instead of magnitudes: a list of mono waveforms at
      the model's sample rate (real mixtures); both signatures are calibrated on them.
    model_path: Where the model came from (recorded in the sidecar; never overwritten).
    max_calibration_steps: Calibration steps per signature (frames or hops).

  Returns:
    The sidecar dict.
  """
  if quantization not in QUANTIZATIONS:
    raise UserError(f"unknown quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
  output_path = os.fspath(output_path)
  check_output_paths(output_path, model_path)
  if quantization == "int8" and calibration_magnitudes is None and calibration_audio is None:
    raise UserError("int8 quantization needs calibration data (--data_dir with MIR-1K)")

  from tf_drnn.model import audio_config
  config = audio_config(model)  # The STFT the model was trained with (saved in its file).
  content, endpoints, calibration = convert_streaming(model, quantization, config, calibration_magnitudes,
                                                      calibration_audio, max_calibration_steps)
  ops = check_builtin_only(content)
  smoke_run(content)
  layout = signature_layout(content)
  missing = [key for key in SIGNATURES if key not in layout]
  if missing:
    raise RuntimeError(f"the converted model lacks the signatures {', '.join(missing)}")
  sidecar = sidecar_record(model, config, endpoints, quantization, model_path, output_path, content, ops, layout)
  if calibration is not None:
    calibration["source"] = "audio" if calibration_audio is not None else "magnitudes"
    sidecar["calibration"] = calibration
  write_export(output_path, content, sidecar)
  return sidecar
