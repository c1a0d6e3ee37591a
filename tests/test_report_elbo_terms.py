"""The elbo_terms figure (Sikka et al. Figs. 1-2): its points equal a hand computation from the
runs' values (each run's objective recon_ll - beta kl, then numpy's mean and standard error over
seeds), failed runs never enter it, only methods whose hyperparameter weighs the KL get one, and
the saved figure has a labelled panel per quantity with the exact log p(x) drawn as a reference."""

import numpy as np
import pandas as pd
import pytest

from dlbench.report.figures import elbo_terms, study_figures
from dlbench.report.page import FIGURE_KINDS

DATASET = "linear_gaussian"
ELBO, RECON, KL = "elbo.elbo", "elbo.recon_ll", "elbo.kl"
IWAE, EXACT = "iwae[num_points=2000].iwae", "iwae[num_points=2000].exact_log_px"
TIE = "inference_error.true_inference_error"
BETAS, SEEDS = (0.5, 1.0, 4.0), (0, 1, 2)


def run_row(method, beta, seed, status="done"):
    """A results.csv row with made-up but distinct values (a failed run's are far off)."""
    recon, kl = -10.0 - beta - 0.1 * seed, 2.0 / beta + 0.05 * seed
    if status != "done":
        recon, kl = 1000.0, 1000.0
    return {"run_dir": f"{method}/beta={beta}/seed={seed}", "dataset": DATASET, "method": method, "seed": seed,
            "status": status, "hp.beta": beta, "train.steps": 100, "model.architecture": "pinwheel",
            RECON: recon, KL: kl, ELBO: recon - kl, IWAE: recon + 0.3 * seed, EXACT: -9.0, TIE: beta + seed}


@pytest.fixture
def results():
    rows = [run_row("beta_vae", beta, seed) for beta in BETAS for seed in SEEDS]
    rows.append(run_row("beta_vae", 1.0, 3, status="failed"))
    return pd.DataFrame(rows)


def by_hand(results, beta, values_of):
    """Mean and standard error over the finished runs at beta of values_of(run rows)."""
    runs = results[(results["hp.beta"] == beta) & (results["status"] == "done")]
    values = np.asarray(values_of(runs), dtype=float)
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values))


def test_points_are_each_quantity_mean_and_standard_error_over_finished_seeds(results):
    data = elbo_terms.elbo_terms_data(results, DATASET, "beta_vae")
    assert list(dict.fromkeys(data["panel"])) == ["objective", ELBO, RECON, KL, IWAE, TIE]
    assert set(data["count"]) == {3} and set(data["series"]) == {""}
    for beta in BETAS:
        at = data[data["beta"] == beta].set_index("quantity")
        objective = by_hand(results, beta, lambda runs: runs[RECON] - beta * runs[KL])
        assert [at.loc["objective", "mean"], at.loc["objective", "sem"]] == pytest.approx(list(objective))
        for column in (ELBO, RECON, KL, IWAE, TIE):
            assert [at.loc[column, "mean"], at.loc[column, "sem"]] == pytest.approx(
                list(by_hand(results, beta, lambda runs: runs[column])))
        # the exact log p(x) is drawn in the IWAE panel
        assert at.loc[EXACT, "panel"] == IWAE and at.loc[EXACT, "mean"] == pytest.approx(-9.0)


def test_no_figure_without_a_kl_weight_the_elbo_or_a_second_beta(results):
    other = results.assign(method="factor_vae")
    assert elbo_terms.elbo_terms_data(other, DATASET, "factor_vae") is None  # gamma weighs the TC, not the KL
    assert elbo_terms.elbo_terms_data(results.drop(columns=[RECON]), DATASET, "beta_vae") is None
    assert elbo_terms.elbo_terms_data(results[results["hp.beta"] == 1.0], DATASET, "beta_vae") is None


def test_other_varying_settings_are_separate_series(results):
    longer = results.assign(**{"train.steps": 200, RECON: results[RECON] - 1.0})
    data = elbo_terms.elbo_terms_data(pd.concat([results, longer], ignore_index=True), DATASET, "beta_vae")
    assert sorted(set(data["series"])) == ["steps=100", "steps=200"]
    recon = data[(data["quantity"] == RECON) & (data["beta"] == 4.0)].set_index("series")["mean"]
    assert recon["steps=200"] == pytest.approx(recon["steps=100"] - 1.0)


def test_the_figure_is_saved_with_a_labelled_panel_per_quantity(results, tmp_path):
    written = study_figures(results, pd.DataFrame(), tmp_path, "sikka")
    name = "elbo_terms_linear_gaussian_beta_vae"
    assert [p.name for p in written[name]] == [f"{name}.png", f"{name}.pdf"]
    assert all(p.stat().st_size > 0 for p in written[name])
    assert any(name.startswith(prefix) for prefix, _ in FIGURE_KINDS)  # the page gives it its section

    data = elbo_terms.elbo_terms_data(results, DATASET, "beta_vae")
    fig = elbo_terms.plot_elbo_terms(data, "beta_vae", DATASET, study="sikka")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 6 and "sikka" in fig.get_suptitle() and DATASET in fig.get_suptitle()
    assert shown[0].get_ylabel().replace("\n", " ").startswith("objective E_q[log p(x|z)] - beta KL")
    assert all(ax.get_xlabel().startswith("beta") and ax.get_legend() is not None for ax in shown)
    iwae_panel = shown[4]
    exact_line = [line for line in iwae_panel.lines if line.get_linestyle() == "--"]
    assert len(exact_line) == 1 and list(exact_line[0].get_ydata()) == pytest.approx([-9.0] * 3)
    objective = shown[0].lines[0]
    assert list(objective.get_xdata()) == list(BETAS)
    assert list(objective.get_ydata()) == pytest.approx(
        [by_hand(results, beta, lambda runs: runs[RECON] - beta * runs[KL])[0] for beta in BETAS])
