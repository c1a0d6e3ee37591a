"""The grid contract across the catalogue: for every full-grid dataset, factor sampling is uniform
over the grid (chi-square) and sample_observations_from_factors returns the image at index_of.

shapes3d, mpi3d and cars3d are checked on miniature files in their own test modules (the
observation at index_of against the file's rows, and chi-square); this module covers dSprites
and the variants built on it, and keeps the list honest: a new full-grid dataset fails the first
test until its grid is checked somewhere.
"""

import numpy as np
import pytest
from scipy import stats

import dlbench.data as data_registry
from dlbench.data.color_dsprites import ColorDSprites
from dlbench.data.dsprites import DSprites
from dlbench.data.noisy_dsprites import NoisyDSprites
from dlbench.data.scream_dsprites import ScreamDSprites

PICTURE = np.random.RandomState(7).randint(0, 256, size=(80, 90, 3)).astype(np.uint8)
BUILDERS = {"dsprites": DSprites, "color_dsprites": ColorDSprites, "noisy_dsprites": NoisyDSprites,
            "scream_dsprites": lambda: ScreamDSprites(scream_image=PICTURE)}
CHECKED_IN_OWN_MODULE = {"shapes3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "cars3d"}


def test_every_full_grid_dataset_has_its_grid_checked():
    full_grid = {name for name, cls in data_registry.DATASETS.items() if _declares_full_grid(cls)}
    assert full_grid == set(BUILDERS) | CHECKED_IN_OWN_MODULE


def _declares_full_grid(cls):
    """False only for classes that set full_grid = False; dSprites decides per file (a property,
    True for the published grid) and its variants inherit that."""
    return cls.full_grid is not False


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_factor_sampling_is_uniform_over_the_grid(tiny_dsprites, name):
    data = BUILDERS[name]()
    cells = data.index_of(data.sample_factors(200 * len(data), np.random.RandomState(11)))
    counts = np.bincount(cells, minlength=len(data))
    assert len(counts) == len(data)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_dsprites_observations_are_the_images_at_index_of(tiny_dsprites):
    """(The variants are checked against the sprite at index_of pixel by pixel in
    test_data_dsprites_variants: mask, colour, noise and patch taken apart.)"""
    data = DSprites()
    factors = data.sample_factors(40, np.random.RandomState(2))
    observations = data.sample_observations_from_factors(factors, np.random.RandomState(3))
    rows = [np.flatnonzero((data.latents_classes[:, 1:] == f).all(axis=1)) for f in factors]
    assert all(len(r) == 1 for r in rows)  # found by searching the file's own class table
    np.testing.assert_array_equal(observations, data.images[np.concatenate(rows)].astype(np.float32))
