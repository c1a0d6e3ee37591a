"""PNG figures of a trained model: reconstructions, latent traversals and draws from the prior
(image grids for image data; scatter plots of the first two coordinates for vector data)."""

import io

import numpy as np
import torch
from PIL import Image

from dlbench.rundir import atomic_write_bytes


def _grid(tiles):
    """(rows, cols, C, H, W) floats in [0, 1] to one (rows*(H+2), cols*(W+2), 3) image."""
    rows, cols, channels, h, w = tiles.shape
    canvas = np.ones((rows * (h + 2), cols * (w + 2), 3), dtype=np.float32)
    rgb = tiles if channels == 3 else np.repeat(tiles[:, :, :1], 3, axis=2)
    for r in range(rows):
        for c in range(cols):
            canvas[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = \
                rgb[r, c].transpose(1, 2, 0)
    return canvas


# magenta (graphics' colour for what is missing): a pixel whose decoder mean is NaN or infinite,
# which has no grey or colour to show (numpy had warned and cast it to an arbitrary byte)
NOT_FINITE = (1.0, 0.0, 1.0)


def save_png(path, picture):
    """An (H, W, 3) float picture in [0, 1] as an 8-bit PNG (with Pillow: matplotlib's import
    would add a quarter of a second to every dlb_train): values beyond [0, 1] clipped, a pixel
    with a channel that is not finite drawn NOT_FINITE."""
    finite = np.isfinite(picture).all(axis=-1, keepdims=True)
    shown = np.where(finite, np.clip(picture, 0, 1), np.asarray(NOT_FINITE, dtype=np.float32))
    buffer = io.BytesIO()
    Image.fromarray((shown * 255).astype(np.uint8)).save(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())


def _say_not_finite(log, path, draws, decoded, shown):
    """One line when some draws from the prior decode to values that are not finite: a prior as
    heavy-tailed as a Student-t of small nu draws coordinates beyond the largest float, which no
    decoder can turn into an image."""
    bad = ~torch.isfinite(decoded.flatten(1)).all(1)
    if not bad.any():
        return
    beyond = int((bad & ~torch.isfinite(draws).all(1)).sum())
    why = (f"{beyond} of them drew a coordinate beyond the largest {str(draws.dtype).removeprefix('torch.')}, "
           f"{torch.finfo(draws.dtype).max:.1e}: the prior's tails are that heavy" if beyond
           else "the decoder overflowed on them")
    log(f"{path}: {int(bad.sum())} of {len(bad)} draws from the prior decode to values that are not finite "
        f"({why}); {shown}")


# latent dimensions drawn in traversals.png, a row each: enough for any model of the field (they
# have 10); a model of thousands (a typo in model.latent_dim) had failed there, after training
MAX_TRAVERSED = 64


@torch.no_grad()
def write_samples(model, images, pixel_scale, folder, seed=0, num=8, span=2.0, steps=9, log=print):
    """reconstructions.png (top: data, bottom: mean reconstructions), traversals.png (one row
    per latent dimension, the first MAX_TRAVERSED, moved over [-span, span] from the first image's
    mean code) and prior_samples.png (decoder means at draws from the model's prior; `log` says
    how many of these are not finite)."""
    model.eval()
    if images.ndim == 2:
        return _write_vector_samples(model, images, folder, seed, span, steps, log)
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(len(images), (num,), generator=generator)
    x = torch.as_tensor(images[index.numpy()]).to(device=device, dtype=dtype) * pixel_scale
    mean, _ = model.encode(x)
    recon = model.likelihood.mean(model.decode(mean))
    save_png(folder / "reconstructions.png", _grid(torch.stack([x, recon]).cpu().numpy()))
    offsets = torch.linspace(-span, span, steps, device=device)
    rows = min(mean.shape[1], MAX_TRAVERSED)
    codes = mean[0].repeat(rows, steps, 1)  # (rows, steps, D)
    for dim in range(rows):
        codes[dim, :, dim] = mean[0, dim] + offsets
    decoded = model.likelihood.mean(model.decode(codes.flatten(0, 1)))
    save_png(folder / "traversals.png", _grid(decoded.unflatten(0, (rows, steps)).cpu().numpy()))
    prior_generator = torch.Generator(device=device).manual_seed(seed)
    draws = model.prior.sample(2 * num, prior_generator)
    drawn = model.likelihood.mean(model.decode(draws))
    _say_not_finite(log, folder / "prior_samples.png", draws, drawn,
                    "their pixels that are not finite are drawn magenta")
    save_png(folder / "prior_samples.png", _grid(drawn.unflatten(0, (2, num)).cpu().numpy()))


VECTOR_POINTS = 500  # points per scatter plot of vector data


def _xy(points):
    """The first two coordinates of (n, D) points for a scatter plot (the second is 0 when D = 1)."""
    points = points.cpu().numpy()
    return points[:, 0], points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))


def _save_figure(path, draw):
    from matplotlib.figure import Figure  # only vector data's figures need it

    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    draw(axes)
    axes.set_aspect("equal", adjustable="datalim")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


@torch.no_grad()
def _write_vector_samples(model, observations, folder, seed, span, steps, log):
    """The same three figures for (N, D) float data: data points (grey) with their mean
    reconstructions, the decoded path of each latent dimension moved over [-span, span] from the
    first point's mean code, and decoder means at draws from the prior over the data."""
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(observations), generator=generator)[:VECTOR_POINTS]
    x = torch.as_tensor(observations[index.numpy()]).to(device=device, dtype=dtype)
    mean, _ = model.encode(x)
    recon = model.likelihood.mean(model.decode(mean))

    def data(axes):
        axes.scatter(*_xy(x), s=4, c="0.6", label="data")

    def reconstructions(axes):
        data(axes)
        axes.scatter(*_xy(recon), s=4, c="tab:red", label="reconstruction")
        axes.legend(loc="best", fontsize="small")

    offsets = torch.linspace(-span, span, steps, device=device)

    def traversals(axes):
        data(axes)
        for dim in range(min(mean.shape[1], MAX_TRAVERSED)):
            codes = mean[0].repeat(steps, 1)
            codes[:, dim] += offsets
            axes.plot(*_xy(model.likelihood.mean(model.decode(codes))), marker=".", label=f"z{dim}")
        axes.legend(loc="best", fontsize="small")

    prior_generator = torch.Generator(device=device).manual_seed(seed)
    draws = model.prior.sample(len(x), prior_generator)
    drawn = model.likelihood.mean(model.decode(draws))
    _say_not_finite(log, folder / "prior_samples.png", draws, drawn, "the plot leaves them out")

    def prior_samples(axes):
        data(axes)
        axes.scatter(*_xy(drawn), s=4, c="tab:blue", label="decoded prior draws")
        axes.legend(loc="best", fontsize="small")

    for name, draw in (("reconstructions", reconstructions), ("traversals", traversals),
                       ("prior_samples", prior_samples)):
        _save_figure(folder / f"{name}.png", draw)
