"""Rotations of the latent space (Mathieu et al., 2019, Theorem 2): the beta-VAE objective of the
rotated model, and MIG and the FactorVAE score of its rotated representation.

For a rotation R (orthogonal, det R = 1) the rotated model has the encoder
q'(z'|x) = N(z'; R mu(x), R S(x) R^T) and the decoder p'(x|z') = p(x|R^T z'). Theorem 2: with an
isotropic Gaussian prior its beta-VAE objective

  L(x) = E_q'(z'|x)[log p'(x|z') - beta (log q'(z'|x) - log p(z'))]

equals the original model's for every R, while a representation R mu(x) mixes the latents, so
disentanglement scores change. With any other prior only the term E[log p(z')] moves (the
rotated Gaussian's log-density at z' = Rz equals the original's at z because |det R| = 1, and the
decoder sees R^T z' = z).

The measurement, for R_0 = I and num_rotations rotations R_1 ... drawn from the Haar measure on
SO(d) (scipy.stats.special_ortho_group, seeded):
- the objective: a Monte-Carlo estimate over num_points observations with num_samples draws
  z = mu + sigma * eps each. The SAME eps serve every rotation (z' = R z), so a change of the
  estimate between two rotations is the change of the objective on the same draws, not
  Monte-Carlo noise. The terms are those of the rotated model: the full-covariance Gaussian
  density of q' at z' and the prior at z'; the decoder's input R^T z' is z (R^T R = I), so the
  reconstruction term log p(x|z) is computed once, or, with decode_every_rotation, by running
  the decoder at R^T z' for every rotation (which costs a decoder pass per rotation and shows
  the same up to float rounding). `objective_stderr` is the estimate's standard error over
  observations (the Monte-Carlo error of the objective itself); the standard error of a change is
  that of the paired per-observation differences;
- MIG and the FactorVAE score (the mig and factor_vae metrics, their protocols' parameters as
  given) of the rotated mean representation R mu(x). Each rotation is scored with the same
  protocol seed, so every rotation sees the same observations and votes: the encoder runs once
  and the codes are rotated (see _ReplayedEncoder).

Draws from the metric's random state, in order: three seeds (of the rotations, the noise eps and
the scores' protocol), then the objective's num_points factor vectors, then whatever rendering
their observations draws. Rotation r is random_rotations(d, num_rotations, RandomState(rotation
seed))[r - 1]; eps is drawn batch by batch (batch_size observations, (n, num_samples, d) each) from
RandomState(noise seed).
"""

import hashlib
import math

import numpy as np

from dlbench import checks
from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import utils
from dlbench.metrics.factor_vae import compute_factor_vae
from dlbench.metrics.mig import compute_mig

ROTATIONS = "Haar on SO(d) (scipy.stats.special_ortho_group); rotation 0 is the identity"
_LOG_2PI = math.log(2.0 * math.pi)
_SEED_RANGE = 2 ** 31 - 1


def random_rotations(dim, count, random_state):
    """(count, dim, dim) rotation matrices drawn from the Haar measure on SO(dim)."""
    if dim < 2:
        raise UserError(f"rotating the latent space needs at least 2 latent dimensions, the model has {dim}")
    from scipy.stats import special_ortho_group  # here: scipy.stats takes a third of a second to import

    drawn = special_ortho_group.rvs(dim, size=count, random_state=random_state)
    return np.asarray(drawn, dtype=np.float64).reshape(count, dim, dim)


def rotated_gaussian_log_density(z_rotated, mean, std, rotation):
    """log N(z'; R mean, R diag(std^2) R^T) of codes z' (n, S, d) under each row's rotated
    posterior (mean, std: (n, d)). L = R diag(std) is a square root of the covariance, so the
    density is that of u = L^-1 (z' - R mean), with log |det L| = sum log std (|det R| = 1)."""
    centred = z_rotated - (mean @ rotation.T)[:, None, :]
    u = (centred @ rotation) / std[:, None, :]
    dim = mean.shape[1]
    return -0.5 * (u ** 2).sum(-1) - np.log(std).sum(-1)[:, None] - 0.5 * dim * _LOG_2PI


def _checked(values, name, shape):
    values = np.asarray(values, dtype=np.float64)
    if values.shape != shape or not np.all(np.isfinite(values)):
        raise UserError(f"{name} returned bad values: expected {shape[0]} finite rows, got shape {values.shape}")
    return values


def rotated_terms(observations, mean, logvar, eps, rotation, decode_log_likelihood_fn, log_prior_fn):
    """Per observation (each averaged over its samples) the terms of the rotated model's objective
    at z' = R (mean + std * eps): 'log_q' log q'(z'|x), 'log_prior' log p(z') and, unless
    decode_log_likelihood_fn is None, 'recon' log p(x|R^T z'). eps: (n, S, d)."""
    n, num_samples, dim = eps.shape
    std = np.exp(0.5 * logvar)
    z_rotated = (mean[:, None, :] + std[:, None, :] * eps) @ rotation.T
    log_prior = _checked(log_prior_fn(z_rotated.reshape(n * num_samples, dim)), "log_prior_fn", (n * num_samples,))
    terms = {"log_q": rotated_gaussian_log_density(z_rotated, mean, std, rotation).mean(1),
             "log_prior": log_prior.reshape(n, num_samples).mean(1)}
    if decode_log_likelihood_fn is not None:
        decoder_input = (z_rotated @ rotation).reshape(n * num_samples, dim)  # rows R^T z'
        repeated = np.repeat(observations, num_samples, axis=0)
        recon = _checked(decode_log_likelihood_fn(repeated, decoder_input), "decode_log_likelihood_fn",
                         (n * num_samples,))
        terms["recon"] = recon.reshape(n, num_samples).mean(1)
    return terms


def objective_terms(data, encode_fn, decode_log_likelihood_fn, log_prior_fn, random_state, noise_state,
                    rotation_state, num_rotations, num_points, num_samples, batch_size, decode_every_rotation):
    """(rotations (R+1, d, d) with the identity first, {term: (R+1, num_points)}): the terms of
    rotated_terms for every rotation, on the same observations and noise. The decoder runs at the
    identity, and at R^T z' for every rotation only when decode_every_rotation (R^T z' = z: the
    other rotations get the identity's reconstruction term, which is theirs exactly)."""
    factors = data.sample_factors(num_points, random_state)
    rotations, parts = None, []
    for start in range(0, num_points, batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        mean, logvar = (np.asarray(a, dtype=np.float64) for a in encode_fn(observations))
        if rotations is None:
            dim = mean.shape[1]
            rotations = np.concatenate([np.eye(dim)[None], random_rotations(dim, num_rotations, rotation_state)])
        eps = noise_state.standard_normal((len(observations), num_samples, mean.shape[1]))
        per_rotation = []
        for index, rotation in enumerate(rotations):
            decode = decode_log_likelihood_fn if index == 0 or decode_every_rotation else None
            terms = rotated_terms(observations, mean, logvar, eps, rotation, decode, log_prior_fn)
            per_rotation.append({"recon": per_rotation[0]["recon"], **terms} if index else terms)
        parts.append({key: np.stack([t[key] for t in per_rotation]) for key in per_rotation[0]})
    return rotations, {key: np.concatenate([p[key] for p in parts], axis=1) for key in parts[0]}


def _fingerprint(observations):
    """A digest of a batch (its shape and a strided subset of its values, at most 256 per row)."""
    flat = np.asarray(observations).reshape(len(observations), -1)
    sample = np.ascontiguousarray(flat[:, ::max(1, flat.shape[1] // 256)])
    return flat.shape, hashlib.blake2b(sample.tobytes(), digest_size=16).digest()


class _ReplayedEncoder:
    """mean_fn that remembers the codes of each call in order. Every rotation runs a score with the
    same seed, so its calls repeat those of the first pass with the same observations: the k-th
    call of a later pass gets the k-th codes back instead of encoding again (a fingerprint of the
    observations guards this; a call that differs is encoded)."""

    def __init__(self, mean_fn):
        self.mean_fn, self.calls, self.position = mean_fn, [], 0

    def restart(self):
        self.position = 0

    def __call__(self, observations):
        key = _fingerprint(observations)
        if self.position < len(self.calls) and self.calls[self.position][0] == key:
            codes = self.calls[self.position][1]
        else:
            codes = np.asarray(self.mean_fn(observations), dtype=np.float64)
            self.calls[self.position:self.position + 1] = [(key, codes)]
        self.position += 1
        return codes


def _rotated(encoder, rotation):
    """The representation x -> R mean(x) served by a replayed encoder, from its first call on."""
    encoder.restart()
    return lambda observations: encoder(observations) @ rotation.T


def rotated_scores(data, mean_fn, rotations, seed, mig_params, factor_vae_params):
    """[(MIG, FactorVAE eval accuracy)] of the representation x -> R mean_fn(x) for each R of
    rotations, each scored with np.random.RandomState(seed) (the same draws for every R) and the
    given protocol parameters of compute_mig and compute_factor_vae."""
    encoders = {"mig": _ReplayedEncoder(mean_fn), "factor_vae": _ReplayedEncoder(mean_fn)}
    scores = []
    for rotation in rotations:
        mig = compute_mig(data, _rotated(encoders["mig"], rotation), np.random.RandomState(seed), **mig_params)
        factor_vae = compute_factor_vae(data, _rotated(encoders["factor_vae"], rotation), np.random.RandomState(seed),
                                        **factor_vae_params)
        scores.append((mig["discrete_mig"], factor_vae.get("eval_accuracy")))  # None where it is undefined
    return scores


def _mean_and_stderr(values):
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def _summary(name, values):
    """{name: value at the identity, name_min, name_max over the rotations, name_max_abs_change}."""
    rotated = np.asarray(values[1:])
    return {name: float(values[0]), f"{name}_min": float(rotated.min()), f"{name}_max": float(rotated.max()),
            f"{name}_max_abs_change": float(np.abs(rotated - values[0]).max())}


def compute_rotation(data, representation_fn, random_state, encode_fn=None, decode_log_likelihood_fn=None,
                     log_prior_fn=None, num_rotations=5, beta=1.0, num_points=10000, num_samples=1,
                     mig_num_train=10000, factor_vae_num_train=10000, factor_vae_num_eval=5000,
                     factor_vae_num_variance_estimate=10000, decode_every_rotation=False, batch_size=1024):
    """The beta-VAE objective, MIG and the FactorVAE score of the model rotated by the identity and
    by num_rotations random rotations (see the module's docstring). representation_fn is unused:
    the rotated representation is R times the encoder mean (encode_fn's).

    Keys, at the identity: objective, objective_stderr, recon_ll, kl (Monte Carlo, log q - log p),
    log_prior, mig, factor_vae (eval accuracy); per rotation r = 1 .. num_rotations: objective_r<r>,
    objective_change_r<r> (minus the identity's, on the same draws) and objective_change_stderr_r<r>,
    log_prior_change_r<r>, mig_r<r>, factor_vae_r<r> (and recon_change_r<r> when the decoder ran for
    every rotation); summary: max_abs_objective_change, max_abs_objective_change_over_stderr (over
    objective_stderr), mig_min, mig_max, mig_max_abs_change and the same for factor_vae; and the
    parameters.
    """
    del representation_fn
    if encode_fn is None or decode_log_likelihood_fn is None or log_prior_fn is None:
        raise UserError("rotation needs the whole model: pass encode_fn, decode_log_likelihood_fn and log_prior_fn; "
                        "dlb_evaluate passes the trained model's")
    require_discrete_factors(data, "rotation")
    num_rotations = utils.check_int("num_rotations", num_rotations)
    beta = utils.check_float("beta", beta)
    num_points = utils.check_int("num_points", num_points, minimum=2)
    num_samples = utils.check_int("num_samples", num_samples)
    batch_size = utils.check_int("batch_size", batch_size)
    decode_every_rotation = checks.flag("decode_every_rotation", decode_every_rotation)
    # the scores' parameters are checked here too, not after the objective has been computed
    mig_params = {"num_train": utils.check_int("mig_num_train", mig_num_train, minimum=2), "batch_size": batch_size}
    factor_vae_params = {
        "num_train": utils.check_int("factor_vae_num_train", factor_vae_num_train),
        "num_eval": utils.check_int("factor_vae_num_eval", factor_vae_num_eval),
        "num_variance_estimate": utils.check_int("factor_vae_num_variance_estimate", factor_vae_num_variance_estimate,
                                                 minimum=2)}

    rotation_seed, noise_seed, protocol_seed = random_state.randint(_SEED_RANGE, size=3)
    rotations, terms = objective_terms(data, encode_fn, decode_log_likelihood_fn, log_prior_fn, random_state,
                                       np.random.RandomState(noise_seed), np.random.RandomState(rotation_seed),
                                       num_rotations, num_points, num_samples, batch_size, decode_every_rotation)
    objective = terms["recon"] - beta * (terms["log_q"] - terms["log_prior"])
    scores = rotated_scores(data, lambda x: encode_fn(x)[0], rotations, protocol_seed, mig_params,
                            factor_vae_params)

    result = {"num_rotations": num_rotations, "beta": beta, "num_points": num_points, "num_samples": num_samples,
              "mig_num_train": mig_num_train, "factor_vae_num_train": factor_vae_num_train,
              "factor_vae_num_eval": factor_vae_num_eval,
              "factor_vae_num_variance_estimate": factor_vae_num_variance_estimate,
              "decode_every_rotation": decode_every_rotation,
              "latent_dim": rotations.shape[1], "rotations": ROTATIONS, "noise": "shared by every rotation"}
    result["objective"], result["objective_stderr"] = _mean_and_stderr(objective[0])
    result.update(recon_ll=float(terms["recon"][0].mean()), log_prior=float(terms["log_prior"][0].mean()),
                  kl=float((terms["log_q"][0] - terms["log_prior"][0]).mean()))
    changes = []
    for r in range(1, num_rotations + 1):
        change, change_stderr = _mean_and_stderr(objective[r] - objective[0])
        changes.append(change)
        result.update({f"objective_r{r}": float(objective[r].mean()), f"objective_change_r{r}": change,
                       f"objective_change_stderr_r{r}": change_stderr,
                       f"log_prior_change_r{r}": float((terms["log_prior"][r] - terms["log_prior"][0]).mean()),
                       f"mig_r{r}": float(scores[r][0])})
        if scores[r][1] is not None:
            result[f"factor_vae_r{r}"] = float(scores[r][1])
        if decode_every_rotation:
            result[f"recon_change_r{r}"] = float((terms["recon"][r] - terms["recon"][0]).mean())
    largest = float(np.abs(changes).max())
    result["max_abs_objective_change"] = largest
    if result["objective_stderr"] > 0:
        result["max_abs_objective_change_over_stderr"] = largest / result["objective_stderr"]
    else:
        result["max_abs_objective_change_over_stderr_missing_reason"] = "the objective is the same for every observation"
    result.update(_summary("mig", [s[0] for s in scores]))
    if scores[0][1] is None:  # a single factor varies (compute_factor_vae says so)
        result["factor_vae_missing_reason"] = "a single factor varies: any representation would score 1"
    else:
        result.update(_summary("factor_vae", [s[1] for s in scores]))
    return result
