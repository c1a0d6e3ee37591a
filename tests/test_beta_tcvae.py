"""beta-TCVAE: the q(z) estimators against brute force on a tiny 'dataset' of Gaussian
posteriors, the TC decomposition against closed forms, the objective and a short training run."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from dlbench.errors import UserError
from dlbench.methods import BetaTCVAE, beta_tcvae_objective
from dlbench.methods.estimators import (log_density_gaussian, log_qz_minibatch_stratified,
                                        log_qz_minibatch_weighted, pairwise_log_density_gaussian,
                                        stratified_importance_weights)
from dlbench.train.run import train_from_gin

from tests.conftest import TINY_PARAMS
from tests.training import assert_loss_fell
from tests.fake_outputs import fake_outputs

N, D = 6, 3


def tiny_dataset(seed=0, n=N, d=D):
    """Means and log-variances of N Gaussian posteriors q(z|n) (float64)."""
    rs = np.random.RandomState(seed)
    return rs.normal(0, 1.0, (n, d)), rs.uniform(-1.5, 0.0, (n, d))


def exact_log_q(z, means, logvars):
    """Independent (scipy) exact log q(z) = logsumexp_n log q(z|n) - log N and per-dimension
    log q(z_d), for z of shape (D,)."""
    per_dim = stats.norm.logpdf(z[None, :], means, np.exp(0.5 * logvars))  # (N, D)
    n = len(means)
    return logsumexp(per_dim.sum(1)) - math.log(n), logsumexp(per_dim, axis=0) - math.log(n)


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def test_log_density_and_pairwise_matrix_match_scipy():
    means, logvars = tiny_dataset()
    z = np.random.RandomState(1).normal(size=(N, D))
    expected = stats.norm.logpdf(z[:, None, :], means[None], np.exp(0.5 * logvars)[None])
    np.testing.assert_allclose(pairwise_log_density_gaussian(t(z), t(means), t(logvars)).numpy(), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(log_density_gaussian(t(z), 0.0, 0.0).numpy(), stats.norm.logpdf(z), rtol=1e-12)


def test_mws_is_eq3_on_a_batch():
    means, logvars = tiny_dataset()
    batch = [4, 1, 1, 3]  # with replacement, as the trainer draws
    z = np.random.RandomState(2).normal(size=(len(batch), D))
    log_qz, log_prod = log_qz_minibatch_weighted(t(z), t(means[batch]), t(logvars[batch]), N)
    m = len(batch)
    for i in range(m):
        per_dim = stats.norm.logpdf(z[i][None], means[batch], np.exp(0.5 * logvars[batch]))
        assert log_qz[i].item() == pytest.approx(logsumexp(per_dim.sum(1)) - math.log(N * m), rel=1e-12)
        assert log_prod[i].item() == pytest.approx((logsumexp(per_dim, axis=0) - math.log(N * m)).sum(), rel=1e-12)


def batch_density(estimator, z, own, others, means, logvars, position=1):
    """The estimator's q(z) and per-dimension q(z_d) for z drawn from own's posterior, with own
    at `position` in the batch (not first: a weight misplaced in column 0 must show) and
    `others` around it."""
    batch = [*others[:position], own, *others[position:]]
    zs = np.repeat(z[None], len(batch), 0)  # only row `position` is used
    log_qz, _ = estimator(t(zs), t(means[batch]), t(logvars[batch]), N)
    marginals = [estimator(t(zs[:, [d]]), t(means[batch][:, [d]]), t(logvars[batch][:, [d]]), N)[1][position]
                 for d in range(D)]
    return math.exp(log_qz[position].item()), np.exp([m.item() for m in marginals])


@pytest.mark.parametrize("own", [0, 3])
def test_mss_density_is_unbiased_exactly_over_all_batches(own):
    """Averaged over every batch drawn without replacement that contains the sample's own
    posterior, the MSS estimate of q(z) (and of each q(z_d)) is the exact density."""
    means, logvars = tiny_dataset()
    rs = np.random.RandomState(3)
    rest = [n for n in range(N) if n != own]
    for _ in range(3):
        z = means[own] + np.exp(0.5 * logvars[own]) * rs.normal(size=D)
        log_qz, log_qzd = exact_log_q(z, means, logvars)
        values = [batch_density(log_qz_minibatch_stratified, z, own, others, means, logvars)
                  for others in itertools.permutations(rest, 2)]
        assert np.mean([v[0] for v in values]) == pytest.approx(math.exp(log_qz), rel=1e-10)
        np.testing.assert_allclose(np.mean([v[1] for v in values], 0), np.exp(log_qzd), rtol=1e-10)


def test_mws_density_equals_its_expectation_exactly_over_all_batches():
    """Eq. 3's density, averaged over all with-replacement batches containing the own posterior,
    is q(z|n*)/(NM) + (M-1)/(NM) q(z): what eq. 3 should give, and why MWS is biased."""
    means, logvars = tiny_dataset()
    own, m = 2, 3
    z = means[own] + np.exp(0.5 * logvars[own]) * np.random.RandomState(4).normal(size=D)
    log_qz, _ = exact_log_q(z, means, logvars)
    own_density = stats.norm.pdf(z, means[own], np.exp(0.5 * logvars[own])).prod()
    values = [batch_density(log_qz_minibatch_weighted, z, own, others, means, logvars)[0]
              for others in itertools.product(range(N), repeat=m - 1)]
    expected = own_density / (N * m) + (m - 1) / (N * m) * math.exp(log_qz)
    assert np.mean(values) == pytest.approx(expected, rel=1e-10)


def test_mss_is_unbiased_in_a_monte_carlo_over_random_batches():
    """E[q_hat(z) / q(z)] = 1 over random own posteriors, z ~ q(z|own) and random batches of
    size 4 without replacement; tolerance 4 Monte Carlo standard errors."""
    means, logvars = tiny_dataset(seed=5)
    rs = np.random.RandomState(6)
    ratios = []
    for _ in range(3000):
        perm = rs.permutation(N)[:4]
        own, others = perm[0], list(perm[1:])
        z = means[own] + np.exp(0.5 * logvars[own]) * rs.normal(size=D)
        estimate, _ = batch_density(log_qz_minibatch_stratified, z, own, others, means, logvars,
                                    position=rs.randint(4))
        ratios.append(estimate / math.exp(exact_log_q(z, means, logvars)[0]))
    se = np.std(ratios) / math.sqrt(len(ratios))
    assert abs(np.mean(ratios) - 1.0) < 4 * se + 1e-12


def test_mss_weights_put_the_own_posterior_on_the_diagonal():
    w = stratified_importance_weights(4, 10, dtype=torch.float64)
    expected = torch.full((4, 4), 9 / (10 * 3), dtype=torch.float64)
    expected.fill_diagonal_(1 / 10)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(w.sum(1), torch.ones(4, dtype=torch.float64))
    # Well-separated, sharp posteriors: each sample's estimate is (1/N) q(z_i|x_i), for every
    # i, not only the first (a weight matrix with 1/N in column 0 fails this for i > 0).
    means = t(np.arange(4.0)[:, None] * 100.0 * np.ones((1, 2)))
    logvars = t(np.full((4, 2), -2.0))
    z = means + 0.1
    log_qz, log_prod = log_qz_minibatch_stratified(z, means, logvars, 10)
    own = log_density_gaussian(z, means, logvars)
    torch.testing.assert_close(log_qz, own.sum(1) - math.log(10))
    torch.testing.assert_close(log_prod, (own - math.log(10)).sum(1))
    with pytest.raises(ValueError):
        stratified_importance_weights(1, 10)


def test_decomposition_terms_add_up_to_the_average_kl():
    """Exact q(z) and q(z_d) on the tiny dataset, expectation by Monte Carlo over n uniform and
    z ~ q(z|n): MI + TC + dim-wise KL = mean_n KL(q(z|n) || N(0, I)) in closed form."""
    means, logvars = tiny_dataset(seed=7, n=4, d=2)
    rs = np.random.RandomState(8)
    s = 5000
    sd = np.exp(0.5 * logvars)
    z = means[:, None] + sd[:, None] * rs.normal(size=(4, s, 2))  # (n, s, D)
    per_dim = stats.norm.logpdf(z[:, :, None, :], means[None, None], sd[None, None])  # (n, s, n', D)
    log_qz_n = per_dim[np.arange(4), :, np.arange(4)].sum(-1)  # (n, s)
    log_qz = logsumexp(per_dim.sum(-1), axis=-1) - math.log(4)
    log_prod = (logsumexp(per_dim, axis=2) - math.log(4)).sum(-1)
    log_pz = stats.norm.logpdf(z).sum(-1)
    mi, tc, dwkl = [(a - b).mean() for a, b in ((log_qz_n, log_qz), (log_qz, log_prod), (log_prod, log_pz))]
    kl = (0.5 * (means ** 2 + np.exp(logvars) - 1 - logvars)).sum(1).mean()
    total = log_qz_n - log_pz
    assert mi + tc + dwkl == pytest.approx(total.mean(), rel=1e-10)
    assert abs(total.mean() - kl) < 4 * total.std() / math.sqrt(total.size)
    assert 0 <= mi <= math.log(4) and tc > 0 and dwkl > 0


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_with_unit_weights_the_loss_is_the_single_sample_negative_elbo(estimator):
    """alpha = beta = gamma = 1: the estimates of log q(z) cancel, leaving reconstruction +
    mean(log q(z|x) - log p(z)) on every batch, whose expectation is -ELBO (closed-form KL)."""
    torch.manual_seed(0)
    mean, logvar, log_px = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64) * 0.5, -torch.rand(8, dtype=torch.float64)
    losses = []
    for _ in range(4000):
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        loss, s = beta_tcvae_objective(fake_outputs(mean, logvar, z, log_px), 1.0, 1.0, 1.0, 100, estimator)
        mc_kl = (stats.norm.logpdf(z.numpy(), mean.numpy(), torch.exp(0.5 * logvar).numpy())
                 - stats.norm.logpdf(z.numpy())).sum(1).mean()
        assert loss.item() == pytest.approx(s["reconstruction"].item() + mc_kl, rel=1e-9)
        losses.append(loss.item())
    se = np.std(losses) / math.sqrt(len(losses))
    assert abs(np.mean(losses) + s["elbo"].item()) < 4 * se
    assert s["elbo"].item() == pytest.approx(-(s["reconstruction"] + s["kl"]).item())


def test_scalars_and_tensor_hyperparameters():
    torch.manual_seed(1)
    mean, logvar = torch.randn(8, 3), torch.randn(8, 3)
    out = fake_outputs(mean, logvar, mean + torch.exp(0.5 * logvar) * torch.randn(8, 3), -torch.rand(8))
    alphas, betas, gammas = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([1.0, 6.0, 10.0]), torch.tensor([1.0, 1.0, 0.5])
    for estimator in ("mws", "mss"):
        losses, s = beta_tcvae_objective(out, alphas, betas, gammas, 1000, estimator)
        singles = torch.stack([beta_tcvae_objective(out, float(a), float(b), float(g), 1000, estimator)[0]
                               for a, b, g in zip(alphas, betas, gammas)])
        torch.testing.assert_close(losses, singles)
        assert {"loss", "reconstruction", "kl", "elbo", "mi", "tc", "dimwise_kl", "kl_0", "kl_2"} <= set(s)
        torch.testing.assert_close(s["loss"], s["reconstruction"] + alphas * s["mi"] + betas * s["tc"] + gammas * s["dimwise_kl"])


def test_method_class_binds_the_dataset_and_rejects_unknown_estimators():
    method = BetaTCVAE(beta=6, estimator="mss")
    assert method.hyperparameters() == {"alpha": 1.0, "beta": 6.0, "gamma": 1.0, "estimator": "mss"}
    assert BetaTCVAE().hyperparameters()["beta"] == 6.0
    out = fake_outputs(torch.zeros(4, 2), torch.zeros(4, 2), torch.randn(4, 2), -torch.ones(4))
    with pytest.raises(RuntimeError, match="prepare"):
        method.objective(out)
    method.prepare(None, 384)
    loss, _ = method.objective(out)
    expected, _ = beta_tcvae_objective(out, 1.0, 6.0, 1.0, 384, "mss")
    torch.testing.assert_close(loss, expected)
    with pytest.raises(UserError, match="beta_tcvae.estimator must be one of 'mws', 'mss', got 'kde'"):
        BetaTCVAE(estimator="kde")
    with pytest.raises(UserError, match="mws, mss"):
        beta_tcvae_objective(out, 1.0, 1.0, 1.0, 10, estimator="mmd")


TCVAE_PARAMS = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae."))] + [
    "train.method = @beta_tcvae()", "beta_tcvae.beta = 6.0", "beta_tcvae.estimator = 'mss'"]


def test_training_lowers_the_loss_and_records_the_decomposition(tiny_dsprites, tmp_path):
    run_dir, status = train_from_gin([], TCVAE_PARAMS + ["train.steps = 60", "train.log_every = 10"],
                                     tmp_path / "r", "cpu", progress=False)
    assert status == "done"
    assert_loss_fell(run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == "beta_tcvae"
    assert record["hyperparameters"] == {"alpha": 1.0, "beta": 6.0, "gamma": 1.0, "estimator": "mss"}
    results = json.loads((run_dir / "model" / "results.json").read_text())
    assert {"tc", "mi", "dimwise_kl", "kl", "kl_3"} <= set(results)
    assert all(math.isfinite(results[k]) for k in ("tc", "mi", "dimwise_kl"))
