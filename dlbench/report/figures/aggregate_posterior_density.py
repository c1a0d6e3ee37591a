"""The aggregate posterior q(z) of each setting's representative model as a density plot, the
panels laid out on a grid of two hyperparameters (Mathieu et al. 2019, Fig. 3: q(z) on pinwheel
for each alpha and beta, against a Gaussian-mixture prior).

Drawn only for models with two latent dimensions (model.latent_dim == 2): one figure per dataset
and method, and per value of any further setting that varies. Columns are the method's strength
hyperparameter (the numeric one with the most values, as in the strength figure), rows the next
one (a single row when only one varies). A setting's panel shows its representative run
(representatives.csv).

q(z) = (1/N) sum_n N(z; mean_n, diag exp(logvar_n)) is evaluated exactly on a GRID x GRID lattice
of points, over the observations the aggregate_kl metric averages over (every observation the
dataset holds, or MAX_POINTS drawn with seed 0 where it holds more). Every panel has the same
window and colour scale, so panels compare: the window is centred on the priors' mean and reaches
WINDOW_STDS of their standard deviations (the larger of the two axes) each way, both estimated
from PRIOR_DRAWS draws of each panel's prior; the colours run linearly from 0 to the priors'
largest density in the window, so where q(z) is denser than the prior ever is the colour saturates.
The line is the prior's contour at a tenth of its largest density, and each panel says how much
of q(z)'s mass lies inside the window.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dlbench.aggregate import run_folder
from dlbench.errors import UserError, describe_os_error, is_disk_fault
from dlbench.report.figure_files import figure_title, plt, save_figure
from dlbench.report.figures.settings import (dataset_method_pairs, figure_name, format_value, setting_label,
                                             short_name, strength_columns, varying_settings)

KIND = "aggregate_posterior"
LATENT_DIM_COLUMN = "model.latent_dim"
GRID = 160             # lattice points per axis
MAX_POINTS = 10000     # observations encoded per run at most
PRIOR_DRAWS = 20000
WINDOW_STDS = 3.0
CONTOUR_FRACTION = 0.1
SEED = 0
PANEL_INCHES = 2.2
GAP_INCHES = 0.2
# margins in inches: left (row labels), right (colour bar), top (column titles and the title), bottom
MARGINS = (1.0, 1.5, 1.0, 0.5)


@dataclass
class Panel:
    """One setting's picture: its place on the grid, its representative run, and q(z) and p(z) on
    the lattice ([y, x] indexed, as imshow draws them); density is None where the run could not
    be read (problem says why)."""

    row: object
    column: object
    run_dir: str
    density: np.ndarray = None
    prior_density: np.ndarray = None
    problem: str = None

    @property
    def drawn(self):
        return self.density is not None


@dataclass
class DensityGrid:
    """What one figure plots: the panels of a dataset and method (and `series`, the other varying
    settings, '' when none), the hyperparameters of its rows (None for one row) and columns, the
    lattice's coordinates x and y, and the colour scale's top."""

    dataset: str
    method: str
    series: str
    rows: str
    columns: str
    panels: list
    x: np.ndarray = None
    y: np.ndarray = None
    colour_max: float = None
    row_values: list = field(default_factory=list)
    column_values: list = field(default_factory=list)

    def mass_inside(self, panel):
        """The share of q(z)'s probability inside the window (a Riemann sum over the lattice)."""
        return float(panel.density.sum() * (self.x[1] - self.x[0]) * (self.y[1] - self.y[0]))


def density_on_grid(mean, logvar, x, y):
    """q(z) at every lattice point (x_i, y_j) for q the equal mixture of N(mean_n, diag
    exp(logvar_n)) (mean, logvar: (N, 2)): a (len(y), len(x)) array, [j, i] at (x_i, y_j)."""
    from dlbench.metrics.aggregate_posterior import log_aggregate_density

    points = lattice(x, y)
    _, log_q = log_aggregate_density(points, mean, logvar, joint=True)
    return np.exp(log_q).reshape(len(y), len(x))


def lattice(x, y):
    """The (len(y) * len(x), 2) points (x_i, y_j), y-major: row j of a reshaped array is y_j."""
    xs, ys = np.meshgrid(np.asarray(x, float), np.asarray(y, float))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def window(prior_draws):
    """(x, y): GRID coordinates per axis of the square window centred on the draws' mean,
    WINDOW_STDS of their largest standard deviation each way."""
    draws = np.concatenate(prior_draws)
    centre, reach = draws.mean(axis=0), WINDOW_STDS * draws.std(axis=0).max()
    return tuple(np.linspace(c - reach, c + reach, GRID) for c in centre)


def panel_layouts(representatives):
    """One DensityGrid (panels without densities yet) per figure the representatives of
    two-dimensional models make: see the module docstring for the layout."""
    if LATENT_DIM_COLUMN not in representatives.columns:
        return []
    two_dim = representatives[pd.to_numeric(representatives[LATENT_DIM_COLUMN], errors="coerce") == 2]
    grids = []
    for dataset, method, rows in dataset_method_pairs(two_dim):
        grids += method_layouts(rows, dataset, method)
    return grids


def method_layouts(rows, dataset, method):
    strengths = strength_columns(rows)
    if not strengths:
        return []
    columns, row_name = strengths[0], (strengths[1] if len(strengths) > 1 else None)
    others = [c for c in varying_settings(rows) if c not in (columns, row_name)]
    series_of = pd.Series([setting_label(row, others) for _, row in rows.iterrows()], index=rows.index)
    grids = []
    for series, members in rows.groupby(series_of, sort=True):
        panels = [Panel(row[row_name] if row_name else None, row[columns], row["run_dir"])
                  for _, row in members.iterrows()]
        grids.append(DensityGrid(dataset, method, series, row_name, columns, panels,
                                 row_values=sorted({p.row for p in panels}),  # all None for a single row
                                 column_values=sorted({p.column for p in panels})))
    return grids


def run_encodings(run_dir):
    """(mean, logvar, log_prior_fn, prior draws) of a finished run: its encoder's Gaussians over the
    observations aggregate_kl averages over, its prior's log-density and PRIOR_DRAWS draws."""
    import dlbench.data
    from dlbench import rundir
    from dlbench.metrics.aggregate_kl import encoded_points
    from dlbench.model_functions import model_functions
    from dlbench.train import load_trained_model

    record = rundir.require_finished_run(run_dir)
    model = load_trained_model(run_dir, "cpu")
    data = dlbench.data.dataset_from_record(record)
    functions = model_functions(model, "cpu", SEED)
    num_points = None if len(data) <= MAX_POINTS else MAX_POINTS
    mean, logvar, _ = encoded_points(data, functions["encode_fn"], np.random.RandomState(SEED), num_points, 1024)
    return mean, logvar, functions["log_prior_fn"], functions["prior_sample_fn"](PRIOR_DRAWS)


def fill_densities(grid, encodings_of):
    """grid with every panel's densities on a common window: encodings_of(run_dir) gives (mean,
    logvar, log_prior_fn, prior draws) (run_encodings for real runs) or raises a UserError or
    OSError, which leaves the panel undrawn with the reason."""
    loaded = {}
    for panel in grid.panels:
        try:
            loaded[id(panel)] = encodings_of(panel.run_dir)
        except (UserError, OSError) as err:
            if is_disk_fault(err):
                raise
            panel.problem = " ".join((describe_os_error(err) if isinstance(err, OSError) else str(err)).split())
    if not loaded:
        return grid
    grid.x, grid.y = window([encodings[3] for encodings in loaded.values()])
    points = lattice(grid.x, grid.y)
    for panel in grid.panels:
        if id(panel) in loaded:
            mean, logvar, log_prior_fn, _ = loaded[id(panel)]
            panel.density = density_on_grid(mean, logvar, grid.x, grid.y)
            panel.prior_density = np.exp(log_prior_fn(points)).reshape(len(grid.y), len(grid.x))
    grid.colour_max = max(p.prior_density.max() for p in grid.panels if p.drawn)
    return grid


def plot_density_grid(grid, study=None):
    """The figure of a filled DensityGrid: a panel per setting, q(z) in colour, p(z)'s contour."""
    num_rows, num_cols = max(1, len(grid.row_values)), len(grid.column_values)
    fig, axes, colour_axes = square_panels(num_rows, num_cols)
    extent = (grid.x[0], grid.x[-1], grid.y[0], grid.y[-1])
    shown = None
    for panel in grid.panels:
        ax = axes[grid.row_values.index(panel.row) if grid.rows else 0, grid.column_values.index(panel.column)]
        if not panel.drawn:
            ax.text(0.5, 0.5, "not drawn:\nsee the report's problems", ha="center", va="center",
                    transform=ax.transAxes, fontsize=7)
            continue
        shown = ax.imshow(panel.density, origin="lower", extent=extent, cmap="Blues", vmin=0,
                          vmax=grid.colour_max, interpolation="nearest", aspect="equal")
        ax.contour(grid.x, grid.y, panel.prior_density, levels=[CONTOUR_FRACTION * panel.prior_density.max()],
                   colors="tab:orange", linewidths=0.8)
        ax.text(0.03, 0.03, f"{100 * grid.mass_inside(panel):.0f}% of q(z) shown", transform=ax.transAxes,
                fontsize=6.5, color="0.25")
    for j, value in enumerate(grid.column_values):
        axes[0, j].set_title(f"{short_name(grid.columns)}={format_value(value)}", fontsize=9)
        axes[-1, j].set_xlabel("z0")
    for i in range(num_rows):
        axes[i, 0].set_ylabel((f"{short_name(grid.rows)}={format_value(grid.row_values[i])}\n" if grid.rows else "")
                              + "z1")
    if shown is not None:
        fig.colorbar(shown, cax=colour_axes, label="density of q(z) (colours cut at the prior's largest)")
    what = f"Aggregate posterior q(z) of each setting's representative, {grid.method}"
    what += f" ({grid.series})" if grid.series else ""
    fig.suptitle(figure_title(what, grid.dataset, study)
                 + f"\norange: the prior p(z) at {CONTOUR_FRACTION:g} of its largest density", fontsize=9)
    return fig


def square_panels(num_rows, num_cols):
    """(figure, axes (rows, cols), colour bar axes): square panels PANEL_INCHES wide, GAP_INCHES
    apart, the figure sized around them (no layout engine: the panels' size is fixed)."""
    left, right, top, bottom = MARGINS
    width = left + num_cols * PANEL_INCHES + (num_cols - 1) * GAP_INCHES + right
    height = top + num_rows * PANEL_INCHES + (num_rows - 1) * GAP_INCHES + bottom
    fig, axes = plt.subplots(num_rows, num_cols, squeeze=False, sharex=True, sharey=True, figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=GAP_INCHES / PANEL_INCHES, hspace=GAP_INCHES / PANEL_INCHES)
    bar_height = min(num_rows * PANEL_INCHES, 4.0)
    bar_bottom = bottom + (num_rows * PANEL_INCHES + (num_rows - 1) * GAP_INCHES - bar_height) / 2
    colour_axes = fig.add_axes([1 - (right - 0.25) / width, bar_bottom / height, 0.15 / width, bar_height / height])
    return fig, axes, colour_axes


def figure_names(representatives):
    """The names draw_figures may give its figures (one per layout, drawn where a panel can be)."""
    return [_name(grid) for grid in panel_layouts(representatives)]


def _name(grid):
    return figure_name(KIND, grid.dataset, grid.method, *([grid.series] if grid.series else []))


def draw_figures(representatives, runs_root, folder, study=None, problem=print, encodings_of=None):
    """An aggregate-posterior figure per layout panel_layouts finds in representatives (a
    DataFrame of representatives.csv): {name: [png, pdf]}. problem receives a line per panel that
    could not be drawn. encodings_of defaults to run_encodings under runs_root."""
    encodings_of = encodings_of or (lambda run_dir: run_encodings(run_folder(runs_root, run_dir)))
    written = {}
    for grid in panel_layouts(representatives):
        fill_densities(grid, encodings_of)
        for panel in grid.panels:
            if panel.problem:
                problem(f"aggregate posterior of {panel.run_dir} not drawn: {panel.problem}")
        if any(panel.drawn for panel in grid.panels):
            written[_name(grid)] = save_figure(plot_density_grid(grid, study), folder, _name(grid))
    return written
