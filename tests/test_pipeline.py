"""The four stages through their command-line front ends, on a tiny config."""

import csv
import json

import numpy as np
import pytest
import torch

from dlbench.cli import aggregate as aggregate_cli
from dlbench.cli import evaluate as evaluate_cli
from dlbench.cli import postprocess as postprocess_cli
from dlbench.cli import study as study_cli
from dlbench.cli import train as train_cli

from tests.conftest import TINY_PARAMS, tiny_params

FAST_METRICS = ["--metric_param", "factor_vae.num_train=200", "--metric_param", "factor_vae.num_eval=100",
                "--metric_param", "factor_vae.num_variance_estimate=500", "--metric_param", "mig.num_train=500",
                "--metric_param", "recon_ll.num_points=300"]
MIG, FVAE, RECON = "mig[num_train=500]", "factor_vae[num_train=200,num_eval=100,num_variance_estimate=500]", \
    "recon_ll[num_points=300]"


def train_args(run_dir, *params):
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for p in tiny_params(*params):
        args += ["--gin_param", p]
    return args


def test_cli_pipeline_writes_every_file_of_the_run_directory(tiny_dsprites, tmp_path):
    runs = tmp_path / "runs"
    for beta in ("1.0", "4.0"):
        for seed in ("0", "1"):
            run_dir = runs / f"b{beta}_s{seed}"
            args = train_args(run_dir, f"beta_vae.beta = {beta}", f"train.seed = {seed}")
            assert train_cli.main(args) == 0
            assert evaluate_cli.main([str(run_dir), "--device", "cpu"] + FAST_METRICS) == 0

    run_dir = runs / "b1.0_s0"
    for path in ["run.json", "model/config.gin", "model/checkpoint.pt", "model/train_log.csv",
                 "model/results.json", "model/samples/reconstructions.png", "model/samples/traversals.png",
                 "model/samples/prior_samples.png",
                 "postprocessed/mean/representation.pt", "postprocessed/mean/results.json",
                 # results of non-default protocols are stored under their protocol's name
                 f"metrics/mean/{MIG}/results.json", f"metrics/mean/{FVAE}/results.json",
                 f"metrics/mean/{RECON}/results.json"]:
        assert (run_dir / path).is_file(), path
    assert torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]

    mig = json.loads((run_dir / f"metrics/mean/{MIG}/results.json").read_text())
    assert 0.0 <= mig["discrete_mig"] <= 1.0 and mig["num_train"] == 500
    fvae = json.loads((run_dir / f"metrics/mean/{FVAE}/results.json").read_text())
    assert {"train_accuracy", "eval_accuracy", "num_active_dims", "elapsed_seconds", "dlbench_version"} <= set(fvae)
    assert fvae["torch_version"] == torch.__version__ and fvae["numpy_version"] == np.__version__
    import scipy
    import sklearn

    assert (fvae["scipy_version"], fvae["sklearn_version"]) == (scipy.__version__, sklearn.__version__)
    recon = json.loads((run_dir / f"metrics/mean/{RECON}/results.json").read_text())
    assert recon["likelihood"] == "bernoulli" and recon["z_sampled"] is True and recon["num_points"] == 300
    assert recon["recon_ll"] < 0 and recon["recon_ll_stderr"] > 0

    out = tmp_path / "report"
    assert aggregate_cli.main([str(runs), "--out", str(out)]) == 0
    results = list(csv.DictReader(open(out / "results.csv")))
    assert len(results) == 4 and {r["status"] for r in results} == {"done"}
    board = list(csv.DictReader(open(out / "leaderboard.csv")))
    assert len(board) == 2 and sorted(float(r["hp.beta"]) for r in board) == [1.0, 4.0]
    for row in board:
        assert row["num_runs"] == "2"
        # the fast settings are not the default protocols, so their columns say so
        for metric in ("mig[num_train=500].discrete_mig",
                       "factor_vae[num_train=200,num_eval=100,num_variance_estimate=500].eval_accuracy",
                       "recon_ll[num_points=300].recon_ll"):
            values = [float(r[metric]) for r in results if r["hp.beta"] == row["hp.beta"]]
            assert float(row[f"{metric}.mean"]) == pytest.approx(np.mean(values))
            assert float(row[f"{metric}.std"]) == pytest.approx(np.std(values, ddof=1))
            assert float(row[f"{metric}.sem"]) == pytest.approx(np.std(values, ddof=1) / np.sqrt(2))


def test_the_mean_representation_is_the_encoder_mean(tiny_dsprites, tmp_path):
    from dlbench.train import load_trained_model

    run_dir = tmp_path / "r"
    assert train_cli.main(train_args(run_dir)) == 0
    assert postprocess_cli.main([str(run_dir)]) == 0
    assert postprocess_cli.main([str(run_dir), "--mode", "sampled"]) == 0
    x = torch.rand(6, 1, 64, 64)
    with torch.no_grad():
        mean, logvar = load_trained_model(run_dir).encode(x)
    scripted = torch.jit.load(str(run_dir / "postprocessed/mean/representation.pt"))
    torch.testing.assert_close(scripted(x), mean)
    sampled = torch.jit.load(str(run_dir / "postprocessed/sampled/representation.pt"))
    draws = torch.stack([sampled(x) for _ in range(400)])
    torch.testing.assert_close(draws.mean(0), mean, atol=0.25 * float(logvar.exp().sqrt().max()), rtol=0)
    assert json.loads((run_dir / "postprocessed/mean/results.json").read_text())["representation_dim"] == 4


def test_evaluate_skips_complete_results(tiny_dsprites, tmp_path):
    run_dir = tmp_path / "r"
    assert train_cli.main(train_args(run_dir)) == 0
    fast_mig = ["--metrics", "mig", "--device", "cpu", "--metric_param", "mig.num_train=500"]
    assert evaluate_cli.main([str(run_dir), *fast_mig]) == 0
    path = run_dir / f"metrics/mean/{MIG}/results.json"
    stamp = path.stat().st_mtime_ns
    assert evaluate_cli.main([str(run_dir), *fast_mig]) == 0
    assert path.stat().st_mtime_ns == stamp


def test_study_runs_every_combination_and_aggregates(tiny_dsprites, tmp_path):
    study = tmp_path / "tiny_study.gin"
    study.write_text("\n".join([
        "study.base_gin = ['beta_vae.gin']",
        "study.fixed = {" + ", ".join(f"'{p.split('=')[0].strip()}': {p.split('=', 1)[1].strip()}"
                                      for p in TINY_PARAMS if not p.startswith("train.method")) + "}",
        "study.sweep = {'beta_vae.beta': [1.0, 8.0], 'train.seed': [0, 1]}",
        "study.metrics = ['mig', 'recon_ll']",
        "study.metric_params = {'mig': {'num_train': 300}, 'recon_ll': {'num_points': 100}}",
    ]))
    runs = tmp_path / "runs"
    one_by_one = ["--device", "cpu", "--no_progress", "--workers", "1"]  # in this process (pools: test_study)
    assert study_cli.main([str(study), "--runs_root", str(runs), *one_by_one, "--shard", "0/2"]) == 0
    assert sorted(str(p.parent.relative_to(runs)) for p in runs.rglob("run.json")) == [
        "beta_vae/beta=1.0/seed=0", "beta_vae/beta=8.0/seed=0"]
    assert study_cli.main([str(study), "--runs_root", str(runs), *one_by_one]) == 0
    assert len(list(runs.glob("beta_vae/*/*/metrics/mean/recon_ll[[]num_points=100]/results.json"))) == 4
    record = json.loads((runs / "beta_vae" / "beta=8.0" / "seed=1" / "run.json").read_text())
    assert record["hyperparameters"] == {"beta": 8.0} and record["seed"] == 1 and record["train"]["steps"] == 20
    out = tmp_path / "report"
    assert aggregate_cli.main([str(runs), "--out", str(out)]) == 0
    assert len(list(csv.DictReader(open(out / "leaderboard.csv")))) == 2


def test_study_dry_run_lists_runs_and_writes_nothing(tmp_path, capsys):
    assert study_cli.main(["quickstart", "--runs_root", str(tmp_path / "runs"), "--dry_run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all("beta_vae.gin" in line for line in lines)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("options, needle", [
    (["--stack", "abc"], "bad --stack 'abc'"), (["--stack", "0"], "bad --stack '0'"),
    (["--device", "cud"], "unknown device 'cud'")])
@pytest.mark.parametrize("mode", ["--dry_run", "--status"])
def test_a_dry_run_refuses_the_options_the_run_would_refuse(mode, options, needle, tmp_path, capsys):
    assert study_cli.main(["quickstart", "--runs_root", str(tmp_path / "runs"), mode, *options]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_dry_run_for_a_gpu_cluster_passes_on_a_machine_without_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert study_cli.main(["quickstart", "--runs_root", str(tmp_path / "runs"), "--dry_run", "--device", "cuda",
                           "--stack", "auto"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
