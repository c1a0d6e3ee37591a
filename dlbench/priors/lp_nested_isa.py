"""The Lp-nested ISA prior of Stuehmer, Turner and Nowozin (AISTATS 2020, eqs. 7-11), an
Lp-nested symmetric distribution (Sinz and Bethge, JMLR 2010) whose tree has depth two.

The latent vector is cut into l0 consecutive subspaces V_1, ..., V_l0 of sizes n_1, ..., n_l0
(n = sum n_i). Each subspace has its own exponent p_i and the root has p0 (eq. 9):

    v_i(z) = (sum_{j in V_i} |z_j|^p_i)^(1/p_i),        f(z) = (sum_i v_i^p0)^(1/p0).

An Lp-nested symmetric density with radial density psi is (eq. 7)

    p(z) = psi(f(z)) / (f(z)^(n-1) S_f(1)),

where S_f(1) is the surface area of the Lp-nested unit sphere (eq. 8): with one factor for each
inner node I of the tree (exponent p_I, l_I children, n_I leaves under it, n_{I,k} under its
k-th child),

    S_f(1) = 2^n prod_I [prod_{k=1}^{l_I - 1} B(sum_{m<=k} n_{I,m} / p_I, n_{I,k+1} / p_I)] / p_I^(l_I - 1)
           = 2^n prod_I prod_k Gamma(n_{I,k} / p_I) / (p_I^(l_I - 1) Gamma(n_I / p_I)).

Here the inner nodes are the root (children: the subspaces, n_{0,k} = n_k) and each subspace
(children: n_i leaves, one each). The radial density is the generalised chi of eq. 11,

    psi(v) = p0 v^(n-1) exp(-v^p0 / s) / (Gamma(n/p0) s^(n/p0)),   i.e. v^p0 / s ~ Gamma(n/p0, 1),

and it makes the subspaces independent (p(z) is proportional to exp(-sum_i v_i^p0 / s)).

Scale convention (the paper leaves s implicit): s = p0, so the density is proportional to
exp(-f(z)^p0 / p0). With p0 = p_i = 2 this is exactly N(0, I); with one subspace and p = p0 it is
the product of generalised normals exp(-|z_j|^p / p) (scipy's gennorm with beta = p and scale
p^(1/p)).

The factor v^(n-1) of psi cancels the f^(n-1) of eq. 7, so

    log p(z) = log p0 - (n/p0) log p0 - lgamma(n/p0) - log S_f(1) - f(z)^p0 / p0,

which is finite everywhere, z = 0 included, and is computed that way (no division by f).

Sampling is Algorithm 1 of the paper (Sinz and Bethge's exact sampler): a point uniform on the
positive orthant of the Lp-nested unit sphere from Dirichlet draws down the tree (at a node with
exponent p, (u_1^p, ..., u_l^p) ~ Dirichlet(n_1/p, ..., n_l/p)), scaled by a radius drawn from psi,
with independent random signs. Algorithm 1 first scales the sphere point by a Beta(n, 1) radius
(a uniform point in the ball) and then divides that radius out again; we skip that round trip.
"""

import math
import numbers

import gin
import torch
from torch import nn

from dlbench import checks
from dlbench.errors import UserError
from dlbench.priors.base import Prior


def _safe_pow(x, exponent):
    """x ** exponent for x >= 0, exactly 0 where x == 0 with a zero gradient there (the plain
    power has an infinite or NaN gradient at 0 for exponents below 1, and in the exponent)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)) ** exponent, torch.zeros_like(x))


def lp_norm(x, p):
    """(sum_j |x_j|^p)^(1/p) over the last dimension, for any p > 0 (a tensor, differentiable;
    it may hold one exponent per row, shaped to broadcast against x with a trailing 1).

    Computed as m * (sum_j (|x_j| / m)^p)^(1/p) with m = max_j |x_j|, so large |x| or large p
    do not overflow; all-zero rows give exactly 0."""
    magnitude = x.abs()
    largest = magnitude.amax(dim=-1, keepdim=True)
    nonzero = largest > 0
    safe_largest = torch.where(nonzero, largest, torch.ones_like(largest))
    powered_sum = _safe_pow(magnitude / safe_largest, p).sum(dim=-1, keepdim=True)
    # The largest term is 1, so the sum is >= 1 wherever the row is not all zero.
    safe_sum = torch.where(nonzero, powered_sum, torch.ones_like(powered_sum))
    return (largest * safe_sum ** (1.0 / p)).squeeze(-1)


def log_surface_area(p0, p, subspace_sizes):
    """log S_f(1) of eq. 8 for the ISA tree: the root (exponent p0) over the subspaces, each
    subspace (exponent p_i, a tensor of l0 values) over its leaves."""
    sizes = torch.as_tensor(subspace_sizes, dtype=p.dtype, device=p.device)  # a list, or the prior's tensor
    n, children = sizes.sum(), sizes.shape[-1]
    p0 = torch.full((), p0, dtype=p.dtype, device=p.device)
    root = torch.lgamma(sizes / p0).sum() - torch.lgamma(n / p0) - (children - 1) * torch.log(p0)
    subspaces = sizes * torch.lgamma(1.0 / p) - torch.lgamma(sizes / p) - (sizes - 1) * torch.log(p)
    return n * math.log(2.0) + root + subspaces.sum()


def log_radial_normaliser(p0, n):
    """log of the constant p0 / (Gamma(n/p0) s^(n/p0)) of the radial density (eq. 11), s = p0."""
    return math.log(p0) - math.lgamma(n / p0) - (n / p0) * math.log(p0)


def _check_subspace_sizes(subspace_sizes):
    sizes = list(subspace_sizes) if isinstance(subspace_sizes, (list, tuple)) else None
    if not sizes or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and k > 0 for k in sizes):
        raise UserError(f"lp_nested_isa.subspace_sizes must be a non-empty list of positive integers "
                        f"(e.g. [4, 4, 4, 4, 4]), got {subspace_sizes!r}")
    return [int(k) for k in sizes]


def _check_exponents(p0, p, num_subspaces):
    p0 = checks.number("lp_nested_isa.p0", p0, positive=True)
    exponents = list(p) if isinstance(p, (list, tuple)) else [p] * num_subspaces
    if len(exponents) != num_subspaces:
        raise UserError(f"lp_nested_isa.p has {len(exponents)} exponents for {num_subspaces} subspaces; "
                        f"give one number or one per subspace")
    try:
        exponents = [checks.number("lp_nested_isa.p", x, positive=True) for x in exponents]
    except UserError:  # said of what was given: one number, or one per subspace
        raise UserError(f"lp_nested_isa.p must be positive numbers that float32 holds (one, or one per subspace), "
                        f"got {p!r}") from None
    return p0, exponents


@gin.configurable("lp_nested_isa")
class LpNestedISA(Prior):
    """Lp-nested ISA prior. `subspace_sizes` gives the consecutive subspaces (their sum is the
    latent dimension), `p0` the root exponent (fixed), `p` one exponent or one per subspace;
    `learn_p` makes the subspace exponents trainable (stored as log p_i, so they stay positive).
    Unlike the other priors, latent_dim comes last and is optional (the layout fixes it), so
    `LpNestedISA(p0, subspace_sizes, p)` reads as the paper's parameters."""

    name = "lp_nested_isa"

    def __init__(self, p0=2.1, subspace_sizes=(4, 4, 4, 4, 4), p=2.2, learn_p=False, latent_dim=None):
        sizes = _check_subspace_sizes(subspace_sizes)
        p0, exponents = _check_exponents(p0, p, len(sizes))
        if not isinstance(learn_p, bool):
            raise UserError(f"lp_nested_isa.learn_p must be True or False, got {learn_p!r}")
        n = sum(sizes)
        if latent_dim is not None and int(latent_dim) != n:
            raise UserError(f"model.latent_dim ({latent_dim}) must equal the sum of lp_nested_isa.subspace_sizes "
                            f"({n} = {' + '.join(map(str, sizes))}); change one of them")
        super().__init__(n)
        self.p0 = p0
        self.subspace_sizes = sizes
        self.initial_p = exponents
        self.learn_p = learn_p
        # The sizes, and fixed exponents, as tensors that move with the model, made once: made from
        # Python numbers at each step they would be copied to the device, which waits for it. Not
        # state (the settings rebuild them); the exponents in float64, so that a prior converted
        # to float64 has them exactly.
        self.register_buffer("_sizes", torch.tensor(sizes), persistent=False)
        if learn_p:
            # Learned as log p_i, so that every optimiser step keeps p_i > 0.
            self.log_p = nn.Parameter(torch.log(torch.tensor(exponents, dtype=torch.get_default_dtype())))
        else:
            self.log_p = None
            self.register_buffer("_fixed_p", torch.tensor(exponents, dtype=torch.float64), persistent=False)

    def settings(self):
        return {"p0": self.p0, "subspace_sizes": list(self.subspace_sizes), "p": list(self.initial_p),
                "learn_p": self.learn_p}

    def exponents(self):
        """The current subspace exponents p_i, an (l0,) tensor (differentiable when learned)."""
        if self.log_p is None:
            return self._fixed_p.to(self._anchor.dtype)
        return self.log_p.exp()

    def subspace_norms(self, z):
        """(..., l0) tensor of v_i(z), the L_{p_i} norm of each subspace of z (eq. 9)."""
        p = self.exponents().to(z.dtype)
        if len(set(self.subspace_sizes)) == 1:
            # Equal subspaces (the paper's layouts): one batched norm over (..., l0, size) instead
            # of a loop, fewer kernel launches on the training path.
            blocks = z.unflatten(-1, (len(self.subspace_sizes), self.subspace_sizes[0]))
            return lp_norm(blocks, p.unsqueeze(-1))   # p as (l0, 1) broadcasts over each block
        blocks = z.split(self.subspace_sizes, dim=-1)
        return torch.stack([lp_norm(block, p_i) for block, p_i in zip(blocks, p.unbind())], dim=-1)

    def nested_norm(self, z):
        """f(z) of eq. 9 for each row of z."""
        return lp_norm(self.subspace_norms(z), torch.full((), self.p0, dtype=z.dtype, device=z.device))

    def log_normaliser(self, dtype=None):
        """log p(0): log psi's constant minus log S_f(1) (a 0-d tensor, differentiable in p_i)."""
        p = self.exponents() if dtype is None else self.exponents().to(dtype)
        n = self.latent_dim
        return log_radial_normaliser(self.p0, n) - log_surface_area(self.p0, p, self._sizes)

    def log_prob(self, z):
        # f^p0 = sum_i v_i^p0: summed directly rather than through f, one power fewer.
        f_pow_p0 = _safe_pow(self.subspace_norms(z), self.p0).sum(dim=-1)
        return self.log_normaliser(z.dtype) - f_pow_p0 / self.p0

    def _log_standard_gamma(self, concentration, generator):
        """log of Gamma(concentration, 1) draws, one per entry of `concentration`.

        Uses Gamma(a) = Gamma(a + 1) * U^(1/a) in log space: exact for every a > 0, and small
        concentrations (large exponents) do not underflow to 0, which would make the Dirichlet
        normalisation 0/0."""
        shifted = torch._standard_gamma(concentration + 1.0, generator=generator)
        uniform = 1.0 - torch.rand(concentration.shape, generator=generator, device=concentration.device,
                                   dtype=concentration.dtype)  # in (0, 1], so its log is finite
        return torch.log(shifted) + torch.log(uniform) / concentration

    def _log_dirichlet_root(self, log_gammas, exponent):
        """log u for u on the positive orthant of an L_exponent sphere, from log Gamma draws
        (..., k): u^exponent = G / sum G is Dirichlet distributed."""
        return (log_gammas - torch.logsumexp(log_gammas, dim=-1, keepdim=True)) / exponent

    @torch.no_grad()
    def sample(self, n, generator=None):
        device, dtype = self._anchor.device, self._anchor.dtype
        p = self.exponents().to(dtype)
        sizes = self._sizes

        def log_gamma(concentration):
            return self._log_standard_gamma(concentration.expand(n, -1), generator)

        # Radius from psi (eq. 11): v^p0 / p0 ~ Gamma(n / p0).
        log_radius = (math.log(self.p0) + log_gamma(torch.full((1,), self.latent_dim / self.p0, dtype=dtype, device=device))) / self.p0
        # Root node: split the radius among the subspaces, Dirichlet(n_i / p0) ** (1 / p0).
        log_subspace_radius = log_radius + self._log_dirichlet_root(log_gamma(sizes.to(dtype) / self.p0), self.p0)
        # Subspace nodes: split each subspace radius among its leaves, Dirichlet(1 / p_i) ** (1 / p_i).
        # output_size: with sizes on a GPU, repeat_interleave would otherwise wait for it to read them
        leaf_gammas = log_gamma(1.0 / torch.repeat_interleave(p, sizes, output_size=self.latent_dim)).split(
            self.subspace_sizes, dim=-1)
        log_directions = torch.cat([self._log_dirichlet_root(block, p_i)
                                    for block, p_i in zip(leaf_gammas, p.unbind())], dim=-1)
        magnitude = (log_directions + torch.repeat_interleave(log_subspace_radius, sizes, dim=-1,
                                                              output_size=self.latent_dim)).exp()
        # Random signs at the leaves.
        signs = torch.where(self._rand(n, self.latent_dim, generator=generator) < 0.5, -1.0, 1.0).to(dtype)
        return signs * magnitude
