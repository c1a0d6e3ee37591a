"""The dSprites renderer against real dSprites pixels and the geometry's invariants
(shared/data/real_reference/DSPRITES_GEOMETRY.md, section 4)."""

from pathlib import Path

import numpy as np
import pytest

from dlbench.data import dsprites as D

FIXTURES = Path(__file__).parent / "fixtures" / "dsprites"


def _compare(rendered, real):
    r = rendered.reshape(len(rendered), -1).astype(bool)
    t = real.reshape(len(real), -1).astype(bool)
    wrong = (r != t).sum(axis=1)
    iou = (r & t).sum(axis=1) / np.maximum((r | t).sum(axis=1), 1)
    return wrong, iou


def test_gif_frames_match_the_real_images():
    data = np.load(FIXTURES / "dsprites_gif_frames.npz")
    real = data["imgs"]
    wrong, iou = _compare(D.render(data["latents_classes"]), real)
    assert (wrong == 0).mean() >= 0.95
    assert iou.mean() >= 0.995
    assert iou.min() >= 0.98
    assert wrong.sum() <= 0.0005 * real.size


def test_yanndubs_samples_match_the_real_images():
    data = np.load(FIXTURES / "dsprites_yanndubs_100_samples.npz")
    wrong, iou = _compare(D.render(data["latents_classes_inferred"]), data["imgs"])
    assert (wrong == 0).sum() >= 85
    assert iou.mean() >= 0.995
    assert iou.min() >= 0.93


def test_the_fixture_latent_values_are_the_file_values_of_their_classes():
    data = np.load(FIXTURES / "dsprites_gif_frames.npz")
    np.testing.assert_allclose(D.latents_values_of(data["latents_classes"]), data["latents_values"])


def _brute_force_inside(px, py, vx, vy):
    """Even-odd ray casting against every edge of the polygon (vx, vy)."""
    x0, y0 = vx[None, :], vy[None, :]
    x1, y1 = np.roll(vx, -1)[None, :], np.roll(vy, -1)[None, :]
    px, py = px[:, None], py[:, None]
    straddles = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return (straddles & (px < x_cross)).sum(axis=1) % 2 == 1


def test_heart_test_is_an_exact_point_in_polygon():
    u, v = D.heart_polygon()
    assert len(u) == 4000
    rng = np.random.RandomState(0)
    # uniform points in the bounding box, and points within 0.01 of the boundary
    pu = rng.uniform(-10.5, 10.5, 3000)
    pv = rng.uniform(-10.5, 10.5, 3000)
    k = rng.randint(len(u), size=3000)
    nu = u[k] + rng.uniform(-0.01, 0.01, 3000)
    nv = v[k] + rng.uniform(-0.01, 0.01, 3000)
    pu, pv = np.concatenate([pu, nu]), np.concatenate([pv, nv])
    expected = _brute_force_inside(pu, pv, u, v)
    got = D.heart_inside(pu, pv)
    assert 500 < expected.sum() < 5500  # both inside and outside points are tested
    np.testing.assert_array_equal(got, expected)


def test_heart_geometry_matches_the_documented_extent():
    u, v = D.heart_polygon()
    assert abs(u.max() - 9.595) < 1e-3
    assert abs(v.min() - (-9.333)) < 1e-3 and abs(v[0] - (-4.748)) < 1e-3 and abs(v.max() - 9.820) < 1e-3
    area = 0.5 * abs(np.dot(u, np.roll(v, -1)) - np.dot(v, np.roll(u, -1)))
    assert abs(area - 224.6) < 0.1


def _broad_sample(rng, n=6000):
    """Random latents plus the corners of the position grid at every shape, scale and orientation."""
    random = np.stack([np.zeros(n, int)] + [rng.randint(k, size=n) for k in D.LATENTS_SIZES[1:]], axis=1)
    sh, sc, ori, x, y = np.meshgrid(range(3), [5], range(40), [0, 31], [0, 31], indexing="ij")
    corners = np.stack([np.zeros(sh.size, int), sh.ravel(), sc.ravel(), ori.ravel(), x.ravel(), y.ravel()], axis=1)
    return np.concatenate([random, corners])


def test_orientation_0_and_39_give_identical_images():
    rng = np.random.RandomState(1)
    classes = _broad_sample(rng, 3000)
    at0, at39 = classes.copy(), classes.copy()
    at0[:, 3], at39[:, 3] = 0, 39
    np.testing.assert_array_equal(D.render(at0), D.render(at39))


def test_nothing_is_lit_within_two_pixels_of_the_border():
    imgs = D.render(_broad_sample(np.random.RandomState(2)))
    border = np.zeros((64, 64), bool)
    border[[0, 1, 62, 63], :] = True
    border[:, [0, 1, 62, 63]] = True
    assert not imgs[:, border].any()


def test_the_largest_squares_reach_the_edge_of_the_lit_band():
    """Over the whole dataset lit pixels span rows and columns 2..61: the scale-1 squares at
    orientation 5 (46 degrees, corners furthest out) touch row/column 2 and 61 at the grid's edge."""
    k = np.arange(32)
    zero, edge = np.zeros(32, int), np.full(32, 31)
    def at(x, y):
        return D.render(np.stack([zero, zero, zero + 5, zero + 5, x, y], axis=1))
    assert at(zero, k)[:, :, 2].any() and at(edge, k)[:, :, 61].any()
    assert at(k, zero)[:, 2, :].any() and at(k, edge)[:, 61, :].any()


def test_images_are_binary_and_every_image_has_a_sprite():
    imgs = D.render(_broad_sample(np.random.RandomState(3), 2000))
    assert imgs.dtype == np.uint8 and imgs.shape[1:] == (64, 64)
    assert set(np.unique(imgs)) == {0, 1}
    assert imgs.reshape(len(imgs), -1).sum(axis=1).min() >= 50


@pytest.mark.parametrize("pos", [0, 31])
def test_squares_at_orientation_0_are_10_to_20_pixels_wide(pos):
    classes = np.array([[0, 0, s, 0, pos, pos] for s in range(6)])
    imgs = D.render(classes)
    for s, img in enumerate(imgs):
        side = 10 + 2 * s
        assert img.any(axis=0).sum() == side and img.any(axis=1).sum() == side
        assert img.sum() == side * side  # a filled axis-aligned square


def test_square_width_at_any_position_is_the_side_or_one_less():
    for s in range(6):
        classes = np.array([[0, 0, s, 0, x, 31 - x] for x in range(32)])
        widths = D.render(classes).any(axis=1).sum(axis=1)
        assert set(widths.tolist()) <= {9 + 2 * s, 10 + 2 * s}


def test_ellipse_and_heart_boxes_at_orientation_0_match_the_real_frames():
    ellipse = [(12, 8), (16, 8), (18, 10), (20, 12), (22, 12), (26, 14)]
    heart = [(10, 9), (12, 11), (14, 13), (16, 14), (18, 15), (20, 17)]
    heart_px = [58, 84, 108, 140, 182, 222]
    for shape, boxes in ((1, ellipse), (2, heart)):
        imgs = D.render(np.array([[0, shape, s, 0, 0, 0] for s in range(6)]))
        got = [(int(i.any(axis=0).sum()), int(i.any(axis=1).sum())) for i in imgs]
        assert got == boxes
    counts = D.render(np.array([[0, 2, s, 0, 0, 0] for s in range(6)])).reshape(6, -1).sum(axis=1)
    # scale 0.9 is the fitted model's one known miss on the gif (2 px, DSPRITES_GEOMETRY.md)
    for s in range(6):
        assert abs(int(counts[s]) - heart_px[s]) <= (2 if s == 4 else 0)


def test_major_axis_and_rotation_direction():
    ellipse = D.render(np.array([[0, 1, 5, 0, 15, 15]]))[0]
    assert ellipse.any(axis=0).sum() > ellipse.any(axis=1).sum()  # major axis horizontal at 0
    # The heart's lobes (its wide end) are up at orientation 0, the tip down; at orientation 10
    # (92 degrees, counter-clockwise on screen) the tip points right and the lobes are on the left.
    heart0, heart10 = D.render(np.array([[0, 2, 5, 0, 0, 0], [0, 2, 5, 10, 0, 0]])).astype(int)
    assert heart0[:16].sum() > 2 * heart0[16:].sum()  # the centre is at (16, 16)
    assert heart10[:, :16].sum() > 2 * heart10[:, 16:].sum()


def test_mean_pixel_over_the_dataset():
    """Stratified over every (shape, scale, orientation), random over position: the estimate's
    noise comes only from the subpixel position and is far below the tolerance."""
    rng = np.random.RandomState(4)
    per_cell = 12
    sh, sc, ori = np.meshgrid(range(3), range(6), range(40), indexing="ij")
    cells = np.stack([sh.ravel(), sc.ravel(), ori.ravel()], axis=1).repeat(per_cell, axis=0)
    n = len(cells)
    classes = np.concatenate([np.zeros((n, 1), int), cells, rng.randint(32, size=(n, 2))], axis=1)
    lit = D.render(classes).reshape(n, -1).mean(axis=1).reshape(-1, per_cell)
    estimate = lit.mean()
    stderr = np.sqrt(lit.var(axis=1, ddof=1).mean() / lit.size)
    assert stderr < 5e-5
    assert abs(estimate - 0.0425) <= 0.0005 - 3 * stderr
    assert abs(estimate - 0.04249) <= 4 * stderr + 2e-5  # the value the fitted model gives


def test_render_does_not_depend_on_batch_order_or_size():
    classes = _broad_sample(np.random.RandomState(5), 500)
    whole = D.render(classes)
    perm = np.random.RandomState(6).permutation(len(classes))
    np.testing.assert_array_equal(D.render(classes[perm]), whole[perm])
    np.testing.assert_array_equal(D.render(classes[7]), whole[7:8])


def test_render_rejects_bad_input():
    with pytest.raises(ValueError):
        D.render(np.zeros((3, 5), int))
    with pytest.raises(ValueError):
        D.render(np.array([[0, 3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError):
        D.render(np.array([[0, 0, 0, 0, 0, 32]]))
    with pytest.raises(ValueError):
        D.render(np.zeros((2, 6)))  # floats are not class indices
    assert D.render(np.zeros((0, 6), int)).shape == (0, 64, 64)
