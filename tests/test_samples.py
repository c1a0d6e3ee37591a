"""The sample figures a finished run writes (model/samples/): each tile of traversals.png is the
decoder mean at the first image's mean code with one latent moved, read back from the PNG; a
model with more latents than MAX_TRAVERSED draws the first MAX_TRAVERSED."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from dlbench.nn import VAE
from dlbench.train.samples import MAX_TRAVERSED, VECTOR_POINTS, write_samples

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


def decoded_prior_draws(model, num, seed=0):
    """The draws write_samples decodes for prior_samples.png, and their decoder means."""
    draws = model.prior.sample(num, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return draws, model.likelihood.mean(model.decode(draws))


def test_prior_draws_that_decode_to_no_number_are_drawn_magenta_and_said(tmp_path):
    # a Student-t of nu = 0.01 draws coordinates beyond float32's range, which decode to NaN: numpy
    # had warned of an invalid cast and prior_samples.png had shown whatever bytes the cast gave
    torch.manual_seed(0)
    model = VAE("conv", (1, SIDE, SIDE), 2, "bernoulli", prior={"name": "student_t", "nu": 0.01})
    images = (torch.rand(5, 1, SIDE, SIDE) > 0.5).to(torch.uint8).numpy()
    said = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_samples(model, images, 1.0, tmp_path, seed=0, num=4, log=said.append)
    draws, decoded = decoded_prior_draws(model, 8)
    bad = ~torch.isfinite(decoded.flatten(1)).all(1)
    assert 0 < int(bad.sum()) < 8 and torch.equal(bad, ~torch.isfinite(draws).all(1))  # both kinds of tile
    picture = np.asarray(Image.open(tmp_path / "prior_samples.png").convert("RGB"))
    for k in range(8):
        shown, expected = tile(picture, k // 4, k % 4), decoded[k, 0].numpy()
        finite = np.isfinite(expected)
        assert (shown[~finite] == (255, 0, 255)).all() and (~finite).any() == bool(bad[k])
        np.testing.assert_allclose(shown[finite][:, 0] / 255.0, expected[finite], atol=1.01 / 255)
    count = int(bad.sum())
    assert said == [f"{tmp_path / 'prior_samples.png'}: {count} of 8 draws from the prior decode to values that are "
                    f"not finite ({count} of them drew a coordinate beyond the largest float32, 3.4e+38: the prior's "
                    f"tails are that heavy); their pixels that are not finite are drawn magenta"]
    said.clear()
    write_samples(VAE("conv", (1, SIDE, SIDE), 2, "bernoulli", prior={"name": "student_t", "nu": 3.0}), images,
                  1.0, tmp_path, seed=0, num=4, log=said.append)
    assert said == []


def test_vector_data_leaves_out_the_prior_draws_that_decode_to_no_number_and_says_so(tmp_path):
    torch.manual_seed(0)
    model = VAE("mlp", (2,), 2, "gaussian", prior={"name": "student_t", "nu": 0.01})
    observations = torch.randn(600, 2).numpy()
    said = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_samples(model, observations, 1.0, tmp_path, seed=0, log=said.append)
    _, decoded = decoded_prior_draws(model, VECTOR_POINTS)
    count = int((~torch.isfinite(decoded).all(1)).sum())
    assert count > 0 and len(said) == 1, said
    assert said[0].startswith(f"{tmp_path / 'prior_samples.png'}: {count} of {VECTOR_POINTS} draws from the prior "
                              f"decode to values that are not finite (")
    assert said[0].endswith("; the plot leaves them out") and (tmp_path / "prior_samples.png").is_file()
