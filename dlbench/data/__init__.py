"""Ground-truth datasets: the registry by name and the data folder.

Every dataset class is a GroundTruthData (dlbench.data.ground_truth) constructed with no
arguments to get the standard dataset. `dlb_data` also uses these static methods where a class has
them: default_path(), file_status(path) -> 'real' | 'synthetic' | 'missing' | 'corrupt',
verify_file(path) -> report dict, describe(path) -> dict, make(path, ...) for datasets that can
be generated, download(path); a class may set a method to None (e.g. `make = None`), which
`dlb_data` treats as absent. A class whose path is a folder of files rather than one file sets
`path_is_folder = True` (dlb_data checks --path against it). Datasets generated in memory
(pinwheel, linear_gaussian) have no file: their default_path() is None and file_status() is
'generated'.

Users choose a dataset by name and, through gin's `dataset.options`, set the constructor arguments
its class lists in `options` (the others, such as file paths, are for tests). A run records both in
run.json ('dataset', 'dataset_options'), and every stage rebuilds its dataset with
dataset_from_record(), so training, evaluation and anything after see the same data.
"""

import json
import math
import os
from pathlib import Path

from dlbench.data import files
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
from dlbench.errors import OtherDataFound, UserError

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
    """The folder holding dataset files: $DLBENCH_DATA, default ~/.cache/dlbench. Absolute: a dataset
    reads its images when first asked, and a --representation's code may have changed the current
    folder by then (os.chdir), where a relative root had called the file corrupt."""
    root = os.environ.get("DLBENCH_DATA")
    return Path(root).expanduser().absolute() if root else Path.home() / ".cache" / "dlbench"


def check_data_root(writing=True):
    """A UserError when the data root cannot hold dataset files (is a file, or under one; or, when
    `writing`, cannot be made): found before a study starts, not by each of its runs in turn."""
    root = data_root()
    existing = next(path for path in [root, *root.parents] if path.exists())
    if not existing.is_dir():
        where = "a file" if existing == root else f"under a file, '{existing}'"
        raise UserError(f"the data folder '{root}' (DLBENCH_DATA) is {where}; set DLBENCH_DATA to a folder")
    if writing and existing != root and not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"the data folder '{root}' (DLBENCH_DATA) cannot be made in '{existing}'; "
                        f"set DLBENCH_DATA to a folder you may write to")


def available_datasets():
    return sorted(DATASETS)


def get_dataset_class(name):
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}") from None


def get_dataset(name, **kwargs):
    """An instance of the dataset registered under name."""
    cls = get_dataset_class(name)
    if "path" not in kwargs:  # a path given (tests) is the caller's to check
        refuse_a_file_in_its_place(cls)
    return cls(**kwargs)


def refuse_a_file_in_its_place(cls):
    """A UserError when a file stands where the dataset's folder goes (files.refuse_a_file_in_the_way):
    its loader would call the dataset missing, or fail to generate it there."""
    path = cls.default_path()
    if path is not None:  # None: generated in memory
        files.refuse_a_file_in_the_way(cls.name, path, getattr(cls, "path_is_folder", False))


def checked_dataset_options(name, options):
    """`options` for dataset `name` as a new dict of plain JSON values (what run.json holds, so
    a run's identity compares equal after the round trip); a UserError for anything else."""
    accepted = tuple(get_dataset_class(name).options)
    if not isinstance(options, dict):
        raise UserError(f"dataset.options must be a dict such as {{'seed': 3}}, got {options!r}")
    unknown = [key for key in options if key not in accepted]
    if unknown:
        takes = f"it accepts {', '.join(accepted)}" if accepted else "it takes no options"
        raise UserError(f"dataset {name!r} has no option {unknown[0]!r} (dataset.options); {takes}")
    return {key: _plain_json(name, key, options[key]) for key in sorted(options)}


def _plain_json(name, key, value):
    """value with tuples made lists; a UserError unless it is made of numbers, strings, booleans,
    None and lists."""
    if isinstance(value, (list, tuple)):
        return [_plain_json(name, key, item) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise UserError(f"dataset {name!r} option {key!r} must be a number, string or list of them "
                    f"(a plain JSON value, recorded in run.json), got {value!r}")


_KEPT = None  # {(name, options, data root): dataset} while datasets are kept loaded (keep_loaded)


def keep_loaded(enabled=True):
    """From now on (enabled) dataset_from_record hands back the dataset it built before for the
    same name, options and data root, instead of reading the file again: a study's worker loads
    its dataset once, not once per run. Only the latest dataset is kept, to bound memory.
    Returns the previous setting, for restoring it."""
    global _KEPT
    previous = _KEPT is not None
    _KEPT = ({} if _KEPT is None else _KEPT) if enabled else None
    return previous


def dataset_from_record(record, error=OtherDataFound):
    """The dataset of a run, from its run.json (or its identity): the name, and the options,
    which runs written before options existed do not have. Where the record also holds the
    settings the dataset resolved to at training, the rebuilt one must match them (a changed
    generator would otherwise evaluate a model on data it never saw). Data of another shape than
    the one recorded is an `error` (check_dataset_shape)."""
    name = record["dataset"]
    if name not in available_datasets():  # a config's name is checked before: this is a run.json's
        raise UserError(f"the run's dataset {name!r} (its run.json) is none of this dlbench's: "
                        f"{', '.join(available_datasets())}; use the dlbench version that trained it, or mend run.json")
    options = checked_dataset_options(name, record.get("dataset_options", {}))
    key = (name, json.dumps(options, sort_keys=True), str(data_root()))
    if _KEPT is not None and key in _KEPT:
        data = _KEPT[key]
    else:
        cls = get_dataset_class(name)
        refuse_a_file_in_its_place(cls)  # before the shape of a synthetic file that could not be made there
        generated = cls.shape_if_generated()
        if generated is not None:
            check_shape(record, generated, f"the synthetic {name} that would be generated under {data_root()}", error)
        data = get_dataset(name, **options)
        if _KEPT is not None:
            _KEPT.clear()
            _KEPT[key] = data
    recorded = record.get("dataset_settings")
    if recorded is not None and hasattr(data, "settings"):
        rebuilt = json.loads(json.dumps(data.settings()))
        changed = [key for key in recorded if key in rebuilt and rebuilt[key] != recorded[key]]
        if changed:
            raise UserError(f"dataset {name!r} rebuilt from run.json differs from the one the run trained on "
                            f"in {', '.join(changed)}; evaluate with the dlbench version that trained it")
    check_dataset_shape(record, data, error)
    return data


def dataset_shape(data):
    """What a run records of the data it trains on (run.json's dataset_shape), for every later
    stage to find again: how many observations there are and, for discrete factors, their grid.
    Two files of one dataset's name can differ: a reduced grid (dlb_data make --keep), a
    DLBENCH_DATA pointed elsewhere."""
    shape = {"observations": int(len(data))}
    if not getattr(data, "continuous_factors", False):
        shape["factor_sizes"] = [int(n) for n in data.factors_num_values]
    kept = data.kept_classes() if hasattr(data, "kept_classes") else {}
    if kept:  # which values a reduced grid keeps: two of one shape hold other images
        shape["kept"] = kept
    return shape


def same_grid(recorded, found):
    """Whether the dataset_shape `found` is the `recorded` one. A record written before runs
    recorded a reduced grid's kept classes is compared without them."""
    if "kept" not in recorded:
        found = {key: value for key, value in found.items() if key != "kept"}
    return recorded == found


def is_dataset_shape(shape):
    """Whether shape reads as dataset_shape wrote it."""
    if not isinstance(shape, dict) or not _is_count(shape.get("observations")):
        return False
    sizes, kept = shape.get("factor_sizes", []), shape.get("kept", {})
    return (isinstance(sizes, list) and all(_is_count(n) for n in sizes) and isinstance(kept, dict)
            and all(isinstance(indices, list) and all(map(_is_count, indices)) for indices in kept.values()))


def _is_count(value):
    return type(value) is int and value >= 0


def check_dataset_shape(record, data, error=OtherDataFound):
    """An `error` when data is not the shape of the data the run of `record` trained on (runs
    trained before runs recorded it pass): its metrics, or the rest of its training, would be of
    other data."""
    check_shape(record, dataset_shape(data), f"the {record['dataset']} found under {data_root()}", error)


def kept_text(kept):
    """'posX=0,4,8 scale=0,5' of a dataset_shape's kept classes, by name as run.json sorts them
    ('every value' for none)."""
    return " ".join(f"{name}={','.join(map(str, kept[name]))}" for name in sorted(kept)) if kept else "every value"


def check_shape(record, found, what, error=OtherDataFound):
    """An `error` when the shape `found` of the data `what` describes is not the one `record` holds."""
    recorded = record.get("dataset_shape")
    if recorded is None or (isinstance(recorded, dict) and same_grid(recorded, found)):
        return
    if not is_dataset_shape(recorded):
        raise UserError(f"run.json's dataset_shape ({json.dumps(recorded)[:80]}) is damaged: not a count of observations "
                        "and a list of factor sizes; restore run.json from a copy, or train the run again with "
                        "dlb_train --overwrite")

    same_sizes = found.get("factor_sizes") == recorded.get("factor_sizes")

    def described(shape):
        grid = shape.get("factor_sizes")
        text = f"{shape['observations']:,} observations" + (f" (factor sizes {grid})" if grid else "")
        if same_sizes:  # the sizes alone would read alike: say which values each grid kept
            text += f", the grid kept {kept_text(shape.get('kept'))}"
        return text

    raise error(f"the run trained on {record['dataset']} of {described(recorded)}, but {what} has {described(found)}; "
                f"point DLBENCH_DATA at the data it trained on")
