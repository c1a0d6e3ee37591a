"""The linear-Gaussian mixing model of Sikka et al. (eqs. 17-19): observations x = A s + eta with
sources s ~ N(0, I_k) (the ground-truth factors, continuous) and noise eta ~ N(0, I_N), so that

    p(x) = N(0, A A^T + I_N)                                          (eq. 18)
    p(s | x) = N(Sigma A^T x, Sigma),  Sigma = (A^T A + I_k)^-1        (eq. 19)

The mixing matrix A (N x k) is given (mixing_matrix, a nested list or array) or built:
- mixing='gaussian' (default): entries drawn i.i.d. N(0, 1/k) with numpy's default_rng, so
  every observed coordinate has signal variance 1 on average, as much as its noise, whatever k;
- mixing='ones_plus_identity': A_ij = (1 + delta_ij) / 2, the paper's analytic example (N = 128,
  k = 2 there), no randomness.
settings() records A with everything else, so a dataset is rebuilt exactly from it, and the
default `LinearGaussian()` is always the same (seed 0).

Defaults N = 10, k = 2: two sources as in the paper; ten observed coordinates keep the model
cheap for an MLP while the posterior stays informative but far from a point (with the default
A, A^T A is about (N/k) I, so each source keeps a posterior variance near k / (N + k) = 1/6);
the paper's N = 128 example shrinks it to about 1/50.

Training data: the model is infinite, so training draws batches from a fixed sample of num_train
observations (`images`, float32 (num_train, N), the sources in `training_sources`).
Randomness: SeedSequence(seed) spawns two streams, the first draws A, the second the training
sample, so the sample does not depend on whether A was drawn or given. Metrics draw fresh observations: sample_factors gives sources from
random_state and sample_observations_from_factors adds fresh noise from random_state.
"""

import math

import numpy as np

from dlbench.data.ground_truth import GeneratedInMemory, GroundTruthData
from dlbench.errors import UserError

NAME = "linear_gaussian"
OBSERVED_DIM = 10
NUM_SOURCES = 2
NUM_TRAIN = 10_000
MIXINGS = ("gaussian", "ones_plus_identity")


def build_mixing_matrix(mixing, observed_dim, num_sources, rng):
    """A (observed_dim, num_sources) by one of MIXINGS (see the module docstring)."""
    if mixing == "gaussian":
        return rng.standard_normal((observed_dim, num_sources)) / math.sqrt(num_sources)
    if mixing == "ones_plus_identity":
        return 0.5 * (1.0 + np.eye(observed_dim, num_sources))
    raise UserError(f"unknown linear_gaussian mixing {mixing!r}; available: {', '.join(MIXINGS)}, "
                    f"or pass mixing_matrix")


def _integer(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"linear_gaussian {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _checked_matrix(mixing_matrix, observed_dim, num_sources):
    try:
        matrix = np.array(mixing_matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError("linear_gaussian mixing_matrix must be a rectangular list of rows of numbers "
                        "(N rows of k sources)") from None
    if matrix.ndim != 2 or matrix.size == 0:
        raise UserError(f"linear_gaussian mixing_matrix must be a non-empty N x k matrix (rows of numbers), "
                        f"got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise UserError("linear_gaussian mixing_matrix has non-finite entries")
    for name, given, actual in (("observed_dim", observed_dim, matrix.shape[0]),
                                ("num_sources", num_sources, matrix.shape[1])):
        if given is not None and given != actual:
            raise UserError(f"linear_gaussian {name}={given} disagrees with mixing_matrix of shape "
                            f"{matrix.shape}; leave {name} out or match it")
    return matrix


class LinearGaussian(GeneratedInMemory, GroundTruthData):
    """x = A s + eta with an exact posterior; the sources are the (continuous) factors."""

    name = NAME
    pixel_scale = 1.0
    full_grid = False
    continuous_factors = True
    options = ("seed", "observed_dim", "num_sources", "mixing", "mixing_matrix", "num_train")

    def __init__(self, observed_dim=None, num_sources=None, mixing_matrix=None, mixing="gaussian", seed=0,
                 num_train=NUM_TRAIN):
        self.seed = _integer("seed", seed, 0)
        self.num_train = _integer("num_train", num_train, 1)
        mixing_rng, sample_rng = (np.random.default_rng(child) for child in np.random.SeedSequence(self.seed).spawn(2))
        if mixing_matrix is not None:
            self.mixing = "given"
            self.mixing_matrix = _checked_matrix(mixing_matrix, observed_dim, num_sources)
        else:
            self.mixing = mixing
            n = OBSERVED_DIM if observed_dim is None else _integer("observed_dim", observed_dim, 1)
            k = NUM_SOURCES if num_sources is None else _integer("num_sources", num_sources, 1)
            self.mixing_matrix = build_mixing_matrix(mixing, n, k, mixing_rng)
        self.mixing_matrix.setflags(write=False)
        n, k = self.mixing_matrix.shape
        self.observation_shape = (n,)
        self.factor_names = [f"s{j}" for j in range(k)]
        self.training_sources = sample_rng.standard_normal((self.num_train, k))
        self._observations = self._mix(self.training_sources, sample_rng)

    @property
    def num_factors(self):
        return self.mixing_matrix.shape[1]

    @property
    def factors_num_values(self):
        raise UserError(f"dataset {NAME} has continuous factors (the sources s), so they have no number of "
                        f"values; use a metric for continuous factors")

    @property
    def images(self):
        """The training sample, float32 (num_train, N)."""
        return self._observations

    def __len__(self):
        return self.num_train

    def _mix(self, sources, rng):
        noise = rng.standard_normal((len(sources), self.mixing_matrix.shape[0]))
        return (sources @ self.mixing_matrix.T + noise).astype(np.float32)

    def sample_factors(self, num, random_state):
        """num source vectors s ~ N(0, I_k), float64 (num, k)."""
        return random_state.standard_normal((num, self.num_factors))

    def sample_observations_from_factors(self, factors, random_state):
        """A s + eta for each row s of factors, eta ~ N(0, I_N) from random_state; float32 (n, N)."""
        sources = np.asarray(factors, dtype=np.float64)
        if sources.ndim != 2 or sources.shape[1] != self.num_factors:
            raise UserError(f"linear_gaussian factors must have shape (n, {self.num_factors}), got {sources.shape}")
        return self._mix(sources, random_state)

    def exact_posterior(self, observations):
        """p(s | x) of eq. 19: (means (n, k), covariance (k, k)), float64; the covariance
        (A^T A + I)^-1 is the same for every x."""
        x = self._checked_observations(observations)
        a = self.mixing_matrix
        precision = a.T @ a + np.eye(a.shape[1])
        covariance = np.linalg.inv(precision)
        mean = np.linalg.solve(precision, a.T @ x.T).T
        return mean, 0.5 * (covariance + covariance.T)

    def log_marginal(self, observations):
        """log p(x) = log N(x; 0, A A^T + I_N) (eq. 18) per row, float64 (n,).

        Computed in the k-dimensional source space (the Woodbury identity and the matrix
        determinant lemma), so it costs O(N k^2) per point, not O(N^3):
          x^T (A A^T + I)^-1 x = |x|^2 - (A^T x)^T (A^T A + I)^-1 (A^T x)
          log det(A A^T + I_N) = log det(A^T A + I_k)
        """
        x = self._checked_observations(observations)
        a = self.mixing_matrix
        chol = np.linalg.cholesky(a.T @ a + np.eye(a.shape[1]))
        projected = np.linalg.solve(chol, a.T @ x.T)          # L^-1 A^T x, (k, n)
        mahalanobis = (x ** 2).sum(axis=1) - (projected ** 2).sum(axis=0)
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        return -0.5 * (a.shape[0] * math.log(2 * math.pi) + log_det + mahalanobis)

    def _checked_observations(self, observations):
        x = np.asarray(observations, dtype=np.float64)
        n = self.mixing_matrix.shape[0]
        if x.ndim != 2 or x.shape[1] != n:
            raise UserError(f"linear_gaussian observations must have shape (n, {n}), got {x.shape}")
        return x

    def settings(self):
        """Everything the dataset is a function of, A included as rows: LinearGaussian(**settings())
        rebuilds it exactly."""
        return {"mixing_matrix": self.mixing_matrix.tolist(), "mixing": self.mixing, "seed": self.seed,
                "num_train": self.num_train}

    # dlb_data's describe; default_path and file_status come from GeneratedInMemory (no file)
    @staticmethod
    def describe(path=None):
        data = LinearGaussian()
        n, k = data.mixing_matrix.shape
        return {"name": NAME, "source": "generated in memory on use (no file)", "num_images": len(data),
                "observation_shape": [n], "factor_names": list(data.factor_names),
                "factors": f"{k} continuous sources s ~ N(0, I)", **data.settings()}
