"""Total correlation of the aggregate posterior, KL(q(z) || prod_j q(z_j)), in nats.

q(z) = (1/N) sum_n q(z|x_n) over the dataset (every grid point by default, as Chen et al.
evaluate it; num_points drawn observations otherwise). TC = E_q(z)[log q(z) - sum_j log q_j(z_j)]
is estimated from num_samples draws z_s ~ q(z), with log q(z_s) and log q_j(z_sj) exact
log-sum-exps over the N points. Unlike the unsupervised metric's gaussian_total_correlation
(a Gaussian fitted to the mean codes), this is the total correlation the beta-TCVAE and
FactorVAE objectives penalise.
"""

from dlbench.errors import UserError
from dlbench.metrics import aggregate_posterior, utils


def compute_total_correlation(data, representation_fn, random_state, encode_fn=None, num_samples=10000,
                              num_points=None, batch_size=1024, device="cpu"):
    """Keys: total_correlation, total_correlation_stderr, num_samples, num_points, points
    ('full_grid' or 'sampled'). representation_fn is unused (the uniform metric signature)."""
    del representation_fn
    if encode_fn is None:
        raise UserError("total_correlation needs the encoder's Gaussian: pass encode_fn (observations -> "
                        "(mean, logvar)); dlb_evaluate passes the trained model's")
    num_samples = utils.check_int("num_samples", num_samples, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    _, mean, logvar, points = aggregate_posterior.posterior_points(data, encode_fn, random_state, num_points,
                                                                   batch_size)
    _, z = aggregate_posterior.sample_posterior(mean, logvar, num_samples, random_state)
    per_dim, joint = aggregate_posterior.log_aggregate_density(z, mean, logvar, device, joint=True)
    terms = joint - per_dim.sum(axis=1)
    return {"total_correlation": float(terms.mean()),
            "total_correlation_stderr": float(terms.std(ddof=1) / num_samples ** 0.5),
            "num_samples": num_samples, "num_points": len(mean), "points": points}
