"""ISA-VAE and ISA-TCVAE: with all exponents 2 the ISA prior is N(0, I), so the Monte Carlo KL of
eq. 12 must agree with beta-VAE's closed form; the methods refuse models without the ISA prior;
short training runs lower the loss and evaluate with the generic stages."""

import json
import math

import pytest
import torch

from dlbench.errors import UserError
from dlbench.methods import beta_tcvae_objective, beta_vae_objective
from dlbench.methods.estimators import kl_to_standard_normal
from dlbench.methods.isa_vae import IsaTCVAE, IsaVAE
from dlbench.nn import VAE
from dlbench.train.run import train_from_gin
from tests.conftest import TINY_PARAMS
from tests.training import assert_loss_fell
from tests.fake_outputs import fake_outputs

GAUSSIAN_ISA = {"name": "lp_nested_isa", "p0": 2.0, "subspace_sizes": [2, 1, 3], "p": [2.0, 2.0, 2.0],
                "learn_p": False}


def isa_prior(config=GAUSSIAN_ISA):
    from dlbench.priors import build_prior

    return build_prior(config, sum(config["subspace_sizes"])).double()


def test_with_all_exponents_two_the_monte_carlo_kl_matches_the_closed_form():
    torch.manual_seed(0)
    mean, logvar = torch.randn(5, 6, dtype=torch.float64), torch.rand(5, 6, dtype=torch.float64) - 1.5
    samples = 40000
    mean_s, logvar_s = mean.repeat(samples, 1), logvar.repeat(samples, 1)
    z = mean_s + torch.exp(0.5 * logvar_s) * torch.randn(mean_s.shape, dtype=torch.float64)
    log_px = torch.zeros(len(z), dtype=torch.float64)
    beta = 3.0
    isa_loss, isa = beta_vae_objective(fake_outputs(mean_s, logvar_s, z, log_px, isa_prior()), beta)
    normal_loss, normal = beta_vae_objective(fake_outputs(mean_s, logvar_s, z, log_px), beta)
    # Same reconstruction; the KLs differ only by Monte Carlo error around the closed form.
    difference = isa_prior().kl(mean_s, logvar_s, z) - kl_to_standard_normal(mean_s, logvar_s).sum(-1)
    standard_error = difference.std() / math.sqrt(len(difference))
    assert abs(float(isa["kl"] - normal["kl"])) < 4 * float(standard_error)
    assert float(isa_loss - normal_loss) == pytest.approx(beta * float(isa["kl"] - normal["kl"]), abs=1e-9)
    assert "kl_0" in normal and "kl_0" not in isa  # no per-dimension KL without a closed form


def test_isa_tcvae_with_gaussian_exponents_equals_beta_tcvae_with_the_standard_normal():
    torch.manual_seed(1)
    mean, logvar = torch.randn(16, 6, dtype=torch.float64), torch.rand(16, 6, dtype=torch.float64) - 1.0
    z = mean + torch.exp(0.5 * logvar) * torch.randn(16, 6, dtype=torch.float64)
    log_px = -torch.rand(16, dtype=torch.float64)
    isa_loss, isa = beta_tcvae_objective(fake_outputs(mean, logvar, z, log_px, isa_prior()), 1.0, 4.0, 1.0, 1000)
    normal_loss, normal = beta_tcvae_objective(fake_outputs(mean, logvar, z, log_px), 1.0, 4.0, 1.0, 1000)
    # The decomposition terms use log p(z) only, which is the same density: equal to rounding.
    for key in ("mi", "tc", "dimwise_kl", "reconstruction"):
        assert float(isa[key]) == pytest.approx(float(normal[key]), abs=1e-9)
    assert float(isa_loss) == pytest.approx(float(normal_loss), abs=1e-9)


def test_isa_methods_refuse_a_model_without_the_isa_prior():
    model = VAE("mlp", (1, 64, 64), 6, "bernoulli")
    for method in (IsaVAE(), IsaTCVAE()):
        with pytest.raises(UserError, match="model.prior = 'lp_nested_isa'"):
            method.prepare(model, 100)
    IsaVAE().prepare(VAE("mlp", (1, 64, 64), 6, "bernoulli", GAUSSIAN_ISA), 100)


def test_isa_vae_without_the_prior_fails_before_writing_anything(tiny_dsprites, tmp_path):
    params = TINY_PARAMS + ["train.method = @isa_vae()"]
    with pytest.raises(UserError, match="lp_nested_isa"):
        train_from_gin([], params, tmp_path / "run", "cpu", progress=False)


ISA_PARAMS = TINY_PARAMS + [
    "train.method = @isa_vae()", "model.architecture = 'mlp'", "model.latent_dim = 4",
    "model.prior = 'lp_nested_isa'", "lp_nested_isa.p0 = 2.1", "lp_nested_isa.subspace_sizes = [2, 2]",
    "lp_nested_isa.p = 2.0", "lp_nested_isa.learn_p = True", "train.steps = 60", "train.log_every = 10",
]


@pytest.mark.parametrize("method", ["isa_vae", "isa_tcvae"])
def test_training_lowers_the_loss_and_learns_the_exponents(tiny_dsprites, tmp_path, method):
    params = ISA_PARAMS + [f"train.method = @{method}()"]
    run_dir, status = train_from_gin([], params, tmp_path / method, "cpu", progress=False)
    assert status == "done"
    assert_loss_fell(run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == method
    assert record["model"]["prior"]["name"] == "lp_nested_isa"
    trained = torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]
    initial = VAE("mlp", (1, 64, 64), 4, "bernoulli", record["model"]["prior"]).state_dict()
    learned = [k for k in trained if k.startswith("prior.") and trained[k].is_floating_point()]
    assert learned and any(not torch.equal(trained[k], initial[k]) for k in learned)
