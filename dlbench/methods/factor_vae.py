"""FactorVAE (Kim and Mnih, 2018): the negative ELBO + gamma * TC(z), the total correlation
TC(z) = KL(q(z) || prod_j q(z_j)) of the aggregate posterior estimated by a discriminator.

The density-ratio trick: a classifier D trained to tell samples of q(z) ("joint", class 0)
from samples of prod_j q(z_j) ("permuted", class 1), in equal numbers, tends to
D(z) = q(z) / (q(z) + prod_j q(z_j)), so

    TC(z) = E_q(z)[log q(z) / prod_j q(z_j)] ~= E_q(z)[log D(z) / (1 - D(z))]
          = mean over the batch of (logit_joint - logit_permuted)

for a two-logit softmax output. The classes are balanced in the discriminator's loss, so no
prior-odds correction is needed and `tc` estimates the total correlation itself, in nats.
Samples of prod_j q(z_j) come from a second batch whose latent codes are permuted across the
batch, each dimension independently (Kim and Mnih, Algorithm 1).

One training step: `loss` gives the VAE's objective, with the discriminator evaluated on
detached copies of its parameters (the VAE update never moves it); the trainer steps the VAE;
`after_step` then takes one Adam step of the discriminator on the first batch's (detached) z
against the permuted z' of a fresh batch encoded without gradients (its update never moves
the VAE). The discriminator and its optimiser are the method's state, saved in checkpoints.
"""

import gin
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from dlbench import checks
from dlbench.methods.base import Method
from dlbench.methods.estimators import elbo_terms, vae_scalars

JOINT, PERMUTED = 0, 1  # the discriminator's classes (logit columns)


def make_discriminator(latent_dim, width=1000, layers=6):
    """disentanglement_lib's fc_discriminator (Kim and Mnih, Appendix A): `layers` hidden
    linear layers of `width` units with LeakyReLU(0.2), then a linear layer to 2 logits."""
    modules, fan_in = [], latent_dim
    for _ in range(layers):
        modules += [nn.Linear(fan_in, width), nn.LeakyReLU(0.2)]
        fan_in = width
    modules.append(nn.Linear(fan_in, 2))
    return nn.Sequential(*modules)


def permute_dims(z, generator=None):
    """Each column of z shuffled across the batch by its own random permutation: a sample of
    prod_j q(z_j) when the rows are samples of q(z). Sorting uniform noise gives one
    permutation per column in a single vectorised call (the indices are distinct even on ties)."""
    noise = torch.rand(z.shape, generator=generator, device=z.device)
    return torch.gather(z, 0, noise.argsort(dim=0))


def tc_from_logits(logits):
    """The density-ratio estimate of TC: mean of log D/(1-D) = logit_joint - logit_permuted."""
    return (logits[:, JOINT] - logits[:, PERMUTED]).mean(0)


def factor_vae_objective(outputs, gamma, discriminator_logits):
    """Loss and scalars for one forward pass; `discriminator_logits` maps z to (B, 2) logits
    (the caller decides whether gradients reach the discriminator); gamma may be a tensor."""
    reconstruction, kl, kl_per_dim = elbo_terms(outputs)
    tc = tc_from_logits(discriminator_logits(outputs.z))
    loss = reconstruction + kl + gamma * tc
    return loss, vae_scalars(loss, reconstruction, kl, kl_per_dim, tc=tc)


def discriminator_loss_and_accuracy(logits_joint, logits_permuted):
    """Cross-entropy with the two classes weighted equally (so D estimates the density ratio
    with even prior odds) and the mean of the two halves' accuracies."""
    joint = torch.full((logits_joint.shape[0],), JOINT, device=logits_joint.device)
    permuted = torch.full((logits_permuted.shape[0],), PERMUTED, device=logits_permuted.device)
    loss = 0.5 * (F.cross_entropy(logits_joint, joint) + F.cross_entropy(logits_permuted, permuted))
    accuracy = 0.5 * ((logits_joint.argmax(1) == JOINT).float().mean()
                      + (logits_permuted.argmax(1) == PERMUTED).float().mean())
    return loss, accuracy


@gin.configurable("factor_vae")
class FactorVAE(Method):
    """gamma = 40 by default: the middle of disentanglement_lib's study grid [10, 20, 30, 40,
    50, 100] (which itself has no default), as beta_vae's 4 is of its grid. The discriminator
    and its Adam (lr 1e-4, betas 0.5/0.9, eps 1e-8) are the study's."""

    name = "factor_vae"
    tensor_hyperparameters = ("gamma",)

    def __init__(self, gamma=40.0, discriminator_lr=1e-4, discriminator_betas=(0.5, 0.9),
                 discriminator_width=1000, discriminator_layers=6):
        self.gamma = checks.hyperparameter("factor_vae.gamma", gamma, minimum=0)
        self.discriminator_lr = checks.nonzero_in_float32("factor_vae.discriminator_lr", discriminator_lr,
                                                          "and Adam would then take no step")
        self.discriminator_betas = tuple(checks.numbers("factor_vae.discriminator_betas", discriminator_betas,
                                                        length=2, minimum=0, maximum=0.999999))
        self.discriminator_width = checks.integer("factor_vae.discriminator_width", discriminator_width, minimum=1)
        self.discriminator_layers = checks.integer("factor_vae.discriminator_layers", discriminator_layers, minimum=1)
        self.discriminator = self.discriminator_optimizer = None

    def min_batch_size(self):
        return 2  # the discriminator tells codes from codes permuted across the batch: one is its own permutation

    def hyperparameters(self):
        return {"gamma": float(self.gamma), "discriminator_lr": self.discriminator_lr,
                "discriminator_betas": list(self.discriminator_betas),
                "discriminator_width": self.discriminator_width, "discriminator_layers": self.discriminator_layers}

    def build(self, latent_dim, device=None, dtype=torch.float32):
        """A fresh discriminator and optimiser. Built on the CPU from the global RNG, then moved,
        so its initial weights depend only on the torch seed, on every device."""
        discriminator = make_discriminator(latent_dim, self.discriminator_width, self.discriminator_layers)
        self.discriminator = discriminator.to(device=device, dtype=dtype)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.discriminator_lr,
                                                        betas=self.discriminator_betas, eps=1e-8)

    def prepare(self, model, num_observations):
        anchor = next(model.parameters())
        self.build(model.prior.latent_dim, anchor.device, anchor.dtype)

    def _require_discriminator(self):
        if self.discriminator is None:
            raise RuntimeError("factor_vae has no discriminator yet: call prepare (or build) first")

    def frozen_logits(self, z):
        """Discriminator logits through detached copies of its parameters: gradients reach z
        (the encoder) and never the discriminator."""
        self._require_discriminator()
        # a stack of runs (dlbench.train.stack) hands each run's own discriminator in, detached
        params = getattr(self, "discriminator_params", None) or \
            {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, params, (z,))

    def objective(self, outputs, step=0, draws=None):
        return factor_vae_objective(outputs, self.gamma, self.frozen_logits)

    def discriminator_step(self, z_joint, z_permuted):
        """One Adam step of the discriminator on samples of q(z) and of prod_j q(z_j), both
        detached; returns the loss and accuracy before the step."""
        self._require_discriminator()
        logits = self.discriminator(torch.cat([z_joint.detach(), z_permuted.detach()]))
        loss, accuracy = discriminator_loss_and_accuracy(logits[:len(z_joint)], logits[len(z_joint):])
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.discriminator_optimizer.step()
        return loss.detach(), accuracy

    def after_step(self, model, outputs, sample_batch, generator=None):
        # the step's codes are the "joint" samples; a second batch gives the permuted ones
        with torch.no_grad():  # the discriminator's update must never reach the encoder
            mean, logvar = model.encode(sample_batch())
            z_permuted = permute_dims(model.sample_z(mean, logvar, generator), generator)
        loss, accuracy = self.discriminator_step(outputs.z.detach(), z_permuted)
        return {"discriminator_loss": loss, "discriminator_accuracy": accuracy}

    def state_dict(self):
        self._require_discriminator()
        return {"discriminator": self.discriminator.state_dict(),
                "discriminator_optimizer": self.discriminator_optimizer.state_dict()}

    def load_state_dict(self, state):
        self._require_discriminator()
        self.discriminator.load_state_dict(state["discriminator"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
