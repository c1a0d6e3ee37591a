"""The Theorem 2 reproduction (reports/reproductions/mathieu_rotation/) regenerates: its run.sh at
smoke scale writes every kind of file the committed full run holds, leaves the committed files
alone, and the README quotes the committed results.csv."""

import csv
import re
from pathlib import Path

import pytest

from tests.commands import REPO, run_reproduction

HERE = REPO / "reports" / "reproductions" / "mathieu_rotation"
REPORT = HERE / "report"  # what run.sh writes
PROTOCOL = re.compile(r"_rotation-.*$")  # figure names carry the metric's protocol, which smoke scale shrinks


def kind(relative):
    """A written file's name without the protocol its name may carry: what a smoke run must write too."""
    path = Path(relative)
    return str(path.parent / (PROTOCOL.sub("", path.stem) + path.suffix))


def committed_files():
    return {str(p.relative_to(REPORT)) for p in REPORT.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_run_sh_at_smoke_scale_writes_every_kind_of_file_the_full_run_wrote(tiny_data_root, tmp_path):
    before = {path: (REPORT / path).stat().st_mtime_ns for path in committed_files()}
    out = tmp_path / "smoke"
    run_reproduction(HERE, out, data_root=tiny_data_root, cwd=tmp_path)
    written = {str(p.relative_to(out / "report")) for p in (out / "report").rglob("*") if p.is_file()}
    assert {kind(p) for p in before} <= {kind(p) for p in written}
    assert any(p.startswith("figures/rotation_") and p.endswith(".png") for p in written)
    with open(out / "report" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["model.prior.name"] for row in rows) == ["anisotropic_gaussian", "isotropic_gaussian",
                                                               "student_t"]
    assert {path: (REPORT / path).stat().st_mtime_ns for path in committed_files()} == before


def test_the_readme_quotes_the_committed_results():
    """Every number of the README's table is the committed report/results.csv's, rounded as printed."""
    with open(REPORT / "results.csv", newline="") as handle:
        rows = {row["model.prior.name"]: row for row in csv.DictReader(handle)}
    readme = (HERE / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| ") and "|" in line[2:]]
    quoted = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table)}
    prefix = next(c.rsplit(".", 1)[0] for c in next(iter(rows.values())) if c.startswith("rotation["))
    for prior, row in rows.items():
        cells = quoted[prior]
        expected = [f"{float(row[f'{prefix}.objective']):.1f}", f"{float(row[f'{prefix}.objective_stderr']):.2f}",
                    f"{float(row[f'{prefix}.max_abs_objective_change']):.3g}",
                    f"{float(row[f'{prefix}.max_abs_objective_change_over_stderr']):.3g}",
                    f"{float(row[f'{prefix}.mig']):.3f}",
                    f"{float(row[f'{prefix}.mig_min']):.3f} to {float(row[f'{prefix}.mig_max']):.3f}",
                    f"{float(row[f'{prefix}.factor_vae']):.3f}",
                    f"{float(row[f'{prefix}.factor_vae_min']):.3f} to {float(row[f'{prefix}.factor_vae_max']):.3f}"]
        assert cells[1:9] == expected, prior


def test_the_study_trains_the_three_priors_alike_and_evaluates_rotations():
    from dlbench.study import load_study

    study = load_study("repro_mathieu_rotation")
    assert [spec.name for spec in study.runs] == [f"beta_vae/prior={prior}/seed=0" for prior in
                                                  ("isotropic_gaussian", "anisotropic_gaussian", "student_t")]
    assert study.metrics == ["rotation"] and study.metric_params["rotation"]["beta"] == 4.0
    fixed = [set(p for p in spec.gin_params if not p.startswith("model.prior")) for spec in study.runs]
    assert fixed[0] == fixed[1] == fixed[2] and "beta_vae.beta = 4.0" in fixed[0]
