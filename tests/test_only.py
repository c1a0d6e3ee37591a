"""--only: one set of glob patterns picks the same slice of a study's runs for dlb_study (from the
study file) and for dlb_aggregate and dlb_report (from the run directories); a pattern matching
nothing is refused with one line and nothing written."""

import json

import pytest

from dlbench.errors import UserError
from dlbench.selection import matching, only_pattern
from tests.commands import assert_one_line_error, run_command, run_in_process
from tests.fake_runs import make_run, read_csv, run_aggregate
from tests.test_study import write_study

NAMES = ["beta_vae/beta=1.0/seed=0", "beta_vae/beta=2.0/seed=0", "isa_vae/prior=lp_nested_isa,beta=1.0/seed=0",
         "isa_vae/prior=lp_nested_isa,beta=2.0/seed=1"]


def test_patterns_keep_the_order_take_the_union_and_star_crosses_slashes():
    assert matching(NAMES, None, "x") == NAMES and matching(NAMES, [], "x") == NAMES
    assert matching(NAMES, ["isa_vae/*beta=1.0/*", "beta_vae/beta=1.0/*"], "x") == [NAMES[0], NAMES[2]]
    assert matching(NAMES, ["*beta=1.0*"], "x") == [NAMES[0], NAMES[2]]
    assert matching(NAMES, ["*/seed=[1-3]"], "x") == [NAMES[3]]
    assert matching(NAMES, ["*", "beta_vae/*"], "x") == NAMES  # a run matching two patterns is taken once


def test_a_pattern_matching_nothing_is_refused_even_beside_one_that_matches():
    with pytest.raises(UserError, match=r"--only 'beta_vae/beta=1/\*' matches none of the 4 runs, e\.g\. beta_vae"):
        matching(NAMES, ["isa_vae/*", "beta_vae/beta=1/*"], "the 4 runs")


def test_a_folder_pattern_takes_the_runs_below_it_or_the_run_it_names():
    # a setting's folder, as shell completion writes it, had been refused as matching no run
    assert matching(NAMES, [only_pattern("beta_vae/")], "x") == NAMES[:2]
    assert matching(NAMES, [only_pattern("isa_vae/*beta=2.0//")], "x") == [NAMES[3]]
    assert matching(NAMES, [only_pattern("beta_vae/beta=1.0/seed=0/")], "x") == [NAMES[0]]
    for folder in ("beta_vae/beta=3.0/", "beta_vae/beta=1/"):  # a folder is a whole name's part, not a prefix
        with pytest.raises(UserError, match=f"--only '{folder}' matches none"):
            matching(NAMES, [only_pattern(folder)], "the 4 runs")


def test_dlb_study_runs_and_dry_runs_only_the_slice(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 2.0, 8.0], 'train.seed': [0, 1]}")
    runs = tmp_path / "runs"
    dry = run_in_process("dlb_study", study, "--runs_root", runs, "--dry_run", "--only", "*beta=1.0/*",
                         "--only", "*/beta=8.0/seed=1", data_root=tiny_dsprites)
    assert dry.returncode == 0, dry.stderr
    assert [line.split(": ", 1)[0] for line in dry.stdout.splitlines()] == [
        str(runs / "beta_vae/beta=1.0/seed=0"), str(runs / "beta_vae/beta=1.0/seed=1"),
        str(runs / "beta_vae/beta=8.0/seed=1")]
    ran = run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress", "--only",
                      "*/beta=2.0/seed=0", data_root=tiny_dsprites)
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.parent.relative_to(runs).as_posix() for p in runs.rglob("run.json")) == ["beta_vae/beta=2.0/seed=0"]
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", "--only", "*/beta=2.0/*",
                            data_root=tiny_dsprites)
    assert "2 runs: 1 done, 1 not started" in status.stdout
    refused = run_in_process("dlb_study", study, "--runs_root", tmp_path / "other", "--only", "factor_vae/*",
                             data_root=tiny_dsprites)
    assert_one_line_error(refused, "--only 'factor_vae/*' matches none of the study's 6 runs")
    assert not (tmp_path / "other").exists()


def test_dlb_aggregate_counts_only_the_slice_and_says_so(tmp_path):
    root = tmp_path / "runs"
    for beta in (1.0, 2.0):
        for seed in (0, 1):
            make_run(root / f"beta_vae/beta={beta}/seed={seed}", seed, mig=0.1 * beta + 0.5 * seed,
                     hyperparameters={"beta": beta})
    result = run_aggregate(root, "--out", tmp_path / "out", "--only", "beta_vae/beta=2.0/*", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "out/results.csv")
    assert sorted(row["run_dir"] for row in rows) == ["beta_vae/beta=2.0/seed=0", "beta_vae/beta=2.0/seed=1"]
    (board,) = read_csv(tmp_path / "out/leaderboard.csv")
    assert float(board["mig.discrete_mig.mean"]) == pytest.approx((0.2 + 0.7) / 2)
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["only"] == ["beta_vae/beta=2.0/*"] and report["counts"]["run_json_found"] == 2
    whole = run_aggregate(root, "--out", tmp_path / "whole", cwd=tmp_path)
    assert json.loads((tmp_path / "whole/report.json").read_text())["only"] is None

    # the trailing '/' of a directory's shell completion had made the pattern match no run
    completed = run_aggregate(root, "--out", tmp_path / "completed", "--only", "beta_vae/beta=2.0/seed=1/",
                              cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert [row["run_dir"] for row in read_csv(tmp_path / "completed/results.csv")] == ["beta_vae/beta=2.0/seed=1"]
    folder = run_aggregate(root, "--out", tmp_path / "folder", "--only", "beta_vae/beta=1.0/", cwd=tmp_path)
    assert folder.returncode == 0, folder.stderr
    assert [row["run_dir"] for row in read_csv(tmp_path / "folder/results.csv")] == [
        "beta_vae/beta=1.0/seed=0", "beta_vae/beta=1.0/seed=1"]
    assert_one_line_error(run_aggregate(root, "--out", tmp_path / "slash", "--only", "/", cwd=tmp_path),
                          "--only", "'/' is no run name pattern")

    refused = run_aggregate(root, "--out", tmp_path / "none", "--only", "beta_vae/beta=3.0/*", cwd=tmp_path)
    assert_one_line_error(refused, "--only 'beta_vae/beta=3.0/*' matches none of the 4 runs under")
    assert not (tmp_path / "none").exists() and whole.returncode == 0


def test_the_report_page_says_which_runs_it_took(tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):
        make_run(root / f"beta_vae/beta=1.0/seed={seed}", seed, status="failed", error="out of memory")
    make_run(root / "beta_vae/beta=<2>/seed=0", 0, status="failed", error="out of memory")
    assert run_aggregate("runs", "--out", "whole", "--report", cwd=tmp_path).returncode == 0
    assert "<th>runs taken</th><td>all</td>" in (tmp_path / "whole/index.html").read_text(encoding="utf-8")
    result = run_aggregate("runs", "--out", "out", "--report", "--only", "*=<2>/*", "--only", "*/seed=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out/index.html").read_text(encoding="utf-8")
    assert "<th>runs taken</th><td>those matching <code>*=&lt;2&gt;/*</code>, <code>*/seed=1</code></td>" in page
    assert "beta_vae/beta=1.0/seed=0" not in page and "beta_vae/beta=1.0/seed=1" in page
