"""tf_drnn_export: streaming TFLite export of tf_drnn models (`tf-drnn-export`, :mod:`.cli`).

:mod:`.convert` (export_tflite) runs the steps of the other modules: :mod:`.conversion` (the two
streaming signatures, the converter, the checks of a converted file), :mod:`.flatbuffer` (float16
weights), :mod:`.calibration` (int8 calibration data, head equalization) and :mod:`.sidecar` (the
output paths, the sidecar FILE.json, writing both files together). :mod:`.private_api` names the
private TFLite APIs they use.
"""
