"""A tiny full-grid GroundTruthData for tests: each observation is its factor vector.

An observation has shape (num_factors, 1, 1): channel k holds factor k's value times
pixel_scale, so `obs.reshape(n, -1) / pixel_scale` recovers the factors exactly and a
representation can be any function of the factors (identity, a linear map, noise, ...).
"""

import numpy as np

from dlbench.data.ground_truth import GroundTruthData


class ToyData(GroundTruthData):
    name = "toy"

    def __init__(self, factors_num_values=(3, 4, 5), pixel_scale=1.0):
        self.factors_num_values = [int(n) for n in factors_num_values]
        self.factor_names = [f"f{k}" for k in range(len(self.factors_num_values))]
        self.observation_shape = (len(self.factors_num_values), 1, 1)
        self.pixel_scale = float(pixel_scale)
        grid = self.factors_of(np.arange(len(self)))
        self._images = grid.astype(np.uint8).reshape((len(self),) + self.observation_shape)

    @property
    def images(self):
        return self._images


def factors_of_observations(data, observations):
    """The factor vectors of a batch of ToyData observations (exact inverse of rendering)."""
    flat = np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)
    return np.rint(flat / data.pixel_scale).astype(np.int64)


class Recorder:
    """Wraps a representation function (of the factors) and records every call's batch."""

    def __init__(self, data, fn):
        self.data, self.fn, self.batches = data, fn, []

    def __call__(self, observations):
        assert observations.dtype == np.float32
        self.batches.append(factors_of_observations(self.data, observations))
        return np.asarray(self.fn(self.batches[-1]), dtype=np.float32)

    @property
    def call_sizes(self):
        return [len(b) for b in self.batches]

    @property
    def all_factors(self):
        return np.concatenate(self.batches)


class SampledToyData(ToyData):
    """ToyData that is not a full grid (as pinwheel or linear_gaussian): observations are rendered
    from the factors directly, never looked up by index."""

    full_grid = False

    def __init__(self, factors_num_values=(3, 4, 5), pixel_scale=1.0):
        self.factors_num_values = [int(n) for n in factors_num_values]
        self.factor_names = [f"f{k}" for k in range(len(self.factors_num_values))]
        self.observation_shape = (len(self.factors_num_values), 1, 1)
        self.pixel_scale = float(pixel_scale)

    @property
    def images(self):
        raise AttributeError("SampledToyData has no image array")

    def sample_observations_from_factors(self, factors, random_state):
        del random_state
        shape = (len(factors),) + self.observation_shape
        return (np.asarray(factors, dtype=np.float32) * np.float32(self.pixel_scale)).reshape(shape)
