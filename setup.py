"""dlbench: a PyTorch benchmark harness for disentangled representation learning."""

import glob
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, "dlbench", "__init__.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


def gin_data_files():
    """gin/ is installed to <prefix>/share/dlbench/gin, where dlbench.config.gin_dir looks."""
    folders = {}
    for path in glob.glob("gin/**/*.gin", recursive=True):
        folders.setdefault(os.path.join("share", "dlbench", os.path.dirname(path)), []).append(path)
    return sorted(folders.items())


setup(
    name="dlbench",
    version=read_version(),
    description="Benchmark harness for disentangled representation learning, on PyTorch",
    long_description=open(os.path.join(HERE, "README.md")).read() if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dlbench", "dlbench.*"]),
    scripts=sorted(glob.glob("bin/dlb_*")),
    data_files=gin_data_files(),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1", "gin-config>=0.5", "numpy>=1.24", "scipy>=1.10", "scikit-learn>=1.3",
        "pandas>=2.0", "h5py>=3.8", "tqdm>=4.60", "matplotlib>=3.8", "pillow>=9",
        "pyarrow>=10",
    ],
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3.2", "submitit>=1.5", "ray>=2.9", "selenium>=4.10"], "slurm": ["submitit>=1.5"], "ray": ["ray>=2.9"]},
)
