"""elbo and iwae against a linear-Gaussian model whose ELBO and log p(x) are closed forms."""

import numpy as np
import pytest

from dlbench.errors import UserError
from dlbench.metrics import evaluate
from tests.toy_data import ToyData
from tests.toy_model import LinearGaussianModel

DATA = ToyData((3, 4, 5), pixel_scale=0.5)
DECODER = np.array([[1.0, 0.3], [-0.5, 0.8], [0.2, -1.1]])


def drawn_observations(num_points, seed):
    """The observations the metrics draw for this seed (they draw factors first)."""
    return DATA.sample(num_points, np.random.RandomState(seed))[1]


def poor_encoder_model(seed=0):
    return LinearGaussianModel(DECODER, encoder=[[0.2, 0.0, 0.1], [0.0, 0.3, -0.2]], encoder_logvar=[-1.0, -0.5],
                               seed=seed)


def test_elbo_matches_the_closed_form_within_monte_carlo_error():
    model = poor_encoder_model()
    result = evaluate("elbo", DATA, None, seed=4, elbo_terms_fn=model.elbo_terms_fn, num_points=4000)
    exact = model.elbo(drawn_observations(4000, 4)).mean()
    assert abs(result["elbo"] - exact) < 4 * result["elbo_stderr"]
    mean, logvar = model.encode_fn(drawn_observations(4000, 4))
    kl = model.kl_per_dim(mean, logvar).mean(0)
    assert result["kl"] == pytest.approx(kl.sum(), rel=1e-12)
    assert [result["kl_0"], result["kl_1"]] == pytest.approx(kl, rel=1e-12)
    assert result["elbo"] == pytest.approx(result["recon_ll"] - result["kl"], rel=1e-12)


def test_elbo_without_per_dimension_kl_says_why():
    model = poor_encoder_model()

    def terms(x):
        return {k: v for k, v in model.elbo_terms_fn(x).items() if k != "kl_per_dim"}

    result = evaluate("elbo", DATA, None, elbo_terms_fn=terms, num_points=50)
    assert "kl_0" not in result and "closed-form" in result["kl_per_dim_missing_reason"]


def test_with_the_exact_posterior_every_bound_is_log_px():
    model = LinearGaussianModel(np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), noise_variance=0.5)
    log_px = model.log_marginal(drawn_observations(300, 1)).mean()
    for k in (1, 7):
        result = evaluate("iwae", DATA, None, seed=1, log_weights_fn=model.log_weights_fn, num_samples=k,
                          num_points=300)
        assert result["iwae"] == pytest.approx(log_px, abs=1e-9)
        assert result["elbo_estimate"] == pytest.approx(log_px, abs=1e-9)
    assert model.elbo(drawn_observations(300, 1)).mean() == pytest.approx(log_px, abs=1e-9)


def test_iwae_is_above_the_elbo_and_tightens_with_k_towards_log_px():
    model = poor_encoder_model()
    observations = drawn_observations(2000, 2)
    log_px = model.log_marginal(observations).mean()
    elbo = model.elbo(observations).mean()
    bounds = [evaluate("iwae", DATA, None, seed=2, log_weights_fn=model.log_weights_fn, num_samples=k,
                       num_points=2000) for k in (1, 10, 100, 1000)]
    assert bounds[0]["iwae"] == pytest.approx(elbo, abs=4 * bounds[0]["iwae_stderr"])
    for result in bounds:
        assert result["iwae"] >= result["elbo_estimate"]
    values = [r["iwae"] for r in bounds]
    assert values == sorted(values) and values[-1] - values[0] > 0.5 * (log_px - elbo)
    assert values[-1] < log_px and log_px - values[-1] < 0.2 * (log_px - elbo)


def test_model_functions_are_required():
    for name in ("elbo", "iwae"):
        with pytest.raises(UserError, match="needs the whole model"):
            evaluate(name, DATA, None, num_points=10)


def test_bad_log_weights_are_reported():
    with pytest.raises(UserError, match="shape"):
        evaluate("iwae", DATA, None, log_weights_fn=lambda x, k: np.zeros((len(x), k + 1)), num_points=10)
    with pytest.raises(UserError, match="non-finite"):
        evaluate("iwae", DATA, None, log_weights_fn=lambda x, k: np.full((len(x), k), np.nan), num_points=10)
