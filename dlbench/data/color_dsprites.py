"""color_dsprites: dSprites with the sprite painted in a random colour drawn per observation.

As disentanglement_lib's ColorDSprites: each observation draws one RGB colour uniformly from
[0.5, 1] per channel; sprite pixels take that colour, the background stays black. The factors are
dSprites' five (shape, scale, orientation, posX, posY); the colour is noise, not a factor.

This file also holds DSpritesVariant, the base of the three dSprites variants (color, noisy,
scream): each is the dSprites sprite masks plus per-observation randomness, so none has one fixed
array of observations. A variant keeps the dSprites masks once, as uint8 (`base_images`), and
turns masks into observations with one formula written for numpy and torch alike (`compose`):
  - evaluation: sample_observations_from_factors draws the randomness from the numpy
    random_state it is given (seeded evaluation);
  - training: observations_from_base(batch, generator) draws it on the batch's device from the
    trainer's torch generator, so batches are made on the device as for dSprites.
"""

import numpy as np

from dlbench.data.dsprites import IMAGE_SIZE, DSprites
from dlbench.errors import UserError

NAME = "color_dsprites"
COLOUR_LOW, COLOUR_HIGH = 0.5, 1.0
CHUNK = 1024  # observations composed at a time in numpy (bounds the float64 draws of noisy_dsprites)


class DSpritesVariant(DSprites):
    """dSprites masks turned into RGB observations with per-observation randomness.

    Subclasses set name and `randomness` (a phrase for messages) and implement draw_numpy,
    draw_torch and compose. The dSprites file is found (or generated) as for dsprites; the
    dlb_data methods of dsprites (default_path, file_status, verify_file, make, download) apply
    to that file unchanged.
    """

    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    randomness = ""

    @property
    def images(self):
        raise UserError(f"dataset {self.name} has no fixed array of observations (each one draws "
                        f"{self.randomness} at random); use sample_observations_from_factors, or base_images "
                        f"with observations_from_base for batches on the device")

    @property
    def base_images(self):
        """The dSprites sprite masks, uint8 (N, 1, 64, 64) of 0/1, one per factor combination."""
        return super().images

    def draw_numpy(self, num, random_state):
        """The random parameters of num observations (a tuple of numpy arrays)."""
        raise NotImplementedError

    def draw_torch(self, num, generator, device):
        """The same parameters as torch tensors on device, drawn with generator."""
        raise NotImplementedError

    def compose(self, masks, params):
        """Observations (n, 3, 64, 64) from float masks (n, 1, 64, 64) of 0/1 and drawn params;
        numpy arrays or torch tensors alike."""
        raise NotImplementedError

    def sample_observations_from_factors(self, factors, random_state):
        """float32 (n, 3, 64, 64) observations; the randomness comes from random_state."""
        rows = self.index_of(factors)
        out = np.empty((len(rows),) + self.observation_shape, dtype=np.float32)
        for start in range(0, len(rows), CHUNK):
            masks = self.base_images[rows[start:start + CHUNK]].astype(np.float32)
            out[start:start + len(masks)] = self.compose(masks, self.draw_numpy(len(masks), random_state))
        return out

    def observations_from_base(self, batch, generator):
        """Observations from a float torch batch of base_images rows (B, 1, 64, 64), made on the
        batch's device with the trainer's generator."""
        return self.compose(batch, self.draw_torch(len(batch), generator, batch.device))

    @classmethod
    def describe(cls, path=None):
        info = DSprites.describe(path)
        info.update(name=cls.name, observation_shape=list(cls.observation_shape),
                    observations=f"the dSprites masks with {cls.randomness} drawn per observation")
        return info


class ColorDSprites(DSpritesVariant):
    """dSprites with each sprite painted a random colour, uniform in [0.5, 1] per RGB channel."""

    name = NAME
    randomness = "a colour"

    def draw_numpy(self, num, random_state):
        return (random_state.uniform(COLOUR_LOW, COLOUR_HIGH, size=(num, 3)).astype(np.float32),)

    def draw_torch(self, num, generator, device):
        import torch

        unit = torch.rand((num, 3), generator=generator, device=device)
        return (COLOUR_LOW + (COLOUR_HIGH - COLOUR_LOW) * unit,)

    def compose(self, masks, params):
        (colours,) = params
        return masks * colours[:, :, None, None]
