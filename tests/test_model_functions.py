"""dlbench.model_functions: a torch VAE as the numpy functions the model-side metrics take,
checked against the model's own modules and against closed forms; and the model-side metrics
through dlb_evaluate on a trained run."""

import json

import numpy as np
import pytest
import torch

from dlbench.cli import evaluate as evaluate_cli
from dlbench.evaluation import metric_result_path, parse_metric_params
from dlbench.model_functions import model_functions
from dlbench.nn import VAE
from dlbench.priors.base import log_normal_diag


def small_vae(prior=None):
    torch.manual_seed(0)
    return VAE("mlp", (1, 8, 8), 3, "bernoulli", prior=prior).eval()


def observations(n=40, seed=0):
    return (np.random.RandomState(seed).uniform(size=(n, 1, 8, 8)) > 0.5).astype(np.float32)


def test_encode_fn_is_the_encoder():
    model = small_vae()
    x = observations()
    mean, logvar = model_functions(model, "cpu", 0)["encode_fn"](x)
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(x))
    np.testing.assert_allclose(mean, expected[0].double().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(logvar, expected[1].double().numpy(), rtol=1e-6, atol=1e-7)
    assert mean.dtype == np.float64 and mean.shape == (40, 3)


def test_functions_are_seeded():
    x = observations()
    for key, args in (("log_likelihood_fn", ()), ("log_weights_fn", (5,))):
        first = model_functions(small_vae(), "cpu", 3)[key](x, *args)
        assert np.array_equal(first, model_functions(small_vae(), "cpu", 3)[key](x, *args))
        assert not np.array_equal(first, model_functions(small_vae(), "cpu", 4)[key](x, *args))


def test_mean_log_weight_is_the_closed_form_elbo():
    """E_q[log p(x|z) + log p(z) - log q(z|x)] = E_q[log p(x|z)] - KL: the Monte-Carlo mean of the
    log-weights against the closed-form KL of the Gaussian prior."""
    model = small_vae()
    with torch.no_grad():  # a posterior far from the prior, so that the KL term matters
        for parameter in model.encoder.parameters():
            parameter.mul_(3)
    x = observations(4)
    functions = model_functions(model, "cpu", 0)
    log_w = functions["log_weights_fn"](x, 4000)
    terms = functions["elbo_terms_fn"](x)
    mean, logvar = functions["encode_fn"](x)
    kl = 0.5 * (mean ** 2 + np.exp(logvar) - 1 - logvar).sum(1)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(terms["kl_per_dim"].sum(1), kl, rtol=1e-5)
    with torch.no_grad():  # E_q[log p(x|z)] by many samples of the model itself, independently of log_weights_fn
        xt = torch.from_numpy(x).repeat_interleave(4000, 0)
        m, lv = model.encode(xt)
        z = m + torch.exp(0.5 * lv) * torch.randn(m.shape, generator=torch.Generator().manual_seed(9))
        expected_log_px = model.likelihood.log_prob(model.decode(z), xt).double().reshape(4, -1).mean(1).numpy()
    tolerance = 5 * log_w.std(1) / np.sqrt(4000)  # two independent 4000-sample means
    assert np.all(np.abs(log_w.mean(1) - (expected_log_px - kl)) < tolerance)
    assert np.all(kl > 10 * tolerance)


def test_log_weights_use_the_model_prior():
    from dlbench.priors import build_prior

    prior = {"name": "student_t", "nu": 3.0}
    model = small_vae(prior=prior)
    x = observations(4)
    functions = model_functions(model, "cpu", 0)
    log_w = functions["log_weights_fn"](x, 3)
    generator = torch.Generator().manual_seed(0)  # replay the draws: the same generator, the same order
    with torch.no_grad():
        xt = torch.from_numpy(x)
        mean, logvar = model.encode(xt)
        mean, logvar = mean.repeat_interleave(3, 0), logvar.repeat_interleave(3, 0)
        z = model.sample_z(mean, logvar, generator)
        student = build_prior(prior, 3)
        expected = (model.likelihood.log_prob(model.decode(z), xt.repeat_interleave(3, 0))
                    + student.log_prob(z) - log_normal_diag(z, mean, logvar).sum(-1))
    np.testing.assert_allclose(log_w, expected.double().reshape(4, 3).numpy(), rtol=1e-6)
    assert "kl_per_dim" not in functions["elbo_terms_fn"](x)


def test_model_side_metrics_through_dlb_evaluate(trained_run):
    run_dir = trained_run
    params = ["elbo.num_points=200", "iwae.num_points=50", "iwae.num_samples=20", "mig_chen.num_samples=500",
              "total_correlation.num_samples=500"]
    argv = [str(run_dir), "--metrics", "elbo,iwae,mig_chen,total_correlation", "--device", "cpu"]
    for p in params:
        argv += ["--metric_param", p]
    assert evaluate_cli.main(argv) == 0
    parsed = parse_metric_params(params)
    read = lambda m: json.loads(metric_result_path(run_dir, "mean", m, parsed.get(m, {})).read_text())
    elbo, iwae, chen, tc = (read(m) for m in ("elbo", "iwae", "mig_chen", "total_correlation"))
    assert elbo["elbo"] == pytest.approx(elbo["recon_ll"] - elbo["kl"])
    assert sum(elbo[f"kl_{j}"] for j in range(4)) == pytest.approx(elbo["kl"])
    assert iwae["iwae"] >= iwae["elbo_estimate"] and iwae["num_samples"] == 20
    assert 0 <= chen["mig_chen"] <= 1 and chen["num_points"] == 384
    assert chen["factors"] == "shape,scale,orientation,posX,posY"
    assert tc["total_correlation"] > -0.05 and tc["points"] == "full_grid"
    assert all("torch_version" in r and "device" not in r for r in (elbo, iwae, chen, tc))
