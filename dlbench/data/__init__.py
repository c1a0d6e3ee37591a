"""Ground-truth datasets: the registry by name and the data folder.

Every dataset class is a GroundTruthData (dlbench.data.ground_truth) constructed with no
arguments to get the standard dataset. `dlb_data` also uses these static methods where a class has
them: default_path(), file_status(path) -> 'real' | 'synthetic' | 'missing' | 'corrupt',
verify_file(path) -> report dict, describe(path) -> dict, make(path, ...) for datasets that can
be generated, download(path). Datasets generated in memory (pinwheel, linear_gaussian) have no
file: their default_path() is None and file_status() is 'generated'.
"""

import os
from pathlib import Path

from dlbench.data.dsprites import DSprites
from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.data.pinwheel import Pinwheel
from dlbench.errors import UserError

DATASETS = {
    "dsprites": DSprites,
    "linear_gaussian": LinearGaussian,
    "pinwheel": Pinwheel,
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
