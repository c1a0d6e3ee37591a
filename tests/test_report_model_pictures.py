"""Pictures of a representative model: the traversal order by KL, the prior's scale, the
traversal codes and the factor map checked on constructed cases against hand computations, and a
real tiny trained run drawing every picture (PNG, PDF and a GIF of the expected frames)."""

import io
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from dlbench.errors import UserError
from dlbench.priors import AnisotropicGaussian, IsotropicGaussian, StudentT
from dlbench.report import model_pictures as mp
from tests.toy_data import ToyData

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- KL and the order of the latents --------------------------------------------------------------

def test_latents_are_ordered_by_their_kl_to_the_prior():
    # three images, four latents: latent 2 codes a lot, latent 0 a little, 1 and 3 are collapsed
    mean = np.array([[0.5, 0.0, 2.0, 0.1], [-0.5, 0.0, -2.0, 0.0], [0.0, 0.0, 1.0, -0.1]])
    logvar = np.array([[-1.0, 0.0, -3.0, 0.0], [-1.0, 0.0, -3.0, 0.0], [-1.0, 0.0, -3.0, 0.0]])
    kl = mp.latent_kl(IsotropicGaussian(4), mean, logvar, np.zeros(4), np.ones(4))
    # by hand: KL(N(m, v) || N(0, 1)) = (m^2 + v - 1 - log v) / 2, averaged over the three images
    e1, e3 = math.exp(-1.0), math.exp(-3.0)
    expected = [((0.25 + 0.25 + 0) / 3 + e1 - 1 + 1) / 2, 0.0, ((4 + 4 + 1) / 3 + e3 - 1 + 3) / 2, (0.02 / 3) / 2]
    np.testing.assert_allclose(kl, expected, rtol=1e-12, atol=1e-15)
    assert list(mp.kl_order(kl)) == [2, 0, 3, 1]
    assert list(mp.kl_order([1.0, 3.0, 1.0, 3.0])) == [1, 3, 0, 2]  # ties keep index order


def test_a_prior_without_closed_form_kl_gets_the_gaussian_of_its_marginal():
    prior = StudentT(2)  # no kl_per_dim
    mean, logvar = np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]])
    kl = mp.latent_kl(prior, mean, logvar, center=np.array([0.0, 0.0]), scale=np.array([2.0, 1.0]))
    # KL(N(1, 1) || N(0, 4)) = log 2 + (1 + 1) / 8 - 1/2; KL(N(0, 1) || N(0, 1)) = 0
    np.testing.assert_allclose(kl, [math.log(2) + 0.25 - 0.5, 0.0], atol=1e-12)


def test_the_prior_scale_is_its_std_for_gaussians_and_its_quartiles_otherwise():
    center, scale = mp.prior_center_and_scale(IsotropicGaussian(3, scale=2.0))
    np.testing.assert_array_equal(center, 0.0)
    np.testing.assert_array_equal(scale, 2.0)
    # given variances are normalised to sum to D = 3: [1, 2, 3] -> [0.5, 1, 1.5]
    _, scale = mp.prior_center_and_scale(AnisotropicGaussian(3, init="given", variances=[1.0, 2.0, 3.0]))
    np.testing.assert_allclose(scale, np.sqrt([0.5, 1.0, 1.5]), rtol=1e-6)
    # Student-t with 3 degrees of freedom: median 0, IQR / 1.349 from scipy's quantile
    center, scale = mp.prior_center_and_scale(StudentT(2, nu=3.0), seed=0)
    expected = 2 * stats.t.ppf(0.75, 3) / (2 * stats.norm.ppf(0.75))
    np.testing.assert_allclose(center, 0.0, atol=0.03)
    np.testing.assert_allclose(scale, expected, rtol=0.03)


def test_traversal_codes_set_one_latent_and_keep_the_others_at_the_base_mean():
    bases = np.array([[0.3, -0.2, 0.7], [1.0, 2.0, 3.0]])
    center, scale = np.array([0.0, 0.5, 0.0]), np.array([1.0, 2.0, 3.0])
    values = [-2.0, 0.0, 2.0]
    codes = mp.traversal_codes(bases, [1, 2], values, center, scale)
    assert codes.shape == (2, 2, 3, 3)
    # base 1, latent 1 (row 0): 0.5 + v * 2 -> -3.5, 0.5, 4.5; the others at the base's mean
    np.testing.assert_allclose(codes[1, 0], [[1.0, -3.5, 3.0], [1.0, 0.5, 3.0], [1.0, 4.5, 3.0]])
    # base 0, latent 2 (row 1): v * 3 -> -6, 0, 6
    np.testing.assert_allclose(codes[0, 1], [[0.3, -0.2, -6.0], [0.3, -0.2, 0.0], [0.3, -0.2, 6.0]])


# --- the factor map --------------------------------------------------------------------------------

class FactorNames:
    def __init__(self, names, sizes, continuous=False):
        self.factor_names, self.factors_num_values, self.continuous_factors = names, sizes, continuous


def test_the_map_is_over_position_for_dsprites_else_the_two_largest_factors():
    dsprites = FactorNames(["shape", "scale", "orientation", "posX", "posY"], [3, 6, 40, 32, 32])
    assert mp.grid_factors(dsprites) == (3, 4)
    assert mp.grid_factors(FactorNames(["a", "b", "c", "d"], [4, 10, 3, 10])) == (1, 3)
    assert mp.grid_factors(FactorNames(["a", "b", "c"], [15, 10, 10])) == (0, 1)  # tie: the earlier
    assert mp.grid_factors(FactorNames(["s0", "s1", "s2"], [None] * 3, continuous=True)) == (0, 1)
    assert mp.grid_factors(FactorNames(["class"], [10])) is None


def test_the_sample_is_balanced_over_the_cells_of_the_pair():
    data = ToyData((3, 4, 5))
    factors = mp.sample_factors(data, (1, 2), 100, np.random.RandomState(0))
    assert factors.shape == (100, 3)
    counts = np.zeros((4, 5), int)
    for row in factors:
        counts[row[1], row[2]] += 1
    assert (counts == 5).all()  # 100 // 20 cells
    assert set(factors[:, 0]) == {0, 1, 2}
    again = mp.sample_factors(data, (1, 2), 100, np.random.RandomState(0))
    np.testing.assert_array_equal(factors, again)
    assert len(mp.sample_factors(data, (1, 2), 101, np.random.RandomState(0))) == 120  # 6 per cell


def test_the_map_holds_each_cells_mean_code():
    data = ToyData((3, 4, 5))
    rng = np.random.RandomState(1)
    factors = mp.sample_factors(data, (1, 2), 200, rng)
    observations = data.sample_observations_from_factors(factors, rng)
    # a representation whose code 0 is exactly 2a - b over the pair (a, b), and code 1 is the
    # left-out factor f0, so its map is the mean of f0 in each cell
    seen = observations.reshape(len(observations), -1)
    codes = np.stack([2 * seen[:, 1] - seen[:, 2], seen[:, 0]], axis=1)
    bins, shape, names = mp.factor_bins(data, factors, (1, 2))
    assert shape == (4, 5) and names == ["f1 (value index)", "f2 (value index)"]
    means, counts = mp.factor_code_map(codes, bins, shape)
    for a in range(4):
        for b in range(5):
            assert means[a, b, 0] == 2 * a - b
            in_cell = [f0 for f0, f1, f2 in factors if (f1, f2) == (a, b)]
            assert counts[a, b] == len(in_cell) == 10
            assert means[a, b, 1] == pytest.approx(sum(in_cell) / len(in_cell))


def test_an_empty_cell_is_nan_and_continuous_factors_are_binned_by_quantile():
    means, counts = mp.factor_code_map(np.array([[1.0], [3.0]]), np.array([[0, 0], [0, 0]]), (2, 1))
    assert means[0, 0, 0] == 2.0 and counts.tolist() == [[2], [0]] and np.isnan(means[1, 0, 0])
    values = np.array([5.0, -1.0, 3.0, 0.5, 9.0, 2.0, 7.0, 1.0])  # sorted: -1 .5 1 2 | 3 5 7 9
    assert mp.quantile_bins(values, 2).tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    assert mp.quantile_bins(values, 4).tolist() == [2, 0, 2, 0, 3, 1, 3, 1]


# --- a real run ---------------------------------------------------------------------------------

SAMPLE_SIZE = 384  # observations encoded: 24 per cell of the tiny grid's 4 x 4 positions

@pytest.fixture(scope="module")
def pictures(tiny_trained_run, tiny_data_root, tmp_path_factory):
    """The pictures of the tiny trained run (drawn once for the module), read-only."""
    folder = tmp_path_factory.mktemp("pictures")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLBENCH_DATA", str(tiny_data_root))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            written = mp.model_pictures(tiny_trained_run, folder, study="tiny", num_images=5, seed=3,
                                        sample_size=SAMPLE_SIZE)
        finally:
            torch.set_num_threads(threads)
    return written


def test_a_trained_run_gets_every_picture(pictures):
    assert sorted(pictures) == ["factor_map", "reconstructions", "traversals", "traversals_gif"]
    # the files dlb_report checks the places of before it writes anything
    assert sorted(path.name for paths in pictures.values() for path in paths) == sorted(mp.PICTURE_FILES)
    for name in ("factor_map", "reconstructions", "traversals"):
        png, pdf = pictures[name]
        assert (png.name, pdf.name) == (f"{name}.png", f"{name}.pdf")
        with Image.open(png) as image:
            image.verify()
        assert pdf.read_bytes().startswith(b"%PDF")
    (gif,) = pictures["traversals_gif"]
    with Image.open(gif) as image:
        assert image.format == "GIF"
        assert image.n_frames == 2 * len(mp.GIF_VALUES) - 2  # up the sweep and back down
    assert not list(gif.parent.glob("*.tmp*")) and not list(gif.parent.glob(".*"))


def small_figure(picture, zorder=None):
    """(figure, image, title): one image with tick labels, axis labels and a two-line title."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.5, 3.0), dpi=80)
    ax.imshow(picture, interpolation="nearest", zorder=zorder)
    ax.set_yticks([3, 20, 35], ["z0, KL 1.20 nats", "z1", "z2"], fontsize="small")
    ax.set_xticks([5, 20], ["1", "2"])
    ax.set_xlabel("base image")
    return fig, ax.images[0], fig.suptitle("", fontsize="small")


def test_each_frame_of_an_animation_is_its_figure_drawn_whole():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    pictures = [rng.random((40, 30, 3)) for _ in range(3)]
    titles = ["first", "second\nof two lines", "third, a longer one"]
    fig, picture, title = small_figure(pictures[0])
    frames = mp.animation_frames(fig, picture, title, pictures, titles)
    plt.close(fig)
    assert len(frames) == 3
    for data, text, frame in zip(pictures, titles, frames):
        # the reference: a whole draw, the image above the ticks as animation_frames puts it
        whole, _, whole_title = small_figure(data, zorder=2.1)
        whole_title.set_text(text)
        whole.canvas.draw()
        np.testing.assert_array_equal(frame, np.asarray(whole.canvas.buffer_rgba())[..., :3])
        plt.close(whole)


def gif_frames(data):
    with Image.open(io.BytesIO(data)) as image:
        assert image.info["loop"] == 0 and image.info["duration"] == mp.GIF_FRAME_MS
        frames = []
        for k in range(image.n_frames):
            image.seek(k)
            frames.append(np.asarray(image.convert("RGB")).astype(np.int64))
    return frames


def pillows_gif(frames):
    """The GIF Pillow writes by itself: a palette cut for each frame."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=mp.GIF_FRAME_MS, loop=0)
    return buffer.getvalue()


def test_a_gif_of_a_few_colours_holds_every_frame_exactly():
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (40, 3))  # a grey dataset's frames: background, text and the images' greys
    frames = [palette[rng.integers(0, 40, (60, 50))].astype(np.uint8) for _ in range(5)]
    decoded = gif_frames(mp.gif_bytes(frames))
    assert len(decoded) == 5
    for frame, source in zip(decoded, frames):
        np.testing.assert_array_equal(frame, source)


def test_a_gif_of_a_colour_traversal_is_as_close_as_pillows_own_in_order():
    from scipy.ndimage import zoom

    # a colour dataset's traversal: smooth images of thousands of colours, one row changing
    rng = np.random.default_rng(2)
    smooth = lambda: (zoom(rng.random((4, 4, 3)), (10, 10, 1), order=1) * 255).astype(np.uint8)  # noqa: E731
    still = np.concatenate([smooth() for _ in range(3)])
    frames = [np.concatenate([still, smooth()]) for _ in range(6)]
    ours, pillows = gif_frames(mp.gif_bytes(frames)), gif_frames(pillows_gif(frames))
    assert len(ours) == len(pillows) == 6
    for k, (frame, reference) in enumerate(zip(ours, pillows)):
        errors = [np.abs(frame - source).mean() for source in frames]
        assert np.argmin(errors) == k, errors
        assert errors[k] <= np.abs(reference - frames[k]).mean() + 1.0  # of 255


FIGURES = ("reconstruction_figure", "traversal_figure", "traversal_gif", "factor_map_figure")


def drawn_arrays(run_dir, seed, monkeypatch, tmp_path):
    """{figure function: the arrays it was given} for one model_pictures call, nothing rendered."""
    drawn = {}
    for name in FIGURES:
        def record(*args, name=name):
            drawn[name] = [np.asarray(a) for a in args if isinstance(a, (np.ndarray, list))]
            return []
        monkeypatch.setattr(mp, name, record)
    mp.model_pictures(run_dir, tmp_path / f"seed{seed}", num_images=5, seed=seed, sample_size=SAMPLE_SIZE)
    return drawn


def test_the_pictures_are_a_function_of_the_seed(tiny_trained_run, tiny_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tiny_data_root))
    first, again = (drawn_arrays(tiny_trained_run, 3, monkeypatch, tmp_path) for _ in range(2))
    other = drawn_arrays(tiny_trained_run, 4, monkeypatch, tmp_path)
    assert sorted(first) == sorted(FIGURES)
    for name in FIGURES:
        assert len(first[name]) == len(again[name]) > 0
        for one, two in zip(first[name], again[name]):
            np.testing.assert_array_equal(one, two)
    assert not np.array_equal(first["reconstruction_figure"][0], other["reconstruction_figure"][0])


def test_the_plotted_reconstructions_are_the_models(tiny_trained_run, tiny_data_root, tmp_path, monkeypatch):
    """The figure's lower row is the decoder mean at the posterior mean of the upper row's images."""
    import dlbench.data
    from dlbench.rundir import read_run
    from dlbench.train import load_trained_model

    monkeypatch.setenv("DLBENCH_DATA", str(tiny_data_root))
    shown = {}
    original = mp.show_grid

    def recording_show_grid(ax, tiles):
        shown.setdefault("tiles", tiles)
        return original(ax, tiles)

    monkeypatch.setattr(mp, "show_grid", recording_show_grid)
    for name in FIGURES[1:]:
        monkeypatch.setattr(mp, name, lambda *args: [])
    mp.model_pictures(tiny_trained_run, tmp_path, num_images=4, seed=5, sample_size=64)
    data_row, recon_row = shown["tiles"]
    model = load_trained_model(tiny_trained_run)
    data = dlbench.data.dataset_from_record(read_run(tiny_trained_run))
    # every shown image is one of the dataset's (tiny grid) and decodes as the model does
    flat = data.images.reshape(len(data.images), -1).astype(np.float32)
    for image in data_row:
        assert (flat == image.reshape(1, -1)).all(axis=1).any()
    with torch.no_grad():
        x = torch.as_tensor(data_row)
        expected = torch.sigmoid(model.decoder(model.encoder(x)[0])).numpy()  # Bernoulli mean
    np.testing.assert_allclose(recon_row, expected, atol=1e-5)


def test_bad_arguments_are_one_clear_error(tiny_trained_run, tmp_path):
    with pytest.raises(UserError, match="num_images must be a whole number from 1 to 32"):
        mp.model_pictures(tiny_trained_run, tmp_path / "out", num_images=0)
    with pytest.raises(UserError, match="not a run directory"):
        mp.model_pictures(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def vector_run(tmp_path, monkeypatch, dataset):
    """A 2-step beta-VAE run of the vector dataset (mlp, Gaussian likelihood, 2 latents)."""
    from dlbench.cli import train as train_cli

    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "data"))
    run_dir = tmp_path / "run"
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in ["train.method = @beta_vae()", f"dataset.name = '{dataset}'", "model.architecture = 'mlp'",
                    "model.likelihood = 'gaussian'", "train.steps = 2", "train.batch_size = 8",
                    "train.log_every = 1", "train.checkpoint_every = 2", "model.latent_dim = 2"]:
        args += ["--gin_param", binding]
    assert train_cli.main(args) == 0
    return run_dir


def test_a_vector_dataset_gets_the_factor_map_only(tmp_path, monkeypatch):
    run_dir = vector_run(tmp_path, monkeypatch, "linear_gaussian")
    written = mp.model_pictures(run_dir, tmp_path / "pictures", sample_size=256)
    assert list(written) == ["factor_map"]
    assert sorted(os.listdir(tmp_path / "pictures")) == ["factor_map.pdf", "factor_map.png"]


def test_a_vector_dataset_of_one_factor_is_said_to_have_no_picture_and_no_folder_is_made(tmp_path, monkeypatch):
    # pinwheel's representatives had got an empty folder each, and the page had said every figure was drawn
    run_dir = vector_run(tmp_path, monkeypatch, "pinwheel")
    with pytest.raises(UserError, match="pinwheel's observations are not images .* and it has no two discrete "
                                        "factors to map: no picture applies"):
        mp.model_pictures(run_dir, tmp_path / "pictures", sample_size=256)
    assert not (tmp_path / "pictures").exists()
