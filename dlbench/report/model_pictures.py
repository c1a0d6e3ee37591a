"""Pictures of one trained model (a study's representative model): reconstructions, latent
traversals (a figure and an animated GIF) and the map of mean codes over two factors.

Everything is computed on the CPU from one seeded sample of the dataset (sample_size
observations, or a few more to fill the factor map's cells evenly), encoded once: its posterior
means and variances give each latent's KL, its first images are the reconstructed ones and the
traversals' base images, and the whole sample gives the factor map.

Units: latent values are shown in the prior's scale, "prior std". A latent traversed to value v
is set to center_j + v * scale_j (the other latents stay at the base image's posterior mean, as
in disentanglement_lib's fixed-interval traversals), where center and scale describe the prior's
marginal of latent j: for the Gaussian priors (isotropic, anisotropic) its mean 0 and standard
deviation, so v in [-2, 2] is the prior's 2-sigma range; for the others (Student-t, mixtures,
Lp-nested ISA) its median and its interquartile range / 1.349 (the standard deviation of a
Gaussian with the same quartiles, finite even for heavy tails), estimated from PRIOR_DRAWS
draws. The factor map shows posterior means in the same units.

Latents are ordered by their KL(q(z_j|x) || p(z_j)) averaged over the sample, most informative
first: the prior's closed form where it has one (prior.kl_per_dim, as the training log's kl_j),
else the KL against the Gaussian with the marginal's center and scale (an approximation, exact
for Gaussian priors).

Image pictures need image observations (C, H, W); for vector datasets (pinwheel,
linear_gaussian) only the factor map is drawn. The factor map needs two factors: for the
dSprites family posX and posY, otherwise the two factors with the most values (dataset order
breaks ties; shown in dataset order); datasets with one factor (fashion_mnist, pinwheel) get
none. Discrete factors are binned by value, every cell of the two holding the same number of
images with the other factors drawn at random; continuous ones (linear_gaussian) by quantiles of
the sample (CONTINUOUS_BINS bins).
"""

import io
import math
from pathlib import Path

import numpy as np
import torch

import dlbench.data
from dlbench import rundir
from dlbench.errors import UserError
from dlbench.model_functions import model_functions
from dlbench.priors import AnisotropicGaussian, IsotropicGaussian
from dlbench.report.figure_files import FORMATS, figure_title, save_figure
from dlbench.train import load_trained_model
from dlbench.train.samples import _grid as image_grid

# every file model_pictures may write into its folder: dlb_report checks their places before it writes anything
PICTURE_FILES = (*(f"{name}.{fmt}" for name in ("reconstructions", "traversals", "factor_map") for fmt in FORMATS),
                 "traversals.gif")
TRAVERSAL_VALUES = np.linspace(-2.0, 2.0, 9)  # the traversal figure's columns, in prior std
GIF_VALUES = np.linspace(-2.0, 2.0, 17)  # the animation sweeps up, then back down
GIF_FRAME_MS = 120
PALETTE_PIXELS = 300_000  # of the GIF's frames, for its palette: a tenth of a second
GIF_DPI, TILE_INCHES = 80, 0.85
NUM_BASES = 3  # base images of the traversals
MAX_TRAVERSED = 10  # latents shown in the traversals (the rest, by KL, are mostly unused)
MAP_LATENTS = 6  # latents shown in the factor map
SAMPLE_SIZE = 2048  # observations encoded: about a second of a conv encoder on one CPU core
MAX_IMAGES = 32  # reconstructions shown in one row
CONTINUOUS_BINS = 8
PRIOR_DRAWS = 20000
GAUSSIAN_IQR = 1.3489795  # interquartile range of the standard normal
POSITION_FACTORS = ("posX", "posY")


def model_pictures(run_dir, folder, study=None, num_images=8, seed=0, sample_size=SAMPLE_SIZE):
    """Draw the pictures of the finished run at run_dir into folder: reconstructions of
    num_images images, traversals (figure and GIF) and the factor map, each figure as PNG and
    PDF. Returns {name: [paths written]}, names among reconstructions, traversals,
    traversals_gif, factor_map (see the module docstring for what each dataset gets).
    Deterministic given seed."""
    num_images = checked_count("num_images", num_images, 1, MAX_IMAGES)
    sample_size = checked_count("sample_size", sample_size, num_images, 10 ** 6)
    record = rundir.require_finished_run(run_dir)
    model = load_trained_model(run_dir, "cpu")  # first: a run without weights fails before any data is loaded
    data = dlbench.data.dataset_from_record(record)
    pair = grid_factors(data)
    if len(data.observation_shape) != 3 and pair is None:  # said, not an empty folder and a page silent on why
        raise UserError(f"{record['dataset']}'s observations are not images (none to reconstruct or traverse) and "
                        f"it has no two discrete factors to map: no picture applies")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    rng = np.random.RandomState(seed)
    factors = sample_factors(data, pair, sample_size, rng)
    observations = data.sample_observations_from_factors(factors, rng)
    mean, logvar = model_functions(model, "cpu", seed)["encode_fn"](observations)
    center, scale = prior_center_and_scale(model.prior, seed)
    kl = latent_kl(model.prior, mean, logvar, center, scale)
    order = kl_order(kl)
    labels = Labels(record, study, kl)

    written = {}
    if len(data.observation_shape) == 3:
        written["reconstructions"] = reconstruction_figure(model, observations[:num_images], mean[:num_images],
                                                           folder, labels)
        bases = mean[:min(NUM_BASES, num_images)]
        traversed = order[:MAX_TRAVERSED]
        written["traversals"] = traversal_figure(model, bases, traversed, center, scale, folder, labels)
        written["traversals_gif"] = [traversal_gif(model, bases, traversed, center, scale, folder, labels)]
    if pair is not None:
        bins, shape, axis_names = factor_bins(data, factors, pair)
        means, _ = factor_code_map((mean - center) / scale, bins, shape)
        written["factor_map"] = factor_map_figure(means, order[:MAP_LATENTS], axis_names, folder, labels)
    return written


def checked_count(name, value, least, most):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not least <= value <= most:
        raise UserError(f"{name} must be a whole number from {least} to {most}, got {value!r}")
    return int(value)


class Labels:
    """What the figures' titles and latent labels say: the run, the dataset, the study, the KLs."""

    def __init__(self, record, study, kl):
        hyper = ", ".join(f"{key}={value}" for key, value in sorted(record.get("hyperparameters", {}).items()))
        self.run = f"{record['method']}" + (f" ({hyper})" if hyper else "") + f", seed {record.get('seed')}"
        self.dataset, self.study, self.kl = record["dataset"], study, kl

    def title(self, what):
        return figure_title(f"{what} of {self.run}", self.dataset, self.study)

    def latent(self, j):
        return f"z{j}, KL {self.kl[j]:.2f} nats"


# --- the prior's scale and the latents' KL --------------------------------------------------------

def prior_center_and_scale(prior, seed=0):
    """(center, scale), each (D,): what traversal value 0 and a step of 1 mean per latent (the
    module docstring says which)."""
    dim = prior.latent_dim
    if isinstance(prior, IsotropicGaussian):
        return np.zeros(dim), np.full(dim, float(prior.scale))
    if isinstance(prior, AnisotropicGaussian):
        with torch.no_grad():
            return np.zeros(dim), prior.variances().double().sqrt().cpu().numpy()
    with torch.no_grad():  # the prior is on the CPU, where model_pictures loads the model
        draws = prior.sample(PRIOR_DRAWS, torch.Generator().manual_seed(seed))
    q25, median, q75 = np.quantile(draws.double().cpu().numpy(), [0.25, 0.5, 0.75], axis=0)
    return median, (q75 - q25) / GAUSSIAN_IQR


def latent_kl(prior, mean, logvar, center, scale):
    """(D,) KL(q(z_j|x) || p(z_j)) averaged over the rows of mean and logvar (numpy (n, D))."""
    with torch.no_grad():
        per_dim = prior.kl_per_dim(torch.as_tensor(mean, dtype=torch.float64),
                                   torch.as_tensor(logvar, dtype=torch.float64))
    if per_dim is not None:
        return per_dim.double().cpu().numpy().mean(axis=0)
    per_dim = (np.log(scale) - 0.5 * logvar + (np.exp(logvar) + (mean - center) ** 2) / (2 * scale ** 2) - 0.5)
    return per_dim.mean(axis=0)


def kl_order(kl):
    """Latent indices by decreasing KL (ties keep index order)."""
    return np.argsort(-np.asarray(kl), kind="stable")


# --- the sample and the factor map ---------------------------------------------------------------

def grid_factors(data):
    """The indices (a, b) of the two factors the map is drawn over, in dataset order; None with
    fewer than two factors."""
    names = list(data.factor_names)
    if all(name in names for name in POSITION_FACTORS):
        return tuple(names.index(name) for name in POSITION_FACTORS)
    if len(names) < 2:
        return None
    if getattr(data, "continuous_factors", False):
        return 0, 1
    by_values = sorted(range(len(names)), key=lambda k: -data.factors_num_values[k])  # stable: ties by order
    return tuple(sorted(by_values[:2]))


def sample_factors(data, pair, size, rng):
    """At least size factor combinations drawn with rng, shuffled. With a pair of discrete factors
    the sample is balanced over their cells (ceil(size / cells) per cell; the other factors drawn
    at random), which is still a uniform sample of the grid."""
    if pair is None or getattr(data, "continuous_factors", False):
        return data.sample_factors(size, rng)
    num_a, num_b = (data.factors_num_values[k] for k in pair)
    per_cell = math.ceil(size / (num_a * num_b))
    factors = data.sample_factors(num_a * num_b * per_cell, rng)
    factors[:, pair[0]] = np.repeat(np.arange(num_a), num_b * per_cell)
    factors[:, pair[1]] = np.tile(np.repeat(np.arange(num_b), per_cell), num_a)
    return factors[rng.permutation(len(factors))]


def factor_bins(data, factors, pair):
    """(bins (n, 2) ints, (num_a, num_b), axis names): each observation's cell over the pair."""
    names = [data.factor_names[k] for k in pair]
    if not getattr(data, "continuous_factors", False):
        shape = tuple(int(data.factors_num_values[k]) for k in pair)
        return np.asarray(factors)[:, list(pair)].astype(np.int64), shape, [f"{n} (value index)" for n in names]
    columns = [quantile_bins(np.asarray(factors)[:, k], CONTINUOUS_BINS) for k in pair]
    return np.stack(columns, axis=1), (CONTINUOUS_BINS, CONTINUOUS_BINS), [f"{n} (quantile bin)" for n in names]


def quantile_bins(values, num_bins):
    """The bin 0..num_bins-1 of each value among num_bins bins of equal counts."""
    inner_edges = np.quantile(values, np.linspace(0, 1, num_bins + 1)[1:-1])
    return np.searchsorted(inner_edges, values, side="right")


def factor_code_map(codes, bins, shape):
    """(means (num_a, num_b, D), counts (num_a, num_b)): the mean code of the observations in
    each cell (bins: (n, 2) cell indices); NaN where a cell is empty."""
    codes = np.asarray(codes, dtype=np.float64)
    cell = np.ravel_multi_index((bins[:, 0], bins[:, 1]), shape)
    counts = np.bincount(cell, minlength=shape[0] * shape[1])
    sums = np.stack([np.bincount(cell, weights=codes[:, j], minlength=len(counts)) for j in range(codes.shape[1])],
                    axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    return means.reshape(*shape, codes.shape[1]), counts.reshape(shape)


# --- decoding -----------------------------------------------------------------------------------

@torch.no_grad()
def decoded_means(model, codes, batch_size=256):
    """Decoder means (n, C, H, W) in [0, 1] as numpy, for codes (n, D)."""
    dtype = next(model.parameters()).dtype
    codes = torch.as_tensor(np.asarray(codes), dtype=dtype)
    parts = [model.likelihood.mean(model.decode(codes[i:i + batch_size])) for i in range(0, len(codes), batch_size)]
    return torch.cat(parts).clamp(0, 1).float().numpy()  # Gaussian and Laplace means may leave [0, 1]


def traversal_codes(bases, latents, values, center, scale):
    """(bases, latents, values, D) codes: each base's posterior mean with latent j set to
    center_j + v * scale_j."""
    codes = np.repeat(np.asarray(bases)[:, None, None, :], len(latents), axis=1).repeat(len(values), axis=2)
    for row, j in enumerate(latents):
        codes[:, row, :, j] = center[j] + np.asarray(values) * scale[j]
    return codes


def decoded_traversals(model, bases, latents, values, center, scale):
    """(bases, latents, values, C, H, W) decoded traversal images."""
    codes = traversal_codes(bases, latents, values, center, scale)
    images = decoded_means(model, codes.reshape(-1, codes.shape[-1]))
    return images.reshape(codes.shape[:3] + images.shape[1:])


# --- the figures --------------------------------------------------------------------------------

def tile_centres(count, size):
    """Pixel centres of `count` tiles of `size` pixels in an image_grid row or column."""
    return np.arange(count) * (size + 2) + 1 + (size - 1) / 2


def show_grid(ax, tiles):
    """Draw (rows, cols, C, H, W) tiles as one image; returns (row centres, column centres)."""
    ax.imshow(image_grid(tiles), interpolation="nearest")
    rows, cols, _, height, width = tiles.shape
    return tile_centres(rows, height), tile_centres(cols, width)


def reconstruction_figure(model, observations, means, folder, labels):
    import matplotlib.pyplot as plt

    tiles = np.stack([np.asarray(observations, dtype=np.float32), decoded_means(model, means)])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 * len(observations)), 3.0))
    row_centres, col_centres = show_grid(ax, tiles)
    ax.set_yticks(row_centres, ["data", "reconstruction\n(decoder mean)"])
    ax.set_xticks(col_centres, [str(i + 1) for i in range(len(observations))])
    ax.set_xlabel("image of the sample")
    ax.set_title(labels.title("Reconstructions"), fontsize="medium")
    return save_figure(fig, folder, "reconstructions")


def traversal_figure(model, bases, latents, center, scale, folder, labels):
    import matplotlib.pyplot as plt

    images = decoded_traversals(model, bases, latents, TRAVERSAL_VALUES, center, scale)
    panel_width, left, top, bottom = 3.6, 1.4, 0.6, 0.6  # inches; a panel's rows take what its columns do
    height = panel_width * len(latents) / len(TRAVERSAL_VALUES) + top + bottom
    width = panel_width * len(bases) + left + 0.2
    fig, axes = plt.subplots(1, len(bases), squeeze=False, figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, top=1 - top / height, bottom=bottom / height,
                        wspace=0.05)
    for number, (ax, tiles) in enumerate(zip(axes[0], images)):
        row_centres, col_centres = show_grid(ax, tiles)
        ax.set_xticks(col_centres, [f"{v:g}" for v in TRAVERSAL_VALUES], fontsize="small")
        ax.set_yticks(row_centres, [labels.latent(j) for j in latents] if number == 0 else [], fontsize="small")
        ax.set_xlabel("latent value (prior std)")
        ax.set_title(f"base image {number + 1}", fontsize="small")
    axes[0, 0].set_ylabel("latent, by KL, highest first")
    fig.suptitle(labels.title("Latent traversals"), fontsize="medium")
    return save_figure(fig, folder, "traversals")


def traversal_gif(model, bases, latents, center, scale, folder, labels):
    """traversals.gif: one frame per value of GIF_VALUES (up, then back down without repeating
    the ends), each showing every traversed latent (rows) of every base image (columns)."""
    import matplotlib.pyplot as plt

    images = decoded_traversals(model, bases, latents, GIF_VALUES, center, scale)
    frame_tiles = images.transpose(2, 1, 0, 3, 4, 5)  # (values, latents, bases, C, H, W)
    # a tile of TILE_INCHES at GIF_DPI is about one image pixel per pixel; margins in inches
    left, right, top, bottom = 2.0, 0.3, 0.9, 0.6
    width = max(left + TILE_INCHES * len(bases) + right, 5.0)
    height = top + TILE_INCHES * len(latents) + bottom
    fig, ax = plt.subplots(figsize=(width, height), dpi=GIF_DPI)
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height)
    row_centres, col_centres = show_grid(ax, frame_tiles[0])
    ax.set_yticks(row_centres, [labels.latent(j) for j in latents], fontsize="small")
    ax.set_ylabel("latent, by KL, highest first")
    ax.set_xticks(col_centres, [str(i + 1) for i in range(len(bases))])
    ax.set_xlabel("base image")
    title = fig.suptitle("", fontsize="small")
    frames = animation_frames(fig, ax.images[0], title, [image_grid(tiles) for tiles in frame_tiles],
                              [f"{labels.title('Traversals')}\nlatent value {v:+.2f} (prior std)" for v in GIF_VALUES])
    plt.close(fig)
    path = folder / "traversals.gif"
    rundir.atomic_write_bytes(path, gif_bytes(frames + frames[-2:0:-1]))
    return path


def animation_frames(fig, picture, title, pictures, titles):
    """The RGB frames (H, W, 3) of fig showing each of pictures in the image picture under each of
    titles. The rest of fig is drawn once, without them, and each frame draws only what changes
    on it: the image (above the ticks, so that it covers them as a whole draw of the figure does),
    the axes' frame around it and the title. Drawing every frame whole took twice as long."""
    ax = picture.axes
    picture.set_zorder(max(picture.get_zorder(), ax.xaxis.get_zorder(), ax.yaxis.get_zorder()) + 0.1)
    changing = [picture, *sorted(ax.spines.values(), key=lambda spine: spine.get_zorder()), title]
    for artist in changing:
        artist.set_visible(False)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    for artist in changing:
        artist.set_visible(True)
    frames = []
    for data, text in zip(pictures, titles):
        fig.canvas.restore_region(background)
        picture.set_data(data)
        title.set_text(text)
        for artist in changing:
            fig.draw_artist(artist)
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    return frames


def gif_bytes(frames):
    """An endless GIF of the RGB frames, GIF_FRAME_MS each, in one palette of 256 colours for all
    of them, cut from the median of PALETTE_PIXELS of their pixels. Pillow's own way, a median cut
    of each whole frame, took seconds for a colour dataset's frames, and is no closer."""
    from PIL import Image

    pixels = np.concatenate([frame.reshape(-1, 3) for frame in frames])
    every = max(1, len(pixels) // PALETTE_PIXELS)
    palette = Image.fromarray(pixels[::every, None, :]).quantize(256, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=GIF_FRAME_MS, loop=0)
    return buffer.getvalue()


def factor_map_figure(means, latents, axis_names, folder, labels):
    """One panel per latent: its mean code (prior std) over the two factors, with a colour bar."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(latents), figsize=(3.3 * len(latents), 3.2), squeeze=False)
    fig.subplots_adjust(wspace=0.55, top=0.8)  # room for each colour bar's label; no layout engine: it is slow
    for ax, j in zip(axes[0], latents):
        shown = ax.imshow(means[:, :, j].T, origin="lower", cmap="viridis", interpolation="nearest", aspect="auto")
        fig.colorbar(shown, ax=ax, label="mean code (prior std)")
        ax.set_xlabel(axis_names[0])
        ax.set_title(labels.latent(j), fontsize="small")
    axes[0, 0].set_ylabel(axis_names[1])
    fig.suptitle(labels.title(f"Mean code over {axis_names[0].split(' ')[0]} and {axis_names[1].split(' ')[0]}"),
                 fontsize="medium")
    return save_figure(fig, folder, "factor_map")
