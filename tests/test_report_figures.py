"""The study-level figures: their plotted data equal an independent computation from the runs
(pandas' mean and standard error per setting, scipy's Spearman correlation), failed and unfinished
runs never enter them, and each figure is saved as PNG and PDF with labelled axes, a legend and a
title naming the dataset and the study.

The study is a set of fake run directories (run.json, metric results; no training), read and
summarised by dlb_aggregate's own code (collect, leaderboard), so the tables are the ones a real
study gives."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from dlbench import rundir
from dlbench.aggregate import collect, leaderboard
from dlbench.metrics import metric_version
from dlbench.report.figure_files import plt
from dlbench.report.figures import (correlations, distributions, metric_columns, strength, study_figures,
                                    tc_vs_mig, tradeoff)

DATASET = "dsprites"
STUDY = "tiny_study"
MIG = "mig.discrete_mig"
FACTOR_VAE = "factor_vae[num_train=1000].eval_accuracy"  # evaluated with a reduced protocol, as quickstart
RECON = "recon_ll.recon_ll"
TC = "total_correlation.total_correlation"
HEADLINE = [MIG, FACTOR_VAE, RECON, TC]
FAILED_MIG = 0.999  # no finished run scores this: seen in a figure, a failed run got in
# (method, strength hyperparameter, value, seeds finished); a failed and an unfinished run are added
# to beta_vae's beta=4, and factor_vae's gamma=20 has one finished seed (no spread, no error bar)
SETTINGS = [("beta_vae", "beta", 1.0, 3), ("beta_vae", "beta", 4.0, 3),
            ("factor_vae", "gamma", 10.0, 3), ("factor_vae", "gamma", 20.0, 1)]


def write_run(root, method, hyperparameters, seed, status, rng, metrics=True, total_correlation=True):
    run_dir = root / method / ",".join(f"{k}={v}" for k, v in hyperparameters.items()) / f"seed={seed}"
    rundir.write_json(run_dir / "run.json", {
        "method": method, "dataset": DATASET, "seed": seed, "status": status, "hyperparameters": hyperparameters,
        "train": {"steps": 100, "seed": seed, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 50},
        "model": {"architecture": "conv", "latent_dim": 10, "likelihood": "bernoulli",
                  "prior": {"name": "isotropic_gaussian"}}})
    if status == rundir.Status.DONE:  # a done run without them is left out as damaged
        rundir.write_json(run_dir / "model" / "results.json", {"loss": 90.0, "steps": 100})
    if not metrics:
        return
    mig = FAILED_MIG if status == rundir.Status.FAILED else float(rng.uniform(0, 0.5))
    results = {"mig": {"discrete_mig": mig, "num_train": 10000, "num_bins": 20},
               "factor_vae[num_train=1000]": {"eval_accuracy": float(rng.uniform(0.3, 1)),
                                              "train_accuracy": float(rng.uniform(0.3, 1)),
                                              "num_active_dims": 5, "num_train": 1000},
               "recon_ll": {"recon_ll": float(rng.normal(-80, 10)), "recon_ll_stderr": 0.5, "num_points": 10000}}
    if total_correlation:
        results["total_correlation"] = {"total_correlation": float(rng.uniform(0, 3)),
                                        "total_correlation_stderr": 0.1, "num_samples": 10000, "num_points": 384}
    for folder, result in results.items():
        metric = folder.partition("[")[0]
        rundir.write_json(run_dir / "metrics" / "mean" / folder / "results.json",
                          {"metric": metric, "metric_version": metric_version(metric), "mode": "mean", "seed": 0,
                           **result})


def write_study(root, total_correlation=True):
    rng = np.random.default_rng(7)
    for method, name, value, seeds in SETTINGS:
        for seed in range(seeds):
            write_run(root, method, {name: value}, seed, rundir.Status.DONE, rng,
                      total_correlation=total_correlation)
    write_run(root, "beta_vae", {"beta": 4.0}, 3, rundir.Status.FAILED, rng, total_correlation=total_correlation)
    write_run(root, "beta_vae", {"beta": 4.0}, 4, rundir.Status.RUNNING, rng, metrics=False)


def aggregated(root):
    """(results, board) of the runs under root, as dlb_aggregate computes them."""
    results = collect(root).results
    return results, leaderboard(results)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures") / "runs"
    write_study(root)
    return aggregated(root)


@pytest.fixture(autouse=True)
def close_figures():
    """The plot_* functions hand back open figures; each test's are closed after it."""
    yield
    plt.close("all")


def expected_per_setting(results, column):
    """{(method, setting label): (mean, standard error)} over finished runs, computed here."""
    done = results[results["status"] == "done"]
    expected = {}
    for method, name, _, _ in SETTINGS:
        runs = done[done["method"] == method]
        for value, group in runs.groupby(f"hp.{name}")[column]:
            expected[(method, f"{name}={value:g}")] = (group.mean(), group.sem())
    return expected


def assert_same(actual, expected):
    """Numbers equal to rounding; NaN (one seed: no standard error) only where expected."""
    assert actual == pytest.approx(expected, nan_ok=True)


def labels_of(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_visible() and ax.get_xlabel()]


def assert_saved(paths):
    png, pdf = paths
    assert png.suffix == ".png" and pdf.suffix == ".pdf"
    with Image.open(png) as image:
        assert image.size[0] > 100 and image.size[1] > 100
    assert pdf.read_bytes().startswith(b"%PDF")


def test_the_study_has_the_failed_and_unfinished_runs_it_must_leave_out(study):
    results, _ = study
    assert sorted(results["status"]) == ["done"] * 10 + ["failed", "running"]
    assert (results[MIG] == FAILED_MIG).sum() == 1


def test_tradeoff_points_are_the_means_and_standard_errors_of_the_finished_runs(study):
    results, board = study
    data = tradeoff.tradeoff_data(board, DATASET, MIG, RECON)
    mig, recon = expected_per_setting(results, MIG), expected_per_setting(results, RECON)
    plotted = data.set_index(["method", "setting"])
    assert list(plotted.index) == [("beta_vae", "beta=1"), ("beta_vae", "beta=4"),
                                   ("factor_vae", "gamma=10"), ("factor_vae", "gamma=20")]
    assert set(plotted.index) == set(mig)
    for key, row in plotted.iterrows():
        assert_same([row[f"{MIG}.mean"], row[f"{MIG}.sem"]], list(mig[key]))
        assert_same([row[f"{RECON}.mean"], row[f"{RECON}.sem"]], list(recon[key]))
        assert row["dataset"] == DATASET
    assert np.isnan(plotted.loc[("factor_vae", "gamma=20"), f"{MIG}.sem"])  # one seed: no error bar


def test_tradeoff_figure_draws_those_points_with_labels_units_and_a_legend(study):
    _, board = study
    columns = metric_columns.board_columns(board)
    reconstruction = tradeoff.reconstruction_column(columns)
    scores = tradeoff.tradeoff_scores(columns)
    assert reconstruction.column == RECON and [s.column for s in scores] == [MIG, FACTOR_VAE]
    data = tradeoff.tradeoff_data(board, DATASET, MIG, RECON)
    fig = tradeoff.plot_tradeoff(data, scores[0], reconstruction, DATASET, STUDY)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "reconstruction log-likelihood (nats per observation)"
    assert ax.get_ylabel() == "MIG (normalised by factor entropy, 0-1)"
    assert DATASET in ax.get_title() and STUDY in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["beta_vae", "factor_vae"]
    drawn = sorted((x, y) for line in ax.lines if line.get_marker() == "o" for x, y in line.get_xydata())
    expected = sorted(zip(data[f"{RECON}.mean"], data[f"{MIG}.mean"]))
    np.testing.assert_allclose(np.array(drawn), np.array(expected), rtol=1e-12)
    assert sorted(t.get_text() for t in ax.texts) == ["beta=1", "beta=4", "gamma=10", "gamma=20"]


def test_distributions_hold_every_finished_seed_and_no_other_run(study):
    results, _ = study
    done = results[results["status"] == "done"]
    data = distributions.distribution_data(results, DATASET, MIG)
    assert sorted(data["run_dir"]) == sorted(done["run_dir"])
    assert FAILED_MIG not in set(data[MIG])
    for method, name, value, seeds in SETTINGS:
        shown = data[(data["method"] == method) & (data["setting"] == f"{name}={value:g}")]
        runs = done[(done["method"] == method) & (done[f"hp.{name}"] == value)]
        assert sorted(shown[MIG]) == sorted(runs[MIG]) and len(shown) == seeds


def test_distribution_figure_draws_violins_only_where_there_is_a_spread(study):
    results, _ = study
    metric = metric_columns.parse(RECON)
    fig = distributions.plot_distribution(distributions.distribution_data(results, DATASET, RECON), metric,
                                          DATASET, STUDY)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "method and setting"
    assert ax.get_ylabel() == "reconstruction log-likelihood (nats per observation)"
    assert STUDY in ax.get_title() and DATASET in ax.get_title()
    assert len(ax.collections) == 3  # gamma=20 has a single run: its point, no violin
    assert sorted(len(line.get_ydata()) for line in ax.lines) == [1, 3, 3, 3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["beta_vae", "factor_vae", "one run (seed)"]


def constructed_runs():
    """Six finished runs where the FactorVAE score ranks them as MIG does (+1) and reconstruction
    the other way round (-1), though not linearly; total correlation unrelated, one value missing;
    and a failed run that would break both orders."""
    mig = [0.01, 0.02, 0.05, 0.2, 0.21, 0.6]
    rows = [{"run_dir": f"r{i}", "dataset": DATASET, "method": "beta_vae", "seed": i, "status": "done",
             "hp.beta": 1.0, MIG: m, FACTOR_VAE: m ** 3 + 0.3, RECON: -np.exp(10 * m),
             TC: [0.5, 2.0, 0.1, np.nan, 0.7, 0.3][i]} for i, m in enumerate(mig)]
    rows.append({"run_dir": "failed", "dataset": DATASET, "method": "beta_vae", "seed": 9, "status": "failed",
                 "hp.beta": 1.0, MIG: 0.0, FACTOR_VAE: 1.0, RECON: 0.0, TC: 9.0})
    return pd.DataFrame(rows)


def test_rank_correlations_are_spearmans_over_the_finished_runs():
    results = constructed_runs()
    matrix = correlations.correlation_data(results, DATASET)
    assert list(matrix.columns) == [MIG, FACTOR_VAE, RECON, TC]
    assert matrix.loc[MIG, FACTOR_VAE] == pytest.approx(1.0)
    assert matrix.loc[MIG, RECON] == pytest.approx(-1.0)
    done = results[results["status"] == "done"]
    for a in matrix.columns:
        for b in matrix.columns:
            pair = done[[a, b]].dropna()
            assert matrix.loc[a, b] == pytest.approx(stats.spearmanr(pair[a], pair[b]).statistic)


def test_rank_correlations_of_the_aggregated_study_and_their_heatmap(study):
    results, _ = study
    matrix = correlations.correlation_data(results, DATASET)
    done = results[results["status"] == "done"]
    # every score column, FactorVAE's training accuracy too; standard errors and counts are no scores
    assert list(matrix.columns) == [MIG, FACTOR_VAE, "factor_vae[num_train=1000].train_accuracy", RECON, TC]
    for a in matrix.columns:
        for b in matrix.columns:
            assert matrix.loc[a, b] == pytest.approx(stats.spearmanr(done[a], done[b]).statistic)
    fig = correlations.plot_correlations(matrix, DATASET, STUDY, num_runs=len(done))
    ax = fig.axes[0]
    assert ax.get_xlabel() == ax.get_ylabel() == "metric"
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "MIG"
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in matrix.to_numpy().ravel())
    assert fig.axes[1].get_ylabel() == "Spearman rank correlation over 10 finished runs (-1 to 1)"


def test_no_heatmap_without_two_varying_scores():
    results = constructed_runs()[["run_dir", "dataset", "method", "seed", "status", "hp.beta", MIG]]
    assert correlations.correlation_data(results, DATASET) is None


def test_strength_curves_are_the_means_and_standard_errors_per_strength(study):
    results, board = study
    for method, name in (("beta_vae", "beta"), ("factor_vae", "gamma")):
        data = strength.strength_data(board, DATASET, method)
        assert set(data["hyperparameter"]) == {f"hp.{name}"} and set(data["series"]) == {""}
        assert list(dict.fromkeys(data["metric"])) == HEADLINE
        for column in HEADLINE:
            expected = expected_per_setting(results, column)
            for row in data[data["metric"] == column].itertuples():
                assert_same([row.mean, row.sem], list(expected[(method, f"{name}={row.strength:g}")]))
            assert len(data[data["metric"] == column]) == 2


def test_strength_figure_has_a_labelled_panel_per_headline_metric(study):
    _, board = study
    data = strength.strength_data(board, DATASET, "beta_vae")
    fig = strength.plot_strength(data, "beta_vae", DATASET, STUDY)
    labels = labels_of(fig)
    assert [x for x, _ in labels] == ["beta (beta_vae regularisation strength)"] * 4
    assert [y.replace("\n", " ") for _, y in labels] == [metric_columns.parse(c).label for c in HEADLINE]
    (legend,) = fig.legends  # one for all panels
    assert [t.get_text() for t in legend.get_texts()] == ["mean ± s.e. over seeds"]
    assert DATASET in fig.get_suptitle() and STUDY in fig.get_suptitle()
    first, mig = fig.axes[0].lines[0], data[data["metric"] == MIG]
    assert list(first.get_xdata()) == list(mig["strength"])
    assert list(first.get_ydata()) == pytest.approx(list(mig["mean"]))


def test_a_series_has_one_colour_in_every_panel_and_one_legend_entry_even_where_a_panel_lacks_it():
    rows = [{"run_dir": f"r{a}{b}{s}", "dataset": DATASET, "method": "ab_vae", "seed": s, "status": "done",
             "hp.alpha": a, "hp.beta": b, MIG: 0.1 * a + 0.01 * b + 0.001 * s,
             FACTOR_VAE: np.nan if a == 0.5 else 0.5 + 0.01 * b + 0.001 * s}  # no FactorVAE score at alpha 0.5
            for a in (0.0, 0.5) for b in (1.0, 2.0, 8.0) for s in (0, 1)]
    data = strength.strength_data(leaderboard(pd.DataFrame(rows)), DATASET, "ab_vae")
    fig = strength.plot_strength(data, "ab_vae", DATASET, STUDY)
    mig_panel, factor_vae_panel = fig.axes[:2]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["alpha=0.5: mean ± s.e.", "alpha=0: mean ± s.e."]
    by_panel = [[(container.get_label(), container.lines[0].get_color()) for container in ax.containers]
                for ax in (mig_panel, factor_vae_panel)]
    assert [label for label, _ in by_panel[1]] == ["alpha=0: mean ± s.e."]
    assert dict(by_panel[0])["alpha=0: mean ± s.e."] == by_panel[1][0][1]
    assert len(set(dict(by_panel[0]).values())) == 2


def test_the_strength_is_the_hyperparameter_with_most_values_and_the_others_make_series():
    rows = [{"run_dir": f"r{a}{b}{s}", "dataset": DATASET, "method": "ab_vae", "seed": s, "status": "done",
             "hp.alpha": a, "hp.beta": b, "hp.divergence": "kl", MIG: 0.1 * a + 0.01 * b + 0.001 * s}
            for a in (0.0, 0.5) for b in (1.0, 2.0, 8.0) for s in (0, 1)]
    results = pd.DataFrame(rows)
    data = strength.strength_data(leaderboard(results), DATASET, "ab_vae")
    assert set(data["hyperparameter"]) == {"hp.beta"}
    assert sorted(set(data["series"])) == ["alpha=0", "alpha=0.5"]
    one = data[(data["series"] == "alpha=0.5") & (data["strength"] == 8.0)].iloc[0]
    assert one["mean"] == pytest.approx(0.05 + 0.08 + 0.0005)
    assert one["sem"] == pytest.approx(np.std([0.0, 0.001], ddof=1) / np.sqrt(2))


def test_total_correlation_against_mig_is_one_point_per_finished_run(study):
    results, board = study
    migs, total_correlation = tc_vs_mig.tc_vs_mig_columns(metric_columns.board_columns(board))
    assert [m.column for m in migs] == [MIG] and total_correlation.column == TC
    data = tc_vs_mig.tc_vs_mig_data(results, DATASET, MIG, TC)
    done = results[(results["status"] == "done")].set_index("run_dir")
    assert sorted(data["run_dir"]) == sorted(done.index)
    for row in data.itertuples(index=False):
        assert (row[-2], row[-1]) == (done.loc[row.run_dir, MIG], done.loc[row.run_dir, TC])
    fig = tc_vs_mig.plot_tc_vs_mig(data, migs[0], total_correlation, DATASET, STUDY)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("MIG (normalised by factor entropy, 0-1)",
                                                  "total correlation of q(z) (nats)")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["beta_vae", "factor_vae"]
    assert sum(len(line.get_xdata()) for line in ax.lines) == 10


def test_a_study_without_total_correlation_gets_no_tc_figure(tmp_path):
    write_study(tmp_path / "runs", total_correlation=False)
    results, board = aggregated(tmp_path / "runs")
    assert tc_vs_mig.tc_vs_mig_columns(metric_columns.board_columns(board)) is None
    assert tc_vs_mig.tc_vs_mig_data(results, DATASET, MIG, TC) is None
    assert tc_vs_mig.draw_figures(results, board, tmp_path / "figures", STUDY) == {}
    assert not (tmp_path / "figures").exists()


@pytest.mark.slow  # ten figures, each drawn twice (PNG and PDF): 3-6 s on a busy 2-core CPU
def test_study_figures_draws_every_kind_and_returns_what_it_wrote(study, tmp_path):
    results, board = study
    folder = tmp_path / "figures"
    written = study_figures(results, board, folder, study=STUDY)
    assert list(written) == [
        "tradeoff_dsprites_mig.discrete_mig", "tradeoff_dsprites_factor_vae-num_train=1000-.eval_accuracy",
        "distribution_dsprites_mig.discrete_mig", "distribution_dsprites_factor_vae-num_train=1000-.eval_accuracy",
        "distribution_dsprites_recon_ll.recon_ll", "distribution_dsprites_total_correlation.total_correlation",
        "correlations_dsprites", "strength_dsprites_beta_vae", "strength_dsprites_factor_vae",
        "tc_vs_mig_dsprites_mig.discrete_mig"]
    for name, paths in written.items():
        assert [p.name for p in paths] == [f"{name}.png", f"{name}.pdf"]
        assert_saved(paths)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for paths in written.values() for p in paths)


def test_a_study_without_finished_runs_gets_no_figure(tmp_path):
    results = constructed_runs().assign(status="failed")
    assert study_figures(results, leaderboard(results), tmp_path / "figures", study=STUDY) == {}
    assert not (tmp_path / "figures").exists()


def test_headline_columns_and_axis_labels():
    columns = ["sampled.mig.discrete_mig", RECON, "recon_ll.recon_ll_stderr", FACTOR_VAE,
               "factor_vae[num_train=1000].num_active_dims", MIG, "elbo.kl", "elbo.kl_0", "elbo.elbo",
               "mig[num_bins=10].discrete_mig", "train_result.loss", "hp.beta"]  # the last two: no metrics
    assert [c.column for c in metric_columns.headline_columns(columns)] == [
        MIG, "mig[num_bins=10].discrete_mig", FACTOR_VAE, RECON, "elbo.elbo"]
    assert [c.column for c in metric_columns.score_columns(columns)] == [
        MIG, "mig[num_bins=10].discrete_mig", FACTOR_VAE, RECON, "elbo.elbo", "elbo.kl", "sampled.mig.discrete_mig"]
    assert metric_columns.parse(FACTOR_VAE).label == "FactorVAE score [num_train=1000] (held-out vote accuracy, 0-1)"
    long_tag = metric_columns.parse("factor_vae[num_eval=500,num_train=1000,num_variance_estimate=5000].eval_accuracy")
    assert long_tag.label == ("FactorVAE score [num_eval=500, num_train=1000,\n"
                              "num_variance_estimate=5000] (held-out vote accuracy, 0-1)")  # wrapped to fit the axis
    assert metric_columns.parse("sampled.mig.discrete_mig").name == "MIG, sampled representation"
    assert metric_columns.parse("dataset") is None


def test_tradeoff_draws_a_series_per_prior_labelled_by_what_varies_within_it():
    """Mathieu et al.'s Fig. 2: one method over betas with two priors, and over nu with a third
    (trained at another batch size): a series per prior, its points labelled by beta or nu alone."""
    rows = [("isotropic_gaussian", None, 1.0, 64), ("isotropic_gaussian", None, 4.0, 64),
            ("student_t", 3.0, 1.0, 256), ("student_t", 100.0, 1.0, 256)]
    board = pd.DataFrame({
        "dataset": DATASET, "method": "beta_vae",
        "hp.beta": [r[2] for r in rows], "model.prior.name": [r[0] for r in rows],
        "model.prior.nu": [r[1] for r in rows], "train.batch_size": [r[3] for r in rows],
        f"{MIG}.mean": [0.1, 0.2, 0.3, 0.4], f"{MIG}.sem": 0.01,
        f"{RECON}.mean": [-10.0, -20.0, -12.0, -11.0], f"{RECON}.sem": 0.5})
    data = tradeoff.tradeoff_data(board, DATASET, MIG, RECON)
    assert list(zip(data["series"], data["setting"])) == [
        ("beta_vae: prior.name=isotropic_gaussian", "beta=1"), ("beta_vae: prior.name=isotropic_gaussian", "beta=4"),
        ("beta_vae: prior.name=student_t", "prior.nu=3"), ("beta_vae: prior.name=student_t", "prior.nu=100")]
    assert list(data[f"{MIG}.mean"]) == [0.1, 0.2, 0.3, 0.4]
    columns = metric_columns.board_columns(board)
    fig = tradeoff.plot_tradeoff(data, tradeoff.tradeoff_scores(columns)[0], tradeoff.reconstruction_column(columns),
                                 DATASET, STUDY)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["beta_vae: prior.name=isotropic_gaussian",
                                                                  "beta_vae: prior.name=student_t"]
    assert sorted(t.get_text() for t in ax.texts) == ["beta=1", "beta=4", "prior.nu=100", "prior.nu=3"]


def test_a_setting_is_named_by_the_varying_values_it_has_not_by_those_it_lacks():
    """Mathieu et al.'s priors in one study: nu is a Student-t's, the scale an isotropic Gaussian's,
    learned an anisotropic Gaussian's; each setting's label and file name say only its own."""
    from dlbench.report.build import leaderboard_settings

    board = pd.DataFrame({
        "dataset": DATASET, "method": "beta_vae", "hp.beta": 1.0,
        "model.prior.name": ["isotropic_gaussian", "student_t", "anisotropic_gaussian", "anisotropic_gaussian"],
        "model.prior.nu": [np.nan, 3.0, np.nan, np.nan], "model.prior.scale": [1.0, np.nan, np.nan, np.nan],
        "model.prior.learned": [np.nan, np.nan, False, True]})
    settings = leaderboard_settings(board)
    assert [s.label for s in settings] == [
        "beta_vae, prior.name=isotropic_gaussian, prior.scale=1", "beta_vae, prior.name=student_t, prior.nu=3",
        "beta_vae, prior.learned=False, prior.name=anisotropic_gaussian",
        "beta_vae, prior.learned=True, prior.name=anisotropic_gaussian"]
    assert len({s.name for s in settings}) == 4 and not any("none" in s.name for s in settings)
