"""The unit-variance Gaussian likelihood (Sikka et al.'s decoder, sigma_y^2 = 1) against scipy's
normal density, and its place among the likelihoods a config may name."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from dlbench.errors import UserError
from dlbench.nn.likelihoods import LIKELIHOODS, get_likelihood


def test_log_prob_is_the_sum_of_unit_normal_log_densities():
    rng = np.random.default_rng(0)
    mean, x = rng.normal(size=(4, 7)), rng.normal(size=(4, 7)) * 3
    likelihood = get_likelihood("gaussian_unit")
    got = likelihood.log_prob(torch.as_tensor(mean), torch.as_tensor(x)).numpy()
    assert got.shape == (4,)
    assert got == pytest.approx(norm.logpdf(x, loc=mean, scale=1.0).sum(axis=1), rel=1e-12)
    assert likelihood.mean(torch.as_tensor(mean)).numpy() == pytest.approx(mean)
    assert likelihood.params_per_value == 1 and LIKELIHOODS["gaussian_unit"] is likelihood


def test_a_decoder_output_of_another_shape_is_refused():
    with pytest.raises(UserError, match="params_per_value=1"):
        get_likelihood("gaussian_unit").log_prob(torch.zeros(2, 6), torch.zeros(2, 3))


def test_configs_may_name_it():
    import gin

    from dlbench.config import model_settings

    gin.clear_config()  # the bindings an earlier test left (a model.prior) would apply to this call
    assert model_settings(architecture="pinwheel", latent_dim=2, likelihood="gaussian_unit")["likelihood"] == \
        "gaussian_unit"
