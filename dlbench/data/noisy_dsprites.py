"""noisy_dsprites: dSprites with a white sprite on a background of uniform noise.

As disentanglement_lib's NoisyDSprites: every pixel and channel of an observation draws noise
uniformly from [0, 1); the sprite's pixels are 1 (white) in all three channels, every other
pixel keeps its noise. Fresh noise is drawn for every observation. The factors are dSprites' five.
"""

import numpy as np

from dlbench.data.color_dsprites import DSpritesVariant
from dlbench.data.dsprites import IMAGE_SIZE

NAME = "noisy_dsprites"
BELOW_ONE = np.float32(1 - 2 ** -24)  # the largest float32 below 1 (float64 draws may round up to 1)


class NoisyDSprites(DSpritesVariant):
    """dSprites, sprite white (1), background uniform noise in [0, 1) per pixel and channel."""

    name = NAME
    randomness = "a background of uniform noise"

    def draw_numpy(self, num, random_state):
        noise = random_state.uniform(0.0, 1.0, size=(num, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        return (np.minimum(noise, BELOW_ONE),)

    def draw_torch(self, num, generator, device):
        import torch

        return (torch.rand((num, 3, IMAGE_SIZE, IMAGE_SIZE), generator=generator, device=device),)

    def compose(self, masks, params):
        (noise,) = params
        # masks are exactly 0 or 1, so each term is exact: 1 on the sprite, the noise elsewhere
        return masks + (1 - masks) * noise
