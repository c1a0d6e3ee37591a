"""The ground-truth dataset interface (disentanglement_lib's GroundTruthData, in spirit).

Conventions used across dlbench:
- factors are integer class indices, shape (n, num_factors), one column per factor that
  varies (constant factors such as dSprites' colour are left out, as in disentanglement_lib);
- observations are float32 numpy arrays of shape (n, C, H, W) with values in [0, 1]
  (PyTorch's channel-first layout);
- the whole dataset is also available as one uint8 array `images` of shape (N, C, H, W);
  `images * pixel_scale` gives the float observations, so training and evaluation can keep
  the uint8 array on the device and convert batches there.
"""

from abc import ABC, abstractmethod

import numpy as np


class GroundTruthData(ABC):
    """Base class: a full grid of factor combinations with one image per combination."""

    name: str = ""
    factor_names: list = []
    factors_num_values: list = []
    observation_shape: tuple = ()
    pixel_scale: float = 1.0

    @property
    def num_factors(self):
        return len(self.factors_num_values)

    @property
    @abstractmethod
    def images(self):
        """All observations as one uint8 array of shape (N, C, H, W)."""

    def __len__(self):
        return int(np.prod(self.factors_num_values))

    def index_of(self, factors):
        """Row index in `images` of each factor combination (factors: (n, num_factors) ints)."""
        factors = np.asarray(factors, dtype=np.int64)
        strides = np.cumprod([1] + list(self.factors_num_values[::-1]))[:-1][::-1]
        return factors @ strides

    def factors_of(self, index):
        """Inverse of index_of."""
        return np.stack(np.unravel_index(np.asarray(index), self.factors_num_values), axis=-1).astype(np.int64)

    def sample_factors(self, num, random_state):
        """num factor combinations drawn uniformly and independently per factor."""
        return np.stack([random_state.randint(n, size=num) for n in self.factors_num_values], axis=1)

    def sample_observations_from_factors(self, factors, random_state):
        """Float observations for the given factors (random_state unused: one image per cell)."""
        del random_state
        batch = self.images[self.index_of(factors)]
        return batch.astype(np.float32) * np.float32(self.pixel_scale)

    def sample(self, num, random_state):
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num, random_state):
        return self.sample(num, random_state)[1]
