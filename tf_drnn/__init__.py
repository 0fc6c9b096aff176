"""tf-drnn: singing-voice separation with deep recurrent networks (Huang et al., ISMIR 2014).

`tf_drnn.Separator` is imported lazily, so `import tf_drnn` does not load TensorFlow.
"""
__version__ = "0.1.0"
__all__ = ["Separator", "build_model", "DEFAULT_AUDIO_CONFIG"]

from tf_drnn.config import DEFAULT_AUDIO_CONFIG  # noqa: E402  (light)


def __getattr__(name):
  if name == "Separator":
    from tf_drnn.separate import Separator
    return Separator
  if name == "build_model":
    from tf_drnn.model import build_model
    return build_model
  raise AttributeError(f"module 'tf_drnn' has no attribute {name!r}")
