"""tf-drnn: singing-voice separation with deep recurrent networks (Huang et al., ISMIR 2014)."""
from setuptools import find_packages, setup

setup(
    name="tf-drnn",
    version="0.1.0",
    description="Singing-voice separation from mono recordings with deep recurrent networks, "
                "trained in Keras and shipped as streaming TFLite",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["tf_drnn", "tf_drnn.*"]) + ["tf_drnn_export"],
    package_dir={"tf_drnn_export": "export"},
    package_data={"tf_drnn": ["pretrained/*.keras", "pretrained/*.flags", "pretrained/*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "numpy",
        "librosa>=0.10",
        "soundfile>=0.12",
        "soxr",
        "mir_eval>=0.7,<0.9",
        "absl-py",
        "ai-edge-litert",
        "tqdm",
        "matplotlib",
        "tensorboard",
    ],
    # test: the suite, its linter, and JAX on the CPU for the trainer's JAX-backend test.
    extras_require={"test": ["pytest", "psutil", "ruff", "jax[cpu]"], "benchmarks": ["psutil"],
                    "jax": ["jax"],  # tf-drnn-train-jax: training where only JAX is installed
                    # tf-drnn-separate-beam. Beam 2.76-2.78 need protobuf<7 and TensorFlow >=6.31.1: pinned
                    # to the range both accept (pip downgrades a newer protobuf 7 to it).
                    "beam": ["apache-beam>=2.76,<2.79", "protobuf>=6.31.1,<7"]},
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
