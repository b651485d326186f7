"""Packaging for samplenet: sample-level neural audio models in TensorFlow 2 / Keras 3."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="samplenet",
    version="0.1.0",
    description="Sample-level neural audio generation (SampleRNN, WaveNet) and neural codecs "
    "in TensorFlow 2 / Keras 3",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["samplenet", "samplenet.*"]) + ["samplenet.configs"],
    package_dir={"samplenet.configs": "configs"},
    package_data={"samplenet.configs": ["*.json"]},
    install_requires=[
        "tensorflow>=2.18",
        "keras>=3.5",
        "numpy",
        "librosa>=0.10",
        "soundfile",
        "soxr",
        "absl-py",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "matplotlib"],
        "plots": ["matplotlib"],
        "tfio": ["tensorflow-io"],
    },
    entry_points={
        "console_scripts": [
            "samplenet-train=samplenet.cli.train:run",
            "samplenet-generate=samplenet.cli.generate:run",
            "samplenet-evaluate=samplenet.cli.evaluate:run",
            "samplenet-analyze=samplenet.analysis.__main__:run",
            "samplenet-codec=samplenet.cli.codec:run",
            "samplenet-export=samplenet.cli.export:run",
        ]
    },
)
