"""The rotation figure: its plotted data are the rotation metric's values of each finished run, read
back from the aggregated table (rotation 0 the identity, the change over the objective's standard
error computed here by hand), and it is drawn as PNG and PDF only for a study that has them."""

import pytest

from dlbench import rundir
from dlbench.aggregate import collect, leaderboard
from dlbench.report.figures import rotation, study_figures

TAG = "[num_rotations=2]"
# (prior, status, objective_stderr, objective changes, MIGs and FactorVAE scores at rotations 0, 1, 2)
RUNS = [("isotropic_gaussian", rundir.Status.DONE, 2.0, [0.0, 0.0], [0.30, 0.10, 0.12], [0.8, 0.6, 0.5]),
        ("student_t", rundir.Status.DONE, 4.0, [-8.0, 2.0], [0.20, 0.25, 0.05], [0.7, 0.7, 0.4]),
        ("student_t", rundir.Status.FAILED, 1.0, [9.0, 9.0], [0.99, 0.99, 0.99], [0.99, 0.99, 0.99])]


def write_runs(root, with_rotation=True):
    for seed, (prior, status, stderr, changes, migs, factor_vaes) in enumerate(RUNS):
        run_dir = root / "beta_vae" / f"prior={prior}" / f"seed={seed}"
        rundir.write_json(run_dir / "run.json", {
            "method": "beta_vae", "dataset": "dsprites", "seed": seed, "status": status,
            "hyperparameters": {"beta": 4.0}, "train": {"steps": 10, "seed": seed, "batch_size": 64},
            "model": {"architecture": "conv", "latent_dim": 3, "likelihood": "bernoulli", "prior": {"name": prior}}})
        if status == rundir.Status.DONE:  # a done run without them is left out as damaged
            rundir.write_json(run_dir / "model" / "results.json", {"loss": 90.0, "steps": 10})
        result = {"metric": "rotation", "metric_version": 2, "mode": "mean", "seed": 0, "num_rotations": 2,
                  "objective": -100.0, "objective_stderr": stderr, "mig": migs[0], "factor_vae": factor_vaes[0]}
        for r in (1, 2):
            result.update({f"objective_change_r{r}": changes[r - 1], f"objective_change_stderr_r{r}": 0.1,
                           f"mig_r{r}": migs[r], f"factor_vae_r{r}": factor_vaes[r]})
        folder = f"rotation{TAG}" if with_rotation else "recon_ll"
        rundir.write_json(run_dir / "metrics" / "mean" / folder / "results.json",
                          result if with_rotation else {"metric": "recon_ll", "recon_ll": -90.0})


def test_the_plotted_values_are_each_finished_runs_rotations(tmp_path):
    write_runs(tmp_path / "runs")
    results = collect(tmp_path / "runs").results
    assert rotation.rotation_protocols(results.columns) == {f"rotation{TAG}": 2}
    data = rotation.rotation_data(results, "dsprites", f"rotation{TAG}", 2)
    assert len(data) == 6  # two finished runs, three rotations each: the failed run is left out
    for seed, (_, _, stderr, changes, migs, factor_vaes) in enumerate(RUNS[:2]):
        run = data[data["seed"] == seed].sort_values("rotation")
        assert run["rotation"].tolist() == [0, 1, 2]
        assert run["objective_change"].tolist() == [0.0, *changes]
        assert run["objective_change_over_stderr"].tolist() == pytest.approx([0.0] + [c / stderr for c in changes])
        assert run["objective_change_stderr_over_stderr"].tolist() == pytest.approx([0.0, 0.1 / stderr, 0.1 / stderr])
        assert run["mig"].tolist() == migs and run["factor_vae"].tolist() == factor_vaes


def test_drawn_as_png_and_pdf_only_where_the_study_evaluated_rotations(tmp_path):
    write_runs(tmp_path / "runs")
    results = collect(tmp_path / "runs").results
    written = study_figures(results, leaderboard(results), tmp_path / "figures", study="s")
    names = [name for name in written if name.startswith("rotation_")]
    assert len(names) == 1 and all(path.is_file() and path.stat().st_size > 0 for path in written[names[0]])
    assert [p.suffix for p in written[names[0]]] == [".png", ".pdf"]
    write_runs(tmp_path / "other", with_rotation=False)
    other = collect(tmp_path / "other").results
    assert rotation.draw_figures(other, None, tmp_path / "other_figures") == {}
