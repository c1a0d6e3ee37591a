"""The ground-truth dataset interface (disentanglement_lib's GroundTruthData, in spirit).

Conventions used across dlbench:
- factors are integer class indices, shape (n, num_factors), one column per factor that
  varies (constant factors such as dSprites' colour are left out, as in disentanglement_lib);
- observations are float32 numpy arrays of shape (n, C, H, W) with values in [0, 1]
  (PyTorch's channel-first layout);
- the whole dataset is also available as one uint8 array `images` of shape (N, C, H, W);
  `images * pixel_scale` gives the float observations, so training and evaluation can keep
  the uint8 array on the device and convert batches there.

Vector datasets (pinwheel, linear_gaussian) follow the same contract with float32 data:
observations have shape (n, D), `images` is the (N, D) float32 array the trainer draws its
batches from (their fixed training sample) and pixel_scale is 1, so the trainer's one path
(index on the device, cast to float32, scale) serves both without a copy per batch.

Two class attributes say which assumptions hold, and the helpers at the bottom turn a violated
one into a clear UserError for whatever needs it:
- full_grid: one observation per factor combination, so `index_of`, `factors_of` and
  `len(data) == prod(factors_num_values)` hold (True for image datasets);
- continuous_factors: factors are real numbers, not class indices (then factors_num_values
  is undefined and metrics that count factor values do not apply).
"""

from abc import ABC, abstractmethod

import numpy as np

from dlbench.errors import UserError


class GroundTruthData(ABC):
    """Base class; by default a full grid of factor combinations with one image per combination
    (datasets that are not override full_grid and the methods that rely on it)."""

    name: str = ""
    factor_names: list = []
    factors_num_values: list = []
    observation_shape: tuple = ()
    pixel_scale: float = 1.0
    full_grid: bool = True
    continuous_factors: bool = False
    # the constructor arguments users may set through gin's dataset.options (dlbench.data)
    options: tuple = ()

    @staticmethod
    def shape_if_generated():
        """The dataset_shape (dlbench.data) of the file that would be generated on first use, where
        a missing file is generated then; None otherwise."""
        return None

    @property
    def num_factors(self):
        return len(self.factors_num_values)

    @property
    @abstractmethod
    def images(self):
        """All observations as one uint8 array of shape (N, C, H, W)."""

    def release_images(self):
        """Let go of the held array (the trainer does once its device copy exists, so the data
        is held once); the next use of `images` reads the file again. Arrays generated in memory
        (pinwheel, linear_gaussian: small, and not re-readable) are kept."""
        if getattr(self, "_images", None) is not None:
            self._images = None

    def __len__(self):
        return int(np.prod(self.factors_num_values))

    def index_of(self, factors):
        """Row index in `images` of each factor combination (factors: (n, num_factors) ints)."""
        require_full_grid(self, "index_of")
        factors = np.asarray(factors, dtype=np.int64)
        strides = np.cumprod([1] + list(self.factors_num_values[::-1]))[:-1][::-1]
        return factors @ strides

    def factors_of(self, index):
        """Inverse of index_of."""
        require_full_grid(self, "factors_of")
        return np.stack(np.unravel_index(np.asarray(index), self.factors_num_values), axis=-1).astype(np.int64)

    def sample_factors(self, num, random_state):
        """num factor combinations drawn uniformly and independently per factor."""
        return np.stack([random_state.randint(n, size=num) for n in self.factors_num_values], axis=1)

    def sample_observations_from_factors(self, factors, random_state):
        """Float observations for the given factors (random_state unused: one image per cell)."""
        del random_state
        return self.observations_at(self.index_of(factors))

    def observations_at(self, index):
        """Float observations of the rows `index` of `images` (what every grid cell's draw gives)."""
        return self.images[index].astype(np.float32) * np.float32(self.pixel_scale)

    def sample(self, num, random_state):
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num, random_state):
        return self.sample(num, random_state)[1]


class GeneratedInMemory:
    """dlb_data's file protocol for datasets generated in memory on use: no file to look for."""

    @staticmethod
    def default_path():
        return None

    @staticmethod
    def file_status(path=None):
        return "generated"


def fixed_or_sampled_images(data, num, seed):
    """(images, pixel_scale) to look at the data with (PCA, sample grids): the dataset's fixed
    array when it has one (all of it; callers subsample), else, for datasets whose observations
    each draw fresh randomness (the dSprites variants), `num` float observations drawn with the
    numpy seed `seed` (scale 1)."""
    if hasattr(data, "observations_from_base"):
        return data.sample_observations(num, np.random.RandomState(seed)), 1.0
    return data.images, data.pixel_scale


def require_full_grid(data, user):
    """A UserError unless data holds exactly one observation per factor combination; `user`
    names what needs that (a metric, or `index_of`)."""
    if not getattr(data, "full_grid", True):
        raise UserError(full_grid_problem(user, getattr(data, "name", "?")))


def full_grid_problem(user, dataset):
    return f"{user} needs a full factor grid (one observation per factor combination); dataset {dataset} has none"


def require_discrete_factors(data, metric):
    """A UserError if data's factors are continuous: for metrics that treat factor values as
    classes (MIG, FactorVAE, BetaVAE, DCI, modularity, discrete SAP)."""
    if getattr(data, "continuous_factors", False):
        raise UserError(continuous_factors_problem(metric, getattr(data, "name", "?")))


def continuous_factors_problem(metric, dataset):
    return (f"metric {metric} needs discrete factors; dataset {dataset} has continuous ones; choose a metric "
            f"for continuous factors (e.g. sap with sap.continuous_factors=True, inference_error, recon_ll)")
