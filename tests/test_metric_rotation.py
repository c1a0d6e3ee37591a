"""The rotation metric (Mathieu et al. Theorem 2) against closed forms: with an isotropic Gaussian
prior the objective of the rotated model is the same on the same noise; with an anisotropic one
the change of E[log p(Rz)] is -1/2 tr(Lambda^-1 (R M R^T - M)), M = mu mu^T + Sigma; with a
Student-t prior it is what scipy's density gives on the same draws; MIG and the FactorVAE score
do not see a permutation of the latents and are those of the rotated codes scored afresh."""

import numpy as np
import pytest
from scipy import stats

from dlbench.errors import UserError
from dlbench.metrics import evaluate
from dlbench.metrics.rotation import random_rotations, rotated_scores, rotated_terms
from tests.toy_data import ToyData
from tests.toy_model import LinearGaussianModel

DATA = ToyData((3, 4, 5), pixel_scale=0.5)
VARIANCES = np.array([2.0, 0.7, 0.3])  # an anisotropic prior's
SMALL_SCORES = {"mig_num_train": 300, "factor_vae_num_train": 100, "factor_vae_num_eval": 50,
                "factor_vae_num_variance_estimate": 300}


def axis_aligned_model(logvar=(-1.0, -1.5, -0.5)):
    """Decoder diag(1, -2, 0.5), an encoder mean diag(2, -1.5, 2.5) x: axis-aligned with the
    factors, so its codes are disentangled."""
    return LinearGaussianModel(np.diag([1.0, -2.0, 0.5]), encoder=np.diag([2.0, -1.5, 2.5]),
                               encoder_logvar=list(logvar))


def anisotropic_log_prior(z):
    z = np.asarray(z, dtype=np.float64)
    return (-0.5 * (np.log(2 * np.pi * VARIANCES) + z ** 2 / VARIANCES)).sum(-1)


def student_t_log_prior(z, nu=3.0):
    return stats.t.logpdf(np.asarray(z, dtype=np.float64), nu).sum(-1)


def model_functions(model, log_prior_fn=None):
    return {"encode_fn": model.encode_fn, "decode_log_likelihood_fn": model.decode_log_likelihood_fn,
            "log_prior_fn": log_prior_fn or model.log_prior_fn}


def drawn(seed, num_points, num_rotations, dim=3):
    """What the metric draws for a seed, in its documented order: (observations, rotations, the
    noise's random state)."""
    rs = np.random.RandomState(seed)
    rotation_seed, noise_seed, _ = rs.randint(2 ** 31 - 1, size=3)
    observations = DATA.sample_observations_from_factors(DATA.sample_factors(num_points, rs), rs)
    rotations = random_rotations(dim, num_rotations, np.random.RandomState(rotation_seed))
    return observations, rotations, np.random.RandomState(noise_seed)


def prior_change_closed_form(mean, logvar, rotation):
    """E[log N(Rz; 0, Lambda)] - E[log N(z; 0, Lambda)] for z ~ N(mean, diag(exp(logvar))), per row:
    -1/2 tr(Lambda^-1 (R M R^T - M)) with M = mean mean^T + diag(exp(logvar))."""
    second = mean[:, :, None] * mean[:, None, :] + np.einsum("ni,ij->nij", np.exp(logvar), np.eye(mean.shape[1]))
    rotated = rotation @ second @ rotation.T
    inverse = np.diag(1.0 / VARIANCES)
    return -0.5 * (np.einsum("ij,nji->n", inverse, rotated) - np.einsum("ij,nji->n", inverse, second))


def sigma_points(num_rows, dim):
    """eps (num_rows, 2 dim, dim): +-sqrt(dim) e_i, whose mean is 0 and second moment exactly I, so
    the average of a quadratic form over them is its expectation under N(0, I)."""
    points = np.concatenate([np.eye(dim), -np.eye(dim)]) * np.sqrt(dim)
    return np.broadcast_to(points, (num_rows, 2 * dim, dim)).copy()


def test_isotropic_prior_the_objective_is_unchanged_on_the_same_noise_while_mig_and_factor_vae_change():
    result = evaluate("rotation", DATA, None, seed=1, num_rotations=4, beta=4.0, num_points=400, num_samples=3,
                      decode_every_rotation=True, **SMALL_SCORES, **model_functions(axis_aligned_model()))
    for r in range(1, 5):
        assert abs(result[f"objective_change_r{r}"]) < 1e-10
        assert abs(result[f"recon_change_r{r}"]) < 1e-10 and abs(result[f"log_prior_change_r{r}"]) < 1e-10
        assert result[f"objective_r{r}"] == pytest.approx(result["objective"], abs=1e-10)
    assert result["max_abs_objective_change_over_stderr"] < 1e-8 and result["objective_stderr"] > 0.01
    assert result["objective"] == pytest.approx(result["recon_ll"] - 4.0 * result["kl"], rel=1e-12)
    # codes that are the factors scaled score MIG 1 and FactorVAE 1; rotations mix them
    assert result["mig"] > 0.95 and result["factor_vae"] == 1.0
    assert result["mig_max"] < result["mig"] - 0.2 and result["factor_vae_min"] < 1.0
    assert result["mig_max_abs_change"] == pytest.approx(result["mig"] - result["mig_min"], abs=1e-12)


def test_with_a_single_factor_that_varies_the_factor_vae_scores_are_missing_with_their_reason():
    # compute_factor_vae gives no eval_accuracy there (any representation would score 1): rotation had failed on it
    one_factor = ToyData((1, 4, 1), pixel_scale=0.5)
    result = evaluate("rotation", one_factor, None, seed=1, num_rotations=2, num_points=100, **SMALL_SCORES,
                      **model_functions(axis_aligned_model()))
    assert result["factor_vae_missing_reason"].startswith("a single factor varies")
    assert not [key for key in result if key.startswith("factor_vae") and key != "factor_vae_missing_reason"
                and not key.startswith("factor_vae_num")]
    assert {"mig", "mig_r1", "mig_r2", "mig_min", "objective_change_r2"} <= set(result)


def test_anisotropic_prior_change_of_the_prior_term_is_the_closed_form_on_sigma_points():
    model = axis_aligned_model()
    observations = DATA.sample_observations_from_factors(DATA.sample_factors(50, np.random.RandomState(0)), None)
    mean, logvar = model.encode_fn(observations)
    eps = sigma_points(len(mean), 3)
    rotation = random_rotations(3, 1, np.random.RandomState(5))[0]
    terms = [rotated_terms(observations, mean, logvar, eps, r, model.decode_log_likelihood_fn, anisotropic_log_prior)
             for r in (np.eye(3), rotation)]
    expected = prior_change_closed_form(mean, logvar, rotation)
    assert np.abs(expected).mean() > 0.1  # the rotation does change the prior term
    np.testing.assert_allclose(terms[1]["log_prior"] - terms[0]["log_prior"], expected, atol=1e-10)
    # the decoder sees R^T z' = z and the rotated posterior's density at z' is the original's at z
    np.testing.assert_allclose(terms[1]["recon"], terms[0]["recon"], atol=1e-10)
    np.testing.assert_allclose(terms[1]["log_q"], terms[0]["log_q"], atol=1e-10)
    exact_log_q = stats.norm.logpdf(eps, 0, 1).sum(-1).mean(1) - 0.5 * logvar.sum(1)
    np.testing.assert_allclose(terms[0]["log_q"], exact_log_q, atol=1e-10)


def test_anisotropic_prior_the_metric_measures_the_closed_form_change_within_its_standard_error():
    beta, num_points = 2.5, 3000
    model = axis_aligned_model()
    result = evaluate("rotation", DATA, None, seed=2, num_rotations=3, beta=beta, num_points=num_points,
                      **SMALL_SCORES, **model_functions(model, anisotropic_log_prior))
    observations, rotations, _ = drawn(2, num_points, 3)
    mean, logvar = model.encode_fn(observations)
    for r, rotation in enumerate(rotations, 1):
        expected = prior_change_closed_form(mean, logvar, rotation).mean()
        prior_stderr = result[f"objective_change_stderr_r{r}"] / beta
        assert abs(expected) > 10 * prior_stderr  # a change the measurement resolves
        assert abs(result[f"log_prior_change_r{r}"] - expected) < 4 * prior_stderr
        assert result[f"objective_change_r{r}"] == pytest.approx(beta * result[f"log_prior_change_r{r}"], abs=1e-9)
    assert result["max_abs_objective_change_over_stderr"] > 1


def test_student_t_prior_the_change_is_that_of_scipys_density_on_the_same_draws():
    beta, num_points, num_samples = 1.5, 200, 4
    model = axis_aligned_model()
    result = evaluate("rotation", DATA, None, seed=3, num_rotations=2, beta=beta, num_points=num_points,
                      num_samples=num_samples, **SMALL_SCORES, **model_functions(model, student_t_log_prior))
    observations, rotations, noise = drawn(3, num_points, 2)
    mean, logvar = model.encode_fn(observations)
    z = mean[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * noise.standard_normal((num_points, num_samples, 3))
    before = stats.t.logpdf(z, 3.0).sum(-1).mean()
    for r, rotation in enumerate(rotations, 1):
        change = stats.t.logpdf(z @ rotation.T, 3.0).sum(-1).mean() - before
        assert result[f"log_prior_change_r{r}"] == pytest.approx(change, abs=1e-10)
        assert result[f"objective_change_r{r}"] == pytest.approx(beta * change, abs=1e-10)
        assert abs(change) > 0.01


def axis_aligned_codes(observations):
    return DATA_CODES_SCALE * np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)


DATA_CODES_SCALE = np.array([1.0, -0.7, 2.0])


def test_mig_and_factor_vae_do_not_see_a_permutation_of_the_latents():
    cycle = np.eye(3)[[1, 2, 0]]  # an even permutation: a rotation
    assert np.linalg.det(cycle) == pytest.approx(1.0)
    identity, permuted = rotated_scores(DATA, axis_aligned_codes, [np.eye(3), cycle], 7,
                                        {"num_train": 500, "batch_size": 128},
                                        {"num_train": 100, "num_eval": 50, "num_variance_estimate": 300})
    assert permuted == identity
    assert identity[0] > 0.95 and identity[1] == 1.0


def test_rotated_scores_are_the_rotated_codes_scored_afresh_and_the_encoder_runs_once():
    calls = []

    def counted(observations):
        calls.append(len(observations))
        return axis_aligned_codes(observations)

    rotations = random_rotations(3, 2, np.random.RandomState(0))
    mig_params = {"num_train": 500, "batch_size": 128}
    factor_vae_params = {"num_train": 60, "num_eval": 40, "num_variance_estimate": 200}
    scores = rotated_scores(DATA, counted, rotations, 11, mig_params, factor_vae_params)
    for rotation, (mig, factor_vae) in zip(rotations, scores):
        fresh = lambda x, r=rotation: axis_aligned_codes(x) @ r.T  # noqa: E731
        assert mig == evaluate("mig", DATA, fresh, seed=11, **mig_params)["discrete_mig"]
        assert factor_vae == evaluate("factor_vae", DATA, fresh, seed=11, **factor_vae_params)["eval_accuracy"]
    encoded_once = 500 + 200 + 64 * (60 + 40)
    assert sum(calls) == encoded_once


def test_the_same_seed_gives_the_same_result_and_the_rotations_are_haar_rotations():
    functions = model_functions(axis_aligned_model(), anisotropic_log_prior)
    first = evaluate("rotation", DATA, None, seed=5, num_rotations=2, num_points=50, **SMALL_SCORES, **functions)
    assert first == evaluate("rotation", DATA, None, seed=5, num_rotations=2, num_points=50, **SMALL_SCORES,
                             **functions)
    rotations = random_rotations(4, 500, np.random.RandomState(0))
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.broadcast_to(np.eye(4), (500, 4, 4)),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-12)
    # Haar: E[R] = 0 and E[R_ij^2] = 1/d
    assert np.abs(rotations.mean(0)).max() < 0.1
    np.testing.assert_allclose((rotations ** 2).mean(0), 0.25, atol=0.05)


@pytest.mark.parametrize("params, message", [
    ({"encode_fn": None}, "rotation needs the whole model"),
    ({"num_rotations": 0}, "num_rotations must be an integer >= 1"),
    ({"beta": -1.0}, "beta must be a number >= 0"),
    ({"decode_every_rotation": 1}, "decode_every_rotation must be True or False"),
    ({"factor_vae_num_eval": 0}, "factor_vae_num_eval must be an integer >= 1"),
])
def test_bad_requests_are_refused(params, message):
    arguments = {**model_functions(axis_aligned_model()), "num_points": 20, **SMALL_SCORES, **params}
    with pytest.raises(UserError, match=message):
        evaluate("rotation", DATA, None, **arguments)


def test_one_latent_dimension_cannot_be_rotated():
    with pytest.raises(UserError, match="at least 2 latent dimensions, the model has 1"):
        random_rotations(1, 3, np.random.RandomState(0))


def test_a_torch_vaes_model_functions_give_the_closed_form_change_of_an_anisotropic_prior():
    import torch

    from dlbench.model_functions import model_functions as vae_functions
    from dlbench.nn.vae import VAE

    torch.manual_seed(0)
    prior = {"name": "anisotropic_gaussian", "init": "given", "variances": list(VARIANCES)}
    functions = vae_functions(VAE("mlp", DATA.observation_shape, 3, "gaussian", prior), "cpu", 0)
    observations = DATA.sample_observations_from_factors(DATA.sample_factors(40, np.random.RandomState(1)), None)
    mean, logvar = functions["encode_fn"](observations)
    mean = mean * 5  # codes far enough from 0 for the prior term to move
    eps = sigma_points(len(mean), 3)
    rotation = random_rotations(3, 1, np.random.RandomState(2))[0]
    terms = [rotated_terms(observations, mean, logvar, eps, r, functions["decode_log_likelihood_fn"],
                           functions["log_prior_fn"]) for r in (np.eye(3), rotation)]
    # the variances are normalised to sum to d = 3, as VARIANCES already do
    np.testing.assert_allclose(terms[1]["log_prior"] - terms[0]["log_prior"],
                               prior_change_closed_form(mean, logvar, rotation), atol=1e-9)
    # the decoder runs in float32: R^T z' is z up to its rounding
    np.testing.assert_allclose(terms[1]["recon"], terms[0]["recon"], rtol=1e-5, atol=1e-5)


def test_dlb_evaluate_rotation_on_a_trained_run(trained_run):
    import json

    from dlbench.cli import evaluate as evaluate_cli
    from dlbench.evaluation import metric_result_path

    params = {"num_rotations": 3, "num_points": 40, "num_samples": 1, "decode_every_rotation": True,
              "mig_num_train": 200, "factor_vae_num_train": 20, "factor_vae_num_eval": 10,
              "factor_vae_num_variance_estimate": 100}
    arguments = [str(trained_run), "--metrics", "rotation", "--device", "cpu"]
    for key, value in params.items():
        arguments += ["--metric_param", f"rotation.{key}={value}"]
    assert evaluate_cli.main(arguments) == 0
    result = json.loads(metric_result_path(trained_run, "mean", "rotation", params).read_text())
    assert result["metric"] == "rotation" and result["latent_dim"] == 4 and result["num_rotations"] == 3
    for r in range(1, 4):
        # isotropic prior in float64: exact; the float32 decoder at R^T z': within its rounding
        assert abs(result[f"log_prior_change_r{r}"]) < 1e-10 and abs(result[f"recon_change_r{r}"]) < 1e-3
        assert abs(result[f"objective_change_r{r}"]) < 1e-4 * result["objective_stderr"]
        assert 0 <= result[f"mig_r{r}"] <= 1 and 0 <= result[f"factor_vae_r{r}"] <= 1
    assert result["max_abs_objective_change_over_stderr"] < 1e-4
