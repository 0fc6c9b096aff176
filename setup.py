"""tf-drnn: singing-voice separation with deep recurrent networks (Huang et al., ISMIR 2014)."""
import re

from setuptools import find_packages, setup

# The one version number: tf_drnn.__version__ (read here without importing the package).
with open("tf_drnn/__init__.py") as _init:
  VERSION = re.search(r'^__version__ = "([^"]+)"', _init.read(), re.M).group(1)

# Keras and the audio/scoring libraries: training, evaluation and the demo under either backend.
KERAS_STACK = ["keras>=3.3", "librosa>=0.10", "scipy", "matplotlib", "tensorboard"]

setup(
    name="tf-drnn",
    version=VERSION,
    description="Singing-voice separation from mono recordings with deep recurrent networks, "
                "trained in Keras and shipped as streaming TFLite (the base install runs .tflite models "
                "under LiteRT without TensorFlow; tf-drnn[train] adds Keras, training and export)",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    keywords=["source separation", "singing voice", "tflite", "litert", "keras"],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    packages=find_packages(include=["tf_drnn", "tf_drnn.*"]) + ["tf_drnn_export"],
    package_dir={"tf_drnn_export": "export"},
    package_data={"tf_drnn": ["pretrained/*.keras", "pretrained/*.flags", "pretrained/*.json"]},
    # The base install is the runtime: separation with an exported .tflite model under LiteRT
    # (tf-drnn-separate --model=FILE.tflite, tf_drnn.Separator("FILE.tflite"), benchmarks/on_device.py),
    # no TensorFlow, Keras or librosa, so that it installs on a phone-class ARM board (aarch64 wheels).
    install_requires=[
        "numpy",
        "soundfile>=0.12",
        "soxr",  # resampling (tf_drnn.audio.resample, the full-band splitter)
        "absl-py",
        "ai-edge-litert",
        "tqdm",
    ],
    extras_require={
        # Everything else: Keras models (the bundled ones), training, export, evaluation, the demo,
        # formats only librosa/audioread decode.
        # Below 2.22: the exporter's int8 path uses private TFLite APIs (tf_drnn_export.private_api,
        # checked by tests/test_export.py) that may move in any minor release.
        "train": ["tensorflow>=2.16,<2.22", *KERAS_STACK],
        "runtime": [],  # the base install; `pip install "tf-drnn[runtime]"` names it
        # test: the suite, its linter, mir_eval (the reference tf_drnn.bss_eval is checked against), JAX on
        # the CPU for the trainer's JAX-backend test, and Beam for the catalogue pipeline's tests (so the
        # suite runs with protobuf 6, the range Beam and TensorFlow share).
        "test": ["tf-drnn[train,beam]", "pytest", "psutil", "ruff", "jax[cpu]", "mir_eval>=0.7,<0.9"],
        "benchmarks": ["tf-drnn[train]", "psutil"],  # benchmarks/run.py exports with TensorFlow
        "jax": [*KERAS_STACK, "jax"],  # tf-drnn-train-jax: training where only JAX is installed (no TensorFlow)
        # tf-drnn-separate-beam. Beam 2.76-2.78 need protobuf<7 and TensorFlow >=6.31.1: pinned
        # to the range both accept (pip downgrades a newer protobuf 7 to it).
        "beam": ["tf-drnn[train]", "apache-beam>=2.76,<2.79", "protobuf>=6.31.1,<7"],
    },
    entry_points={
        "console_scripts": [
            "tf-drnn-train=tf_drnn.train:run",
            "tf-drnn-train-jax=tf_drnn.train:run_jax",
            "tf-drnn-separate=tf_drnn.separate:run",
            "tf-drnn-separate-beam=tf_drnn.beam:run",
            "tf-drnn-evaluate=tf_drnn.evaluate:run",
            "tf-drnn-export=tf_drnn_export.cli:run",
            "tf-drnn-demo=tf_drnn.demo:run",
        ],
    },
)
