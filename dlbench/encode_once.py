"""Encode once, evaluate everything: for a deterministic representation of a dataset with one
image per grid cell (dSprites, shapes3d, mpi3d, cars3d), every observation a metric could draw is
one of the dataset's N images, so encoding all N once and answering each metric's draws by
index gives the codes the metrics' own draws would. Worth it when the metrics asked for would
encode more than N observations (the FactorVAE protocol alone encodes about a million).

The metrics do not change: they see an EncodedGrid, whose "observations" are grid indices, and a
representation that looks those indices up. The draws from the metric's random state are the
same (the dataset's observations of a grid cell take no randomness), so the factors, and with
them the results, are those of the ordinary path: bit for bit where the encoder's output for an
image does not depend on the batch it is encoded in, within float rounding where it does.
"""

import numpy as np

from dlbench import metrics
from dlbench.data.ground_truth import GroundTruthData

ONCE, PER_DRAW = "once", "per_draw"  # what results.json records as `encoding`


def observations_are_grid_images(data):
    """Whether an observation is a function of its factors alone: a full grid whose observations
    are its stored images (not the dSprites variants, which draw colours or noise per observation,
    nor smallNORB, which draws an instance)."""
    sampler = type(data).sample_observations_from_factors
    return bool(data.full_grid) and sampler is GroundTruthData.sample_observations_from_factors


def worth_encoding_once(data, deterministic, names, params):
    """Whether the representation metrics among `names` would encode more observations than the
    dataset holds, so that encoding the dataset once is cheaper (and exact: see above)."""
    if not deterministic or not observations_are_grid_images(data):
        return False
    drawn = sum(metrics.observations_encoded(name, params.get(name)) for name in names
                if name in metrics.REPRESENTATION_METRICS)
    return drawn > len(data)


def encode_dataset(data, representation_fn, batch_size=4096, progress=False):
    """Codes (N, D) of every image of the dataset, in index order, as representation_fn gives them
    (with a progress bar and its ETA on stderr when `progress`)."""
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(data), desc="encoding the dataset once", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(data), batch_size):
            index = np.arange(start, min(start + batch_size, len(data)))
            parts.append(np.asarray(representation_fn(data.observations_at(index))))
            bar.update(len(index))
    return np.concatenate(parts)


class EncodedGrid:
    """The dataset as the metrics see it once it is encoded: the same factors and sampling, but an
    observation is its grid index (see encoded_representation)."""

    def __init__(self, data):
        self.data = data

    def __getattr__(self, name):  # factor names and counts, sample_factors, index_of, ...
        return getattr(self.data, name)

    def __len__(self):
        return len(self.data)

    def sample_observations_from_factors(self, factors, random_state):
        del random_state  # as the grid's own: one image per cell, no randomness
        return self.data.index_of(factors)

    def sample(self, num, random_state):
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num, random_state):
        return self.sample(num, random_state)[1]


def encoded_representation(codes):
    """representation_fn over an EncodedGrid: grid indices -> their codes."""
    def representation_fn(indices):
        return codes[np.asarray(indices, dtype=np.int64)]

    return representation_fn


def encoded(data, representation_fn, progress=False):
    """(EncodedGrid, its representation_fn): the dataset encoded once."""
    return EncodedGrid(data), encoded_representation(encode_dataset(data, representation_fn, progress=progress))
