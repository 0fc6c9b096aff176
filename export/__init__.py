"""tf_drnn_export: streaming TFLite export of tf_drnn models (`tf-drnn-export`, :mod:`.convert`)."""
