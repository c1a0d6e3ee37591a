"""The reproductions that need a GPU (Stuehmer et al. Fig. 5a and 5b with Chen et al.'s comparison;
Mathieu et al. Fig. 2): each run.sh takes the slice of study_v1, or the study, that the paper's
finding needs, and runs the same commands at smoke scale (tiny data, a few steps) to a report
holding that slice's runs and the figures its README reads."""

import collections
import dataclasses
import shlex

import pandas as pd
import pytest

from dlbench.study import load_study, only
from tests.commands import REPO, run_reproduction
from tests.test_named_studies import STUDY_V1_BETAS, grid

ROOT = REPO / "reports" / "reproductions"


def slice_patterns(name):
    """The --only patterns of a reproduction's run.sh, from its ONLY=(...) line."""
    (line,) = [line for line in (ROOT / name / "run.sh").read_text().splitlines() if line.startswith("ONLY=(")]
    words = shlex.split(line.removeprefix("ONLY=(").removesuffix(")"))
    assert words[::2] == ["--only"] * (len(words) // 2)
    return words[1::2]


@pytest.fixture(scope="module")
def study_v1():
    return load_study("study_v1")


def test_fig_5a_is_study_v1s_beta_vae_and_isa_vae_at_beta_1_over_every_seed(study_v1):
    runs = only(study_v1.runs, slice_patterns("stuehmer_isa_vae_beta1"))
    strengths, seeds = grid(dataclasses.replace(study_v1, runs=runs))
    assert strengths == {"beta_vae": [1.0], "isa_vae": [1.0]}
    assert seeds == {"beta_vae": list(range(32)), "isa_vae": list(range(32))}


def test_fig_5b_is_study_v1s_three_beta_methods_over_their_whole_grid(study_v1):
    runs = only(study_v1.runs, slice_patterns("stuehmer_tradeoff"))
    counts = collections.Counter(spec.name.split("/")[0] for spec in runs)
    assert counts == {"beta_vae": 256, "beta_tcvae": 256, "isa_vae": 256}
    every = runs[::17]  # a spread of them resolved: the strengths are the grid's
    strengths, _ = grid(dataclasses.replace(study_v1, runs=every))
    assert all(set(values) <= set(STUDY_V1_BETAS) for values in strengths.values()) and len(strengths) == 3


def test_the_cpu_slices_are_the_same_names_in_study_v1_cpu():
    cpu = load_study("study_v1_cpu")
    for name, count in (("stuehmer_isa_vae_beta1", 4), ("stuehmer_tradeoff", 48)):
        names = [spec.name for spec in only(cpu.runs, slice_patterns(name))]
        assert len(names) == count and all(n.split("/")[0] in ("beta_vae", "beta_tcvae", "isa_vae") for n in names)


def test_the_priors_study_follows_mathieu_et_als_two_protocols():
    from tests.test_named_studies import resolved

    study = load_study("repro_mathieu_priors")
    assert len(study.runs) == 18 * 10 and study.metrics == ["factor_vae", "recon_ll", "mig"]
    settings = collections.Counter()
    for spec in study.runs[::10]:  # seed 0 of each setting
        run = resolved(spec)
        prior = run.model["prior"]
        steps, batch = run.train["steps"], run.train["batch_size"]
        assert run.train["lr"] == 1e-4 and run.dataset["name"] == "dsprites" and run.model["architecture"] == "conv"
        if prior["name"] == "student_t":  # 40 epochs of batch 256 at beta = 1
            assert (steps, batch, run.method.hyperparameters()["beta"]) == (115200, 256, 1.0)
            settings[("student_t", prior["nu"])] += 1
        else:  # 20 epochs of batch 64
            assert (steps, batch) == (230400, 64)
            settings[(prior["name"], prior.get("learned"), run.method.hyperparameters()["beta"])] += 1
    assert len(settings) == 18 and set(settings.values()) == {1}
    assert {key[1] for key in settings if key[0] == "anisotropic_gaussian"} == {False, True}
    cpu = load_study("repro_mathieu_priors_cpu")
    assert {spec.name.rsplit("/", 1)[0].split(",steps=")[0] for spec in cpu.runs} <= {
        spec.name.rsplit("/", 1)[0].split(",steps=")[0] for spec in study.runs}


@pytest.mark.slow  # each: two commands, each starting Python and torch, and a whole report: about 15 s
@pytest.mark.parametrize("name, runs, figure", [
    ("stuehmer_isa_vae_beta1", {"beta_vae/beta=1.0/seed=0", "isa_vae/prior=lp_nested_isa,beta=1.0/seed=0"},
     "figures/distribution_dsprites_mig.discrete_mig.png"),
    ("stuehmer_tradeoff", {"beta_vae/beta=4.0/seed=0", "beta_tcvae/beta=4.0/seed=0",
                           "isa_vae/prior=lp_nested_isa,beta=4.0/seed=0"},
     "figures/tradeoff_dsprites_mig.discrete_mig.png"),
    ("mathieu_priors", None, "figures/tradeoff_dsprites_mig.discrete_mig.png"),
])
def test_the_smoke_run_reports_the_slice(name, runs, figure, tiny_data_root, tmp_path):
    run_reproduction(ROOT / name, tmp_path, data_root=tiny_data_root)
    results = pd.read_csv(tmp_path / "report" / "results.csv")
    assert set(results["status"]) == {"done"} and (tmp_path / "report" / figure).is_file()
    if runs is not None:
        assert set(results["run_dir"]) == runs
    else:  # one run of each prior: isotropic, anisotropic fixed and learned, Student-t
        assert sorted(results["model.prior.name"].fillna("")) == [
            "anisotropic_gaussian", "anisotropic_gaussian", "isotropic_gaussian", "student_t"]
    assert not (REPO / "runs" / "study_v1_cpu_smoke").exists()
