"""A linear-Gaussian VAE in numpy whose every quantity has a closed form, for testing the
model-side metrics: p(z) = N(0, I_k), p(x|z) = N(D z, s2 I_n), and an encoder q(z|x) =
N(E x + b, diag exp(logvar)) that is either given or the exact posterior (diagonal when the
columns of D are orthogonal).

Observations of any shape are flattened to vectors x in R^n.
"""

import numpy as np
from scipy.stats import multivariate_normal

LOG_2PI = np.log(2 * np.pi)


def flat(observations):
    return np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)


class LinearGaussianModel:
    def __init__(self, decoder, noise_variance=1.0, encoder=None, encoder_bias=None, encoder_logvar=None, seed=0):
        self.D = np.asarray(decoder, dtype=np.float64)
        self.s2 = float(noise_variance)
        n, k = self.D.shape
        posterior_cov = np.linalg.inv(self.D.T @ self.D / self.s2 + np.eye(k))
        self.posterior_cov = posterior_cov
        self.posterior_map = posterior_cov @ self.D.T / self.s2
        self.E = self.posterior_map if encoder is None else np.asarray(encoder, dtype=np.float64)
        self.b = np.zeros(k) if encoder_bias is None else np.asarray(encoder_bias, dtype=np.float64)
        self.logvar = (np.log(np.diag(posterior_cov)) if encoder_logvar is None
                       else np.broadcast_to(np.asarray(encoder_logvar, dtype=np.float64), (k,)))
        self.random_state = np.random.RandomState(seed)

    # closed forms
    def log_marginal(self, observations):
        """log p(x) = log N(x; 0, D D^T + s2 I)."""
        x = flat(observations)
        cov = self.D @ self.D.T + self.s2 * np.eye(len(self.D))
        return multivariate_normal(np.zeros(len(self.D)), cov).logpdf(x)

    def elbo(self, observations):
        """E_q[log p(x|z)] - KL(q || N(0, I)) in closed form, per observation."""
        x = flat(observations)
        mean, logvar = self.encode_fn(observations)
        var = np.exp(logvar)
        residual = ((x - mean @ self.D.T) ** 2).sum(1) + (var * (self.D ** 2).sum(0)).sum(1)
        expected_log_px = -0.5 * (len(self.D) * (LOG_2PI + np.log(self.s2)) + residual / self.s2)
        return expected_log_px - self.kl_per_dim(mean, logvar).sum(1)

    @staticmethod
    def kl_per_dim(mean, logvar):
        return 0.5 * (mean ** 2 + np.exp(logvar) - 1 - logvar)

    # the functions dlbench.model_functions gives for a torch VAE
    def encode_fn(self, observations):
        x = flat(observations)
        mean = x @ self.E.T + self.b
        return mean, np.broadcast_to(self.logvar, mean.shape).copy()

    def _log_px(self, x, z):
        return -0.5 * (len(self.D) * (LOG_2PI + np.log(self.s2)) + ((x - z @ self.D.T) ** 2).sum(-1) / self.s2)

    def _sample(self, mean, logvar):
        return mean + np.exp(0.5 * logvar) * self.random_state.standard_normal(mean.shape)

    def log_likelihood_fn(self, observations):
        mean, logvar = self.encode_fn(observations)
        return self._log_px(flat(observations), self._sample(mean, logvar))

    def elbo_terms_fn(self, observations):
        mean, logvar = self.encode_fn(observations)
        per_dim = self.kl_per_dim(mean, logvar)
        return {"log_px": self._log_px(flat(observations), self._sample(mean, logvar)),
                "kl": per_dim.sum(1), "kl_per_dim": per_dim}

    def log_weights_fn(self, observations, num_samples):
        x = flat(observations)
        mean, logvar = self.encode_fn(observations)
        mean, logvar = (np.repeat(a[:, None], num_samples, axis=1) for a in (mean, logvar))
        z = self._sample(mean, logvar)
        log_prior = -0.5 * (LOG_2PI + z ** 2).sum(-1)
        log_q = -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 / np.exp(logvar)).sum(-1)
        return self._log_px(x[:, None], z) + log_prior - log_q

    def decode_log_likelihood_fn(self, observations, z):
        return self._log_px(flat(observations), np.asarray(z, dtype=np.float64))

    @staticmethod
    def log_prior_fn(z):
        return -0.5 * (LOG_2PI + np.asarray(z, dtype=np.float64) ** 2).sum(-1)

    def prior_sample_fn(self, num):
        return self.random_state.standard_normal((num, self.D.shape[1]))

    def functions(self):
        return {"encode_fn": self.encode_fn, "log_likelihood_fn": self.log_likelihood_fn,
                "elbo_terms_fn": self.elbo_terms_fn, "log_weights_fn": self.log_weights_fn,
                "decode_log_likelihood_fn": self.decode_log_likelihood_fn, "log_prior_fn": self.log_prior_fn,
                "prior_sample_fn": self.prior_sample_fn}
