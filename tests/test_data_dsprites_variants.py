"""The dSprites variants (color, noisy, scream) against disentanglement_lib's rules, checked on the
dSprites masks themselves: every observation is taken apart into mask, colour, noise or patch and
each part compared with what the rule says, for the numpy path (evaluation, seeded by
random_state) and the torch path (training batches drawn with a torch generator)."""

import sys

import numpy as np
import pytest
import torch
from scipy import stats

from dlbench.data.color_dsprites import ColorDSprites
from dlbench.data.dsprites import DSprites
from dlbench.data.noisy_dsprites import NoisyDSprites
from dlbench.data import scream_dsprites as S
from dlbench.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a random RGB picture as the (already shrunk) Scream image: every patch is distinct
PICTURE = np.random.RandomState(7).randint(0, 256, size=(80, 90, 3)).astype(np.uint8)


def scream_from_picture():
    return S.ScreamDSprites(scream_image=PICTURE)


VARIANTS = {"color": ColorDSprites, "noisy": NoisyDSprites, "scream": scream_from_picture}


def observations(data, factors, source, seed=0):
    """Observations of the factors from the numpy path or the torch path."""
    if source == "numpy":
        return data.sample_observations_from_factors(factors, np.random.RandomState(seed))
    masks = torch.as_tensor(data.base_images[data.index_of(factors)]).to(torch.float32)
    return data.observations_from_base(masks, torch.Generator().manual_seed(seed)).numpy()


def sample_with_masks(data, num, source, seed=0):
    """(factors, observations, masks): masks are dSprites' images at index_of(factors), (n, 64, 64) bool."""
    factors = data.sample_factors(num, np.random.RandomState(seed + 1000))
    obs = observations(data, factors, source, seed)
    masks = DSprites().images[DSprites().index_of(factors)][:, 0].astype(bool)
    return factors, obs, masks


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_factors_shape_and_range_are_those_of_dsprites(tiny_dsprites, variant):
    data, base = VARIANTS[variant](), DSprites()
    assert data.factor_names == base.factor_names and data.factors_num_values == base.factors_num_values
    assert data.observation_shape == (3, 64, 64) and len(data) == len(base)
    np.testing.assert_array_equal(data.base_images, base.images)
    for source in ("numpy", "torch"):
        _, obs, masks = sample_with_masks(data, 20, source)
        assert obs.shape == (20, 3, 64, 64) and obs.dtype == np.float32
        assert obs.min() >= 0 and obs.max() <= 1
        assert masks.any(axis=(1, 2)).all()  # every sprite has pixels to check
    with pytest.raises(UserError, match="no fixed array of observations"):
        data.images


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_seeded(tiny_dsprites, variant, source):
    data = VARIANTS[variant]()
    factors = data.sample_factors(8, np.random.RandomState(3))
    first = observations(data, factors, source, seed=5)
    np.testing.assert_array_equal(first, observations(data, factors, source, seed=5))
    assert not np.array_equal(first, observations(data, factors, source, seed=6))


def test_numpy_observations_do_not_depend_on_the_chunking(tiny_dsprites, monkeypatch):
    import dlbench.data.color_dsprites as C

    data = NoisyDSprites()
    factors = data.sample_factors(10, np.random.RandomState(0))
    whole = data.sample_observations_from_factors(factors, np.random.RandomState(1))
    monkeypatch.setattr(C, "CHUNK", 3)
    np.testing.assert_array_equal(whole, data.sample_observations_from_factors(factors, np.random.RandomState(1)))


# --- color_dsprites ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_color_paints_the_sprite_one_colour_on_black(tiny_dsprites, source):
    _, obs, masks = sample_with_masks(ColorDSprites(), 30, source)
    for x, mask in zip(obs, masks):
        assert np.all(x[:, ~mask] == 0)
        colour = x[:, mask][:, 0]
        np.testing.assert_array_equal(x[:, mask], np.repeat(colour[:, None], mask.sum(), axis=1))
        assert np.all((colour >= 0.5) & (colour <= 1))


@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_color_is_uniform_on_half_to_one_and_independent_per_channel(tiny_dsprites, source):
    _, obs, masks = sample_with_masks(ColorDSprites(), 1500, source)
    colours = np.stack([x[:, m][:, 0] for x, m in zip(obs, masks)]).astype(np.float64)  # (n, 3)
    for channel in range(3):
        assert stats.kstest(colours[:, channel], stats.uniform(loc=0.5, scale=0.5).cdf).pvalue > 1e-3
    correlation = np.corrcoef(colours.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(correlation) < 4 / np.sqrt(len(colours)))


# --- noisy_dsprites ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_noisy_white_sprite_on_uniform_noise(tiny_dsprites, source):
    _, obs, masks = sample_with_masks(NoisyDSprites(), 40, source)
    background = []
    for x, mask in zip(obs, masks):
        assert np.all(x[:, mask] == 1)
        assert np.all(x[:, ~mask] < 1)
        background.append(x[:, ~mask].ravel())
    pooled = np.concatenate(background).astype(np.float64)
    assert stats.kstest(pooled[::7], stats.uniform.cdf).pvalue > 1e-3
    # fresh noise per observation: the same pixels of two observations are uncorrelated
    both = ~masks[0] & ~masks[1]
    a, b = obs[0][:, both].ravel(), obs[1][:, both].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(len(a))


def test_noisy_same_factors_get_independent_noise(tiny_dsprites):
    data = NoisyDSprites()
    factors = np.repeat(data.sample_factors(1, np.random.RandomState(0)), 2, axis=0)
    obs = data.sample_observations_from_factors(factors, np.random.RandomState(0))
    mask = DSprites().images[DSprites().index_of(factors[:1])][0, 0].astype(bool)
    a, b = obs[0][:, ~mask].ravel(), obs[1][:, ~mask].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(len(a))


# --- scream_dsprites --------------------------------------------------------------------------


def find_patch(picture, x, mask):
    """The (row, col, shift) with x's background == (picture patch + shift) / 2 per channel, found
    by trying every corner; None when no corner fits."""
    image = picture.astype(np.float64).transpose(2, 0, 1) / 255
    h, w = image.shape[1:]
    found = []
    for r in range(h - 63):
        for c in range(w - 63):
            patch = image[:, r:r + 64, c:c + 64]
            shift = 2 * x[:, ~mask] - patch[:, ~mask]  # (3, background pixels)
            if np.all(np.ptp(shift, axis=1) < 1e-5):
                found.append((r, c, shift.mean(axis=1), patch))
    assert len(found) <= 1  # a random picture: one corner at most
    return found[0] if found else None


@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_scream_background_is_a_shifted_patch_and_the_sprite_is_inverted(tiny_dsprites, source):
    _, obs, masks = sample_with_masks(scream_from_picture(), 12, source)
    for x, mask in zip(obs, masks):
        r, c, shift, patch = find_patch(PICTURE, x, mask)
        assert 0 <= r < PICTURE.shape[0] - 64 and 0 <= c < PICTURE.shape[1] - 64
        assert np.all((shift >= 0) & (shift < 1))
        background = (patch + shift[:, None, None]) / 2
        np.testing.assert_allclose(x[:, mask], 1 - background[:, mask], atol=1e-6)
        np.testing.assert_allclose(x[:, ~mask], background[:, ~mask], atol=1e-6)


def test_scream_corners_and_shifts_are_uniform(tiny_dsprites):
    data = scream_from_picture()
    _, _, rows, cols, shifts = data.draw_numpy(20000, np.random.RandomState(0))
    rows, cols = rows[:, 0, 0, 0], cols[:, 0, 0, 0]
    for corner, limit in ((rows, PICTURE.shape[0] - 64), (cols, PICTURE.shape[1] - 64)):
        counts = np.bincount(corner, minlength=limit)
        assert len(counts) == limit  # corners are 0 .. limit - 1, never limit itself
        assert stats.chisquare(counts).pvalue > 1e-3
    assert stats.kstest(shifts.ravel().astype(np.float64), stats.uniform.cdf).pvalue > 1e-3


def write_picture(path, pixels, fmt):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def test_scream_reads_the_image_from_the_data_folder(tiny_dsprites):
    path = write_picture(tiny_dsprites / "scream" / "scream.jpg", PICTURE, "PNG")  # lossless content
    try:
        data = S.ScreamDSprites()
        np.testing.assert_array_equal(data.scream, PICTURE.transpose(2, 0, 1) / np.float32(255))
        assert S.file_status() == "real" and S.verify_file()["status"] == "real"
        _, obs, masks = sample_with_masks(data, 3, "numpy")
        assert find_patch(PICTURE, obs[0], masks[0]) is not None
    finally:
        path.unlink()


def test_scream_reads_disentanglement_lib_layout(tiny_dsprites, tmp_path, monkeypatch):
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path))
    write_picture(tmp_path / "scream" / "scream.jpg", PICTURE, "JPEG")
    assert S.default_path() == tmp_path / "scream" / "scream.jpg"
    scream = S.ScreamDSprites().scream
    assert scream.shape == (3, 80, 90) and scream.dtype == np.float32
    # JPEG is lossy: close to the picture on average, not equal
    assert np.abs(scream - PICTURE.transpose(2, 0, 1) / 255).mean() < 0.25


@pytest.mark.parametrize("size, shrunk", [((700, 548), (274, 350)), ((400, 800), (274, 137)),
                                           ((300, 200), (200, 300))])
def test_scream_image_is_shrunk_to_fit_350_by_274(tmp_path, size, shrunk):
    width, height = size
    pixels = np.random.RandomState(0).randint(0, 256, size=(height, width, 3)).astype(np.uint8)
    path = write_picture(tmp_path / "scream.jpg", pixels, "PNG")
    assert S.load_scream(path).shape == (3,) + shrunk  # (3, H, W): aspect ratio kept, never enlarged


def test_scream_missing_image_says_where_and_how(root, tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    with pytest.raises(UserError) as info:
        S.ScreamDSprites()
    message = str(info.value)
    assert str(root / "scream" / "scream.jpg") in message and S.URL in message
    assert "dlb_data download scream_dsprites" in message and "\n" not in message
    assert not (root / "dsprites").exists()  # stopped before generating dSprites


def test_scream_bad_images_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(UserError, match="not a readable image"):
        S.load_scream(junk)
    assert S.file_status(junk) == "corrupt" and S.verify_file(junk)["status"] == "corrupt"
    truncated = write_picture(tmp_path / "t.jpg", PICTURE, "JPEG")
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(UserError, match="not a readable image"):
        S.load_scream(truncated)
    small = write_picture(tmp_path / "small.jpg", PICTURE[:64], "PNG")
    with pytest.raises(UserError, match="larger than 64 x 64"):
        S.load_scream(small)
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        S.checked_scream(PICTURE / 100.0)


def test_scream_without_pillow_names_the_package(tmp_path, monkeypatch):
    path = write_picture(tmp_path / "scream.jpg", PICTURE, "PNG")
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails as if not installed
    with pytest.raises(UserError, match="pip install pillow"):
        S.load_scream(path)


def test_describe_names_the_variant(tiny_dsprites):
    for cls in (ColorDSprites, NoisyDSprites):
        info = cls.describe()
        assert info["name"] == cls.name and info["observation_shape"] == [3, 64, 64]
        assert info["factors_num_values"] == DSprites().factors_num_values
