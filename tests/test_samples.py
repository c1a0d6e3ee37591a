"""The sample figures a finished run writes (model/samples/): each tile of traversals.png is the
decoder mean at the first image's mean code with one latent moved, read back from the PNG; a
model with more latents than MAX_TRAVERSED draws the first MAX_TRAVERSED."""

import numpy as np
import pytest
import torch
from PIL import Image

from dlbench.nn import VAE
from dlbench.train.samples import MAX_TRAVERSED, write_samples

SIDE, STEPS, SPAN = 64, 9, 2.0


def tile(picture, row, column):
    """The (SIDE, SIDE) tile at (row, column) of a grid with a 1-pixel frame around each tile."""
    top, left = row * (SIDE + 2) + 1, column * (SIDE + 2) + 1
    return picture[top:top + SIDE, left:left + SIDE]


@pytest.mark.parametrize("latent_dim, rows", [(3, 3), (MAX_TRAVERSED + 36, MAX_TRAVERSED)])
def test_each_traversal_tile_decodes_its_code_and_at_most_max_traversed_latents_are_drawn(latent_dim, rows,
                                                                                           tmp_path):
    torch.manual_seed(0)
    model = VAE("conv", (1, SIDE, SIDE), latent_dim, "bernoulli")
    images = (torch.rand(5, 1, SIDE, SIDE) > 0.5).to(torch.uint8).numpy()

    write_samples(model, images, 1.0, tmp_path, seed=0, num=4, span=SPAN, steps=STEPS)

    picture = np.asarray(Image.open(tmp_path / "traversals.png").convert("RGB"))
    assert picture.shape == (rows * (SIDE + 2), STEPS * (SIDE + 2), 3)
    # the first image write_samples shows is the first index its seeded generator draws
    first = int(torch.randint(len(images), (4,), generator=torch.Generator().manual_seed(0))[0])
    with torch.no_grad():
        mean, _ = model.encode(torch.as_tensor(images[first:first + 1]).float())
        for row in (0, rows - 1):
            for column, offset in enumerate(np.linspace(-SPAN, SPAN, STEPS)):
                code = mean.clone()
                code[0, row] += float(offset)
                expected = torch.sigmoid(model.decode(code))[0, 0].numpy()
                # 8-bit PNG: the value truncated to a multiple of 1/255, the same on each channel
                shown = tile(picture, row, column)
                assert np.all(shown == shown[..., :1])
                np.testing.assert_allclose(shown[..., 0] / 255.0, expected, atol=1.01 / 255)
