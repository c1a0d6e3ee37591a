"""Ground-truth datasets: the registry by name and the data folder.

Every dataset class is a GroundTruthData (dlbench.data.ground_truth) constructed with no
arguments to get the standard dataset. `dlb_data` also uses these static methods where a class has
them: default_path(), file_status(path) -> 'real' | 'synthetic' | 'missing' | 'corrupt',
verify_file(path) -> report dict, describe(path) -> dict, make(path, ...) for datasets that can
be generated, download(path); a class may set a method to None (e.g. `make = None`), which
`dlb_data` treats as absent. Datasets generated in memory (pinwheel, linear_gaussian) have no
file: their default_path() is None and file_status() is 'generated'.
"""

import os
from pathlib import Path

from dlbench.data.cars3d import Cars3D
from dlbench.data.color_dsprites import ColorDSprites
from dlbench.data.dsprites import DSprites
from dlbench.data.fashion_mnist import FashionMnist
from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.data.mpi3d import Mpi3dReal, Mpi3dRealistic, Mpi3dToy
from dlbench.data.noisy_dsprites import NoisyDSprites
from dlbench.data.pinwheel import Pinwheel
from dlbench.data.scream_dsprites import ScreamDSprites
from dlbench.data.shapes3d import Shapes3D
from dlbench.data.smallnorb import SmallNorb
from dlbench.errors import UserError

DATASETS = {
    "cars3d": Cars3D,
    "color_dsprites": ColorDSprites,
    "dsprites": DSprites,
    "fashion_mnist": FashionMnist,
    "linear_gaussian": LinearGaussian,
    "mpi3d_real": Mpi3dReal,
    "mpi3d_realistic": Mpi3dRealistic,
    "mpi3d_toy": Mpi3dToy,
    "noisy_dsprites": NoisyDSprites,
    "pinwheel": Pinwheel,
    "scream_dsprites": ScreamDSprites,
    "shapes3d": Shapes3D,
    "smallnorb": SmallNorb,
}


def data_root():
    """The folder holding dataset files: $DLBENCH_DATA, default ~/.cache/dlbench."""
    root = os.environ.get("DLBENCH_DATA")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dlbench"


def available_datasets():
    return sorted(DATASETS)


def get_dataset_class(name):
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}") from None


def get_dataset(name, **kwargs):
    """An instance of the dataset registered under name."""
    return get_dataset_class(name)(**kwargs)
