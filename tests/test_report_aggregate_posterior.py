"""The aggregate-posterior density figure: its plotted densities against scipy on constructed
encodings, its layout of settings on a grid of two hyperparameters, its common window and
colour scale, and what it does with a run it cannot read."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

from dlbench.errors import UserError
from dlbench.report.figures import aggregate_posterior_density as apd


def mixture_density(points, mean, logvar):
    """The equal mixture of N(mean_n, diag exp(logvar_n)) at points, with scipy."""
    return np.mean([multivariate_normal(m, np.diag(np.exp(v))).pdf(points) for m, v in zip(mean, logvar)], axis=0)


def test_the_density_on_the_lattice_is_the_mixture_of_the_encoders_gaussians():
    rng = np.random.default_rng(0)
    mean, logvar = rng.normal(size=(7, 2)), rng.normal(-1.0, 0.3, size=(7, 2))
    x, y = np.linspace(-2.0, 2.0, 9), np.linspace(-1.0, 3.0, 5)  # not square: [y, x] order shows
    density = apd.density_on_grid(mean, logvar, x, y)
    assert density.shape == (5, 9)
    for j, y_j in enumerate(y):
        for i, x_i in enumerate(x):
            assert density[j, i] == pytest.approx(mixture_density([x_i, y_j], mean, logvar), rel=1e-10)


def representatives_table():
    """representatives.csv rows: ab_vae with 2 alphas x 3 betas on two datasets' worth of settings,
    one of them also varying the learning rate, and a 10-latent beta_vae that gets no figure."""
    rows = [{"dataset": "pinwheel", "method": "ab_vae", "hp.alpha": a, "hp.beta": b, "train.lr": 1e-3,
             "model.latent_dim": 2, "run_dir": f"ab_vae/alpha={a},beta={b}/seed=0"}
            for a in (10.0, 0.0) for b in (1.0, 0.1, 5.0)]
    rows += [{"dataset": "pinwheel", "method": "ab_vae", "hp.alpha": 0.0, "hp.beta": 1.0, "train.lr": 1e-2,
              "model.latent_dim": 2, "run_dir": "ab_vae/fast/seed=0"}]
    rows += [{"dataset": "dsprites", "method": "beta_vae", "hp.alpha": np.nan, "hp.beta": b, "train.lr": 1e-3,
              "model.latent_dim": 10, "run_dir": f"beta_vae/beta={b}/seed=0"} for b in (1.0, 4.0)]
    return pd.DataFrame(rows)


def test_settings_are_laid_out_by_their_two_most_swept_hyperparameters():
    grids = apd.panel_layouts(representatives_table())
    assert [(g.dataset, g.method, g.series) for g in grids] == [("pinwheel", "ab_vae", "lr=0.001"),
                                                                ("pinwheel", "ab_vae", "lr=0.01")]
    main = grids[0]
    assert (main.columns, main.rows) == ("hp.beta", "hp.alpha")  # beta has the more values
    assert main.column_values == [0.1, 1.0, 5.0] and main.row_values == [0.0, 10.0]
    assert {(p.row, p.column): p.run_dir for p in main.panels} == {
        (a, b): f"ab_vae/alpha={a},beta={b}/seed=0" for a in (10.0, 0.0) for b in (1.0, 0.1, 5.0)}
    assert [p.run_dir for p in grids[1].panels] == ["ab_vae/fast/seed=0"]


def test_a_study_without_two_latent_models_or_varying_hyperparameters_has_no_figure():
    table = representatives_table()
    assert apd.panel_layouts(table[table["method"] == "beta_vae"]) == []
    assert apd.panel_layouts(table.drop(columns="model.latent_dim")) == []
    one_setting = table[(table["method"] == "ab_vae")].iloc[:1]
    assert apd.panel_layouts(one_setting) == []


class FakeRuns:
    """encodings_of for constructed runs: each run's points a tight cluster at its own place, the
    prior N(0.5, 0.25 I); one run unreadable."""

    prior = multivariate_normal([0.5, 0.5], 0.25 * np.eye(2))

    def __init__(self, unreadable=()):
        self.unreadable, self.calls = set(unreadable), []

    def __call__(self, run_dir):
        self.calls.append(run_dir)
        if run_dir in self.unreadable:
            raise UserError(f"'{run_dir}/model/checkpoint.pt' is missing")
        centre = np.array([0.1, 0.2]) * (len(self.calls) % 4)
        mean = centre + 0.05 * np.random.default_rng(len(self.calls)).normal(size=(20, 2))
        draws = self.prior.rvs(size=apd.PRIOR_DRAWS, random_state=len(self.calls))
        return mean, np.full((20, 2), np.log(0.01)), self.prior.logpdf, draws


def test_panels_share_a_window_around_the_prior_and_a_colour_scale_at_its_largest_density():
    grid = apd.panel_layouts(representatives_table())[0]
    broken = "ab_vae/alpha=10.0,beta=5.0/seed=0"
    apd.fill_densities(grid, FakeRuns(unreadable=[broken]))
    # the window: the prior's mean (0.5, 0.5), WINDOW_STDS of its standard deviation (0.5) each way
    reach = apd.WINDOW_STDS * 0.5
    assert grid.x[0] == pytest.approx(0.5 - reach, abs=0.02) and grid.x[-1] == pytest.approx(0.5 + reach, abs=0.02)
    assert grid.y[0] == pytest.approx(0.5 - reach, abs=0.02) and len(grid.x) == len(grid.y) == apd.GRID
    # colours top out at the prior's largest density on the lattice, 1 / (2 pi 0.25) at its mean
    assert grid.colour_max == pytest.approx(1 / (2 * np.pi * 0.25), rel=1e-3)
    undrawn = [p for p in grid.panels if not p.drawn]
    assert [p.run_dir for p in undrawn] == [broken] and "missing" in undrawn[0].problem
    for panel in grid.panels:
        if panel.drawn:
            # tight clusters well inside the window: all of q(z)'s mass is shown
            assert grid.mass_inside(panel) == pytest.approx(1.0, abs=1e-3)
            np.testing.assert_allclose(panel.prior_density,
                                       FakeRuns.prior.pdf(apd.lattice(grid.x, grid.y)).reshape(apd.GRID, apd.GRID))


def test_draw_figures_writes_one_figure_per_layout_and_reports_unreadable_runs(tmp_path):
    table = representatives_table()
    table = table[table["hp.alpha"] != 10.0]  # only beta varies among the lr=0.001 settings left: one row
    assert [(g.rows, g.columns, len(g.panels)) for g in apd.panel_layouts(table)] == [(None, "hp.beta", 3),
                                                                                      (None, "hp.beta", 1)]
    problems = []
    written = apd.draw_figures(table, tmp_path / "runs", tmp_path / "figures", "mine", problem=problems.append,
                               encodings_of=FakeRuns(unreadable=["ab_vae/fast/seed=0"]))
    assert list(written) == ["aggregate_posterior_pinwheel_ab_vae_lr=0.001"]  # the lr=0.01 grid had nothing to draw
    assert [p.name for p in written["aggregate_posterior_pinwheel_ab_vae_lr=0.001"]] == [
        "aggregate_posterior_pinwheel_ab_vae_lr=0.001.png", "aggregate_posterior_pinwheel_ab_vae_lr=0.001.pdf"]
    assert all(p.stat().st_size > 1000 for p in written["aggregate_posterior_pinwheel_ab_vae_lr=0.001"])
    assert problems == ["aggregate posterior of ab_vae/fast/seed=0 not drawn: 'ab_vae/fast/seed=0/model/checkpoint.pt' "
                        "is missing"]
