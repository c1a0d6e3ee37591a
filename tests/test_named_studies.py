"""The named studies of gin/studies (study_v1, study_v1_cpu, dlib_unsupervised_v1) hold what their
papers' protocols say; the local executor's defaults and study-wide progress; dlb_bench study."""

import collections
import re
from pathlib import Path

import pytest

from dlbench.config import parse_gin, resolve_run_spec
from dlbench.study import load_study
from tests.commands import assert_one_line_error, run_command, run_in_process
from tests.test_study import write_study

STUDY_V1_BETAS = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]  # ISA-VAE Table 1 without 3.5
STUDY_V1_GAMMAS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]  # ISA-VAE Table 1 without 7 and 9
STRENGTH = {"beta_vae": "beta", "beta_tcvae": "beta", "factor_vae": "gamma", "isa_vae": "beta", "ab_vae": "beta"}


def resolved(spec):
    import gin

    try:
        parse_gin(spec.gin_files, spec.gin_params)
        return resolve_run_spec()
    finally:
        gin.clear_config()


def grid(study):
    """{method: sorted strengths}, {method: sorted seeds} of a study's resolved runs."""
    strengths, seeds = collections.defaultdict(set), collections.defaultdict(set)
    for spec in study.runs:
        run = resolved(spec)
        method = run.method.name
        strengths[method].add(run.method.hyperparameters()[STRENGTH[method]])
        seeds[method].add(run.train["seed"])
    return {m: sorted(v) for m, v in strengths.items()}, {m: sorted(v) for m, v in seeds.items()}


@pytest.fixture(scope="module")
def study_v1():
    return load_study("study_v1")


def test_study_v1_is_1280_runs_of_five_methods_eight_strengths_and_32_seeds(study_v1):
    assert len(study_v1.runs) == 1280 and len({spec.name for spec in study_v1.runs}) == 1280
    counts = collections.Counter(spec.name.split("/")[0] for spec in study_v1.runs)
    assert counts == {method: 256 for method in STRENGTH}
    every = study_v1.runs[::37]  # resolving all 1280 takes a minute; a spread of them shows the grid
    strengths = collections.defaultdict(set)
    for spec in every:
        run = resolved(spec)
        strengths[run.method.name].add(run.method.hyperparameters()[STRENGTH[run.method.name]])
    for method, values in strengths.items():
        assert values <= set(STUDY_V1_GAMMAS if method == "factor_vae" else STUDY_V1_BETAS), method
    prior = {"isa_vae": "prior=lp_nested_isa,", "ab_vae": "prior=anisotropic_gaussian,"}
    expected = {f"{method}/{prior.get(method, '')}{STRENGTH[method]}={value}/seed={seed}"
                for method in STRENGTH for value in (STUDY_V1_GAMMAS if method == "factor_vae" else STUDY_V1_BETAS)
                for seed in range(32)}
    assert {spec.name for spec in study_v1.runs} == expected


def test_study_v1_trains_with_the_isa_vae_papers_protocol(study_v1):
    first_of = {}
    for spec in study_v1.runs:
        first_of.setdefault(spec.name.split("/")[0], spec)
    for method, spec in first_of.items():
        run = resolved(spec)
        assert run.dataset["name"] == "dsprites"
        assert {k: run.train[k] for k in ("steps", "batch_size", "lr", "adam_betas")} == \
            {"steps": 7200, "batch_size": 2048, "lr": 1e-3, "adam_betas": [0.9, 0.999]}  # 20 epochs of 737,280
        assert (run.model["architecture"], run.model["latent_dim"], run.model["likelihood"]) == ("mlp", 20, "bernoulli")
        prior = run.model["prior"]
        expected = {"isa_vae": "lp_nested_isa", "ab_vae": "anisotropic_gaussian"}.get(method, "isotropic_gaussian")
        assert (prior if isinstance(prior, str) else prior["name"]) == expected, method
    assert study_v1.metrics == ["mig", "mig_chen", "factor_vae", "recon_ll"] and study_v1.metric_params == {}


def test_study_v1_cpu_has_study_v1s_methods_and_grids_at_a_cpu_scale(study_v1):
    cpu = load_study("study_v1_cpu")
    strengths, seeds = grid(cpu)
    assert strengths == {m: (STUDY_V1_GAMMAS if m == "factor_vae" else STUDY_V1_BETAS) for m in STRENGTH}
    assert all(s == [0, 1] for s in seeds.values()) and len(cpu.runs) == 80
    # its names are study_v1's: a run of the CPU study is named like its full-scale counterpart
    assert {spec.name for spec in cpu.runs} <= {spec.name for spec in study_v1.runs}
    run = resolved(cpu.runs[0])
    assert run.train["steps"] < 7200 and run.model["architecture"] == "mlp" and run.model["latent_dim"] == 20
    assert "mig_chen" not in cpu.metrics and set(cpu.metrics) < set(study_v1.metrics)


def test_dlib_unsupervised_v1_is_disentanglement_libs_unsupervised_study():
    study = load_study("dlib_unsupervised_v1")
    assert len(study.runs) == 1800  # 6 models x 6 values x 50 seeds
    grids = collections.defaultdict(set)
    for spec in study.runs[::50]:  # seed is the innermost axis: one run of each setting
        run = resolved(spec)
        hp = run.method.hyperparameters()
        model = run.method.name + (f"_{hp['dip_type']}" if run.method.name == "dip_vae" else "")
        key = {"beta_vae": "beta", "beta_tcvae": "beta", "factor_vae": "gamma", "annealed_vae": "c_max",
               "dip_vae_i": "lambda_od", "dip_vae_ii": "lambda_od"}[model]
        grids[model].add(hp[key])
        if model == "dip_vae_i":
            assert hp["lambda_d"] == 10 * hp["lambda_od"]
        if model == "dip_vae_ii":
            assert hp["lambda_d"] == hp["lambda_od"]
        if model == "annealed_vae":
            assert (hp["gamma"], hp["iteration_threshold"]) == (1000.0, 100000)
        assert (run.train["steps"], run.train["batch_size"], run.train["lr"]) == (300000, 64, 1e-4)
        assert (run.model["architecture"], run.model["latent_dim"]) == ("conv", 10)
    assert {m: sorted(v) for m, v in grids.items()} == {
        "beta_vae": [1, 2, 4, 6, 8, 16], "annealed_vae": [5, 10, 25, 50, 75, 100],
        "factor_vae": [10, 20, 30, 40, 50, 100], "dip_vae_i": [1, 2, 5, 10, 20, 50],
        "dip_vae_ii": [1, 2, 5, 10, 20, 50], "beta_tcvae": [1, 2, 4, 6, 8, 10]}
    assert {resolved(spec).train["seed"] for spec in study.runs[:50]} == set(range(50))
    assert set(study.metrics) == {"beta_vae", "factor_vae", "mig", "dci", "modularity_explicitness", "sap",
                                  "unsupervised"}


def test_every_named_study_dry_runs(tiny_dsprites, tmp_path):
    for name in ("quickstart", "study_v1_cpu"):  # (the GPU studies are loaded, and so checked, above)
        result = run_in_process("dlb_study", name, "--runs_root", tmp_path / name, "--dry_run",
                                data_root=tiny_dsprites)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("dlb_train") == len(load_study(name).runs)
        assert not (tmp_path / name).exists()


# --- the local executor ----------------------------------------------------------------------


def test_workers_default_to_one_per_gpu_or_one_per_core(monkeypatch):
    import torch

    from dlbench.study.local import default_workers, threads_per_worker

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)  # what torch takes on 8 cores, OMP_NUM_THREADS unset
    assert default_workers("cpu") == 8 and threads_per_worker(8) == 1 and threads_per_worker(3) == 2
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert default_workers("cuda") == 3


def test_each_worker_gets_a_gpu_of_its_own_round_robin():
    from dlbench.errors import UserError
    from dlbench.study.local import worker_gpus

    assert worker_gpus(3, 4) == ["0", "1", "2"]
    assert worker_gpus(5, 2) == ["0", "1", "0", "1", "0"]  # --workers beyond the GPUs share them
    assert worker_gpus(2, 8, visible="6, 3") == ["6", "3"]  # the GPUs CUDA_VISIBLE_DEVICES allows
    with pytest.raises(UserError, match="no GPU is visible"):
        worker_gpus(1, 0, visible="")


def test_the_study_bar_counts_done_running_failed_and_left(tiny_dsprites, tmp_path, capsys):
    from dlbench.study.local import run_local
    from dlbench.study.unit import DONE

    study = load_study(str(write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")))
    statuses = run_local(study, study.runs, tmp_path / "runs", "cpu", workers=1, progress=True)
    assert list(statuses.values()) == [DONE, DONE]
    err = capsys.readouterr().err
    assert "done=0, running=1, failed=0, left=1" in err  # the first run under way
    assert "done=1, running=1, failed=0, left=0" in err
    assert re.search(r"s: 100%\S* 2/2 .*done=2, running=0, failed=0, left=0", err)


# --- dlb_bench study ---------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_study_times_each_executor_on_the_same_slice(tiny_dsprites, tmp_path, monkeypatch):
    import dlbench.study.benchmark as benchmark

    study_file = write_study(tmp_path / "slice.gin", "{'beta_vae.beta': [1.0, 2.0, 4.0, 8.0]}")
    monkeypatch.setattr(benchmark, "SLICE_STUDY", str(study_file))
    monkeypatch.setattr(benchmark, "SLICE_EVERY", 2)
    timed = []
    real = benchmark.time_executor

    def spy(study, runs, runs_root, device, workers):
        timed.append(([spec.name for spec in runs], workers))
        return real(study, runs, runs_root, device, workers)

    monkeypatch.setattr(benchmark, "time_executor", spy)
    figures = benchmark.bench_study("cpu", workers=[1, 2], project=False, log=lambda *_: None)
    assert timed == [(["beta_vae/beta=1.0/seed=0", "beta_vae/beta=4.0/seed=0"], 1),
                     (["beta_vae/beta=1.0/seed=0", "beta_vae/beta=4.0/seed=0"], 2)]
    rows = figures["executors"]
    for row in rows.values():
        assert row["runs_per_hour"] == pytest.approx(3600 * 2 / row["seconds"])
    ratio = rows["workers=2"]["runs_per_hour"] / rows["workers=1"]["runs_per_hour"]
    assert figures["speedup_over_sequential"]["workers=2"] == pytest.approx(ratio)
    assert not list(tmp_path.glob("dlb_bench_study.*"))  # its runs are removed


@pytest.mark.parametrize("stop, signame", [("Interrupted", "SIGTERM"), ("KeyboardInterrupt", "SIGINT")])
def test_a_stopped_bench_study_does_not_point_to_the_runs_it_removed(tmp_path, monkeypatch, stop, signame):
    # the run's line ("checkpoint written; `dlb_train --run_dir <scratch>/...` resumes") named a
    # folder the benchmark's scratch took with it
    import signal

    from dlbench.errors import Interrupted
    from dlbench.study import benchmark

    def stopped(study, runs, runs_root, device, workers):
        (runs_root / "run").mkdir(parents=True)
        if stop == "Interrupted":
            raise Interrupted(f"{runs_root}/run: interrupted by SIGTERM at step 3; `dlb_train --run_dir "
                              f"{runs_root}/run` resumes from step 3", signal.SIGTERM)
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "time_executor", stopped)
    with pytest.raises(Interrupted) as caught:
        benchmark.bench_study("cpu", workers=[1], runs=2, scratch=tmp_path, project=False, log=lambda *_: None)
    assert str(caught.value) == (f"the benchmark was stopped by {signame}; its runs, in a scratch folder, are "
                                 f"removed, and the same command starts it over")
    assert caught.value.signum == getattr(signal, signame) and list(tmp_path.iterdir()) == []


def test_projected_hours_sum_each_methods_images_over_its_rate():
    from dlbench.study.benchmark import projected_hours, stack_figures

    train = {"beta_vae": {"steps": 100, "batch_size": 64}, "beta_tcvae": {"steps": 50, "batch_size": 32}}
    # 10 runs x 6400 images at 1600 img/s = 40 s; 4 runs x 1600 images at 800 img/s = 8 s
    assert projected_hours({"beta_vae": 10, "beta_tcvae": 4}, train, {"beta_vae": 1600.0, "beta_tcvae": 800.0}) \
        == pytest.approx(48 / 3600)
    row = stack_figures(alone=100.0, stacked=400.0, images_per_run=6400, peak_memory_gib=1.5)
    assert row == {"alone_images_per_second": 100.0, "stacked_images_per_second": 400.0, "ratio": 4.0,
                   "alone_runs_per_hour": 3600 * 100 / 6400, "stacked_runs_per_hour": 3600 * 400 / 6400,
                   "peak_memory_gib": 1.5}


def test_bench_stacking_measures_each_k_and_projects_the_study(tiny_dsprites, tmp_path, monkeypatch):
    import dlbench.data
    from dlbench.study.benchmark import bench_stacking

    loads = loads_counted(monkeypatch)
    study_file = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 2.0], 'train.seed': [0, 1]}")
    figures = bench_stacking("cpu", stacks=[1, 2], steps=2, study_names=[str(study_file)], log=lambda *_: None,
                             other_precisions=("bfloat16",))
    # every measurement on one load of the data (and so one device copy): each had loaded and copied it again
    assert loads == ["dsprites"] and not dlbench.data.keep_loaded(False)  # and the setting is restored
    (study,) = figures["studies"].values()
    assert set(study["stacks"]) == {"K=1", "K=2"} and study["protocol"]["batch_size"] == 16
    assert study["protocol"]["method"] == "beta_vae"  # the method the K are measured on, as the table says
    alone = study["stacks"]["K=1"]["alone_images_per_second"]
    assert study["stacks"]["K=2"]["alone_images_per_second"] == alone  # one run at a time: one rate for every K
    effective = {1: alone, 2: study["stacks"]["K=2"]["stacked_images_per_second"]}
    assert study["best_k"] == max(effective, key=effective.get)
    assert study["method_images_per_second"] == {"beta_vae": effective[study["best_k"]]}
    # 4 runs of 20 steps at batch 16
    assert study["projected_training_hours"] == pytest.approx(4 * 20 * 16 / effective[study["best_k"]] / 3600)
    assert study["training_pflop"] == pytest.approx(4 * 20 * study["step_gflop"]["beta_vae"] / 1e6)
    assert set(study["compute_floor_hours"]) == set(figures["matmul_peak_tflops"]) == {"float32", "bfloat16"}
    by_precision = study["projected_training_hours_by_precision"]
    assert by_precision["float32"] == study["projected_training_hours"] and by_precision["bfloat16"] > 0


@pytest.mark.parametrize("args, needle", [
    (["--workers", "0"], "bad --workers '0'"),
    (["--workers", "two"], "bad --workers 'two'"),
    (["--runs", "0"], "--runs must be at least 1"),
    (["--stack", "1,x"], "bad --stack '1,x'"),
    (["--scratch", "/nonexistent/x"], "--scratch '/nonexistent/x' is not an existing folder"),
    (["--scratch", ""], "--scratch: an empty path"),  # had written its runs into the current folder
])
def test_bench_study_mistakes_are_one_line(args, needle):
    assert_one_line_error(run_command("dlb_bench", "study", *args), needle)


def test_bench_study_with_more_cpu_workers_than_cores_is_one_line(tmp_path):
    # it had begun by writing a 3 GB synthetic dSprites
    import os

    cores = os.cpu_count()
    result = run_command("dlb_bench", "study", "--device", "cpu", "--workers", f"1,{cores + 1}", "--scratch", tmp_path)
    assert_one_line_error(result, f"dlb_bench study: --workers {cores + 1} is more workers than this machine's {cores}")
    assert list(tmp_path.iterdir()) == []


def test_the_gpu_check_says_what_it_needs_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.commands import REPO

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "gin_config-0.5.0-py3-none-any.whl").write_text("not a wheel")
    for args, needle in [([], "usage: dlb_gpu_check WHEELS OUT"), ([str(tmp_path), str(tmp_path / "out")],
                                                                    "no gin_config-*.whl in"),
                         ([str(wheels), str(tmp_path / "out")], "torch sees no CUDA GPU")]:
        result = subprocess.run([sys.executable, str(REPO / "bin" / "dlb_gpu_check"), *args], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    help_ = subprocess.run([sys.executable, str(REPO / "bin" / "dlb_gpu_check"), "--help"], capture_output=True,
                           text=True, timeout=60)
    assert help_.returncode == 0 and help_.stdout.startswith("usage: dlb_gpu_check WHEELS OUT")


@pytest.fixture
def gpu_check_on_a_pretend_gpu(tmp_path, monkeypatch):
    """(module, wheels folder): bin/dlb_gpu_check believing it has a GPU, its scratch under tmp_path/tmp."""
    import tempfile

    check = gpu_check_module()
    monkeypatch.setattr(check, "_device", lambda: {"torch": "x", "gpu": "a pretend GPU"})
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "gin_config-0.5.0-py3-none-any.whl").write_text("not a wheel")
    return check, wheels


def test_the_gpu_check_refuses_an_out_it_cannot_write(gpu_check_on_a_pretend_gpu, tmp_path, capsys):
    check, wheels = gpu_check_on_a_pretend_gpu
    (tmp_path / "a_file").write_text("")
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "out"):
        assert check.main([str(wheels), str(out)]) == 2
        assert "cannot write the results into OUT" in capsys.readouterr().err
    assert not list((tmp_path / "tmp").iterdir())


def test_the_gpu_check_stops_on_a_bad_wheel_and_removes_its_scratch(gpu_check_on_a_pretend_gpu, tmp_path, capsys):
    import json

    check, wheels = gpu_check_on_a_pretend_gpu
    assert check.main([str(wheels), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dlb_gpu_check: installing the wheels of") and len(err.splitlines()) == 1
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert not report["passed"] and len(report["setup"]) == 1 and not report["steps"]  # no data made after it
    assert not list((tmp_path / "tmp").iterdir())


def test_an_interrupted_gpu_check_keeps_its_report_and_removes_its_scratch(gpu_check_on_a_pretend_gpu, tmp_path,
                                                                          monkeypatch, capsys):
    import json

    check, wheels = gpu_check_on_a_pretend_gpu

    def interrupted(wheels, out, scratch, report, log):
        (scratch / "data").mkdir()
        report["steps"]["cuda_tests"] = {"returncode": 0, "seconds": 1.0, "tail": ""}
        raise KeyboardInterrupt

    monkeypatch.setattr(check, "_check", interrupted)
    assert check.main([str(wheels), str(tmp_path / "out")]) == 130
    assert "interrupted" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["interrupted"] and not report["passed"] and list(report["steps"]) == ["cuda_tests"]
    assert not list((tmp_path / "tmp").iterdir())


def test_a_gpu_check_step_out_of_time_is_killed_with_what_it_started(tmp_path):
    # a test's dlb_bench or a pool's workers, left running, would hold the GPU through later steps
    import os
    import sys
    import time

    check = gpu_check_module()
    pid_file = tmp_path / "grandchild"
    starts_a_sleeper = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', "
                        "'import time; time.sleep(120)']); open(sys.argv[1], 'w').write(str(child.pid)); "
                        "print('started', flush=True); time.sleep(120)")
    check.DEADLINE = time.monotonic() + 60
    with open(tmp_path / "log", "w") as log:
        step = check._step("sleeper", 3, [sys.executable, "-c", starts_a_sleeper, str(pid_file)], os.environ, log)
    assert step["returncode"] == "timeout" and "started" in step["tail"]
    stat = Path(f"/proc/{pid_file.read_text()}/stat")
    time.sleep(0.5)
    # gone, or a zombie (killed, and not yet reaped by whoever adopted it)
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_gpu_check_step_with_too_little_time_left_is_not_started(tmp_path):
    # started with a second or two, it could not import torch: its "timeout" said nothing true
    import os
    import sys
    import time

    check = gpu_check_module()
    check.DEADLINE = time.monotonic() + check.MINIMUM_SECONDS - 1
    with open(tmp_path / "log", "w") as log:
        step = check._step("late", 60, [sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"], os.environ,
                           log)
    assert step["returncode"] == check.NOT_RUN and not (tmp_path / "ran").exists()
    assert "late: not run" in (tmp_path / "log").read_text()


def a_wheel_of_gin(folder):
    """A wheel pip installs as gin-config's (a module of one line): the real one may not be at hand."""
    import zipfile

    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(folder / "gin_config-0.5.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("gin/__init__.py", "")
        info = "gin_config-0.5.0.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: gin-config\nVersion: 0.5.0\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: a test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return folder


# each step and the data maker note when they start (and whether the data is there) and end, in a
# file of their own (no braces: the check formats its steps' commands)
NOTE_TIMES = ("import os, sys, time; data = os.environ['DLBENCH_DATA']; where = os.path.join(os.path.dirname(data), "
              "'note_' + sys.argv[1]); open(where, 'w').write(str(time.time()) + ' ' + str(os.path.isdir(data)) + ' '); "
              "time.sleep(float(sys.argv[2])); sys.argv[1] == 'data' and os.makedirs(data); "
              "open(where, 'a').write(str(time.time())); sys.exit(int(sys.argv[3]))")


@pytest.mark.parametrize("data_exit", [0, 1], ids=["data made", "data failed"])
def test_the_gpu_check_makes_the_data_while_the_steps_that_need_none_run(gpu_check_on_a_pretend_gpu, tmp_path,
                                                                         monkeypatch, capsys, data_exit):
    # writing dSprites' 3 GB took minutes of the check's eight on a slow disk, before any step ran
    import json

    check, _ = gpu_check_on_a_pretend_gpu
    scratch = tmp_path / "tmp"
    monkeypatch.setattr(check, "DATA_COMMAND", ["-c", NOTE_TIMES, "data", "2", str(data_exit)])
    monkeypatch.setattr(check, "STEPS", [(name, 30, ["-c", NOTE_TIMES, name, "0", "0"], None)
                                         for name in ("early", "later", "late")])
    monkeypatch.setattr(check, "WITHOUT_DSPRITES", ("early", "later"))
    notes = {}
    real_step = check._step

    def step_keeping_notes(name, *args, **kwargs):
        done = real_step(name, *args, **kwargs)
        folder = next(scratch.iterdir())
        notes.update({path.name.removeprefix("note_"): path.read_text().split() for path in folder.glob("note_*")})
        return done

    monkeypatch.setattr(check, "_step", step_keeping_notes)
    status = check.main([str(a_wheel_of_gin(tmp_path / "wheels")), str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert [s["returncode"] for s in report["setup"]] == [0, data_exit]
    assert notes["early"][1] == notes["later"][1] == "False"  # they ran before the data was there
    if data_exit == 0:
        assert status == 0 and list(report["steps"]) == ["early", "later", "late"]
        assert notes["late"][1] == "True"  # it waited for the data
    else:
        assert status == 2 and list(report["steps"]) == ["early", "later"] and "late" not in notes
        assert "making the synthetic dSprites failed" in capsys.readouterr().err
    assert not list(scratch.iterdir())


def gpu_check_module():
    """bin/dlb_gpu_check as a module (the script has no .py suffix)."""
    import importlib.machinery
    import importlib.util

    from tests.commands import REPO

    loader = importlib.machinery.SourceFileLoader("dlb_gpu_check", str(REPO / "bin" / "dlb_gpu_check"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("dlb_gpu_check", loader))
    loader.exec_module(module)
    return module


def test_every_step_of_the_gpu_check_is_a_command_that_parses_and_it_fits_eight_minutes():
    # the check runs once, on a machine lent for minutes: a misspelt option there costs the session
    from dlbench.cli.bench import parser
    from tests.commands import REPO

    check = gpu_check_module()
    assert check.TOTAL_SECONDS <= 8 * 60
    for name, seconds, command, _ in check.STEPS:
        assert 0 < seconds <= check.TOTAL_SECONDS, name
        if command[0] == "bin/dlb_bench":
            args = parser().parse_args(command[1:])
            assert args.device == "cuda" and args.json, name
        else:
            assert command[:2] == ["-m", "pytest"], name
            for path in (part for part in command if part.startswith("tests/")):
                assert (REPO / path).is_file(), (name, path)


def test_commands_a_test_starts_keep_the_path_the_gpu_check_gave(monkeypatch):
    # on the GPU machine gin-config is importable only through the PYTHONPATH dlb_gpu_check sets:
    # a test's dlb_bench that dropped it failed to import gin
    import os

    from tests.commands import REPO, child_environment

    monkeypatch.setenv("PYTHONPATH", "/where/gin/is")
    assert child_environment(OMP_NUM_THREADS="1")["PYTHONPATH"].split(os.pathsep) == [str(REPO), "/where/gin/is"]
    monkeypatch.delenv("PYTHONPATH")
    assert child_environment()["PYTHONPATH"] == str(REPO)


def test_the_gpu_check_reads_the_issues_targets_from_the_figures_it_wrote(tmp_path):
    import json

    figures = {
        "bench_stacking_dlib": {"studies": {"dlib_unsupervised_v1": {"stacks": {"K=32": {"ratio": 12.5}}}}},
        "bench_stacking_study_v1": {"studies": {"study_v1": {
            "projected_training_hours": 5.25, "compute_floor_hours": {"float32": 3.0, "bfloat16": 0.75},
            "projected_training_hours_by_precision": {"float32": 5.25, "bfloat16": 2.25},
            "projected_over_floor": {"float32": 1.75, "bfloat16": 3.0},
            "method_tflops": {"beta_vae": 120.0, "beta_tcvae": 30.0}}}},
        "bench_metrics": {"conv_seconds": {"mig": 1.5, "factor_vae": 6.0, "recon_ll": 2.0}},
        "bench_layers": {"stacks": {"K=32": {"batched_over_vmap": 0.8}}},
        "bench_encoding": {"stacks": {"K=16": {"alone_over_stacked": 3.0}}},
    }
    for name, value in figures.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    found = gpu_check_module().targets(tmp_path)
    assert [(row["value"], row.get("met")) for row in found.values()] == [
        (12.5, True), (5.25, False), (2.25, True), (0.75, None), (1.75, None), (3.0, None), (120.0, None),
        (30.0, None), (9.5, True), (8.628, False), (0.8, None), (3.0, None)]  # 5.25 + 1280 x 9.5 s
    assert gpu_check_module().targets(tmp_path / "nothing") == {}  # no step wrote figures
    assert gpu_check_module().STUDY_V1_RUNS == len(load_study("study_v1").runs)



def loads_counted(monkeypatch):
    """The names of the datasets loaded from now on, in a list that grows."""
    import dlbench.data

    loads, real = [], dlbench.data.get_dataset
    monkeypatch.setattr(dlbench.data, "get_dataset",
                        lambda name, **options: loads.append(name) or real(name, **options))
    return loads


def test_bench_studys_projection_times_every_method_on_one_load_of_the_data(tiny_dsprites, monkeypatch):
    import dlbench.data
    import dlbench.study.benchmark as benchmark

    def measured(spec, k, device, steps, stacked):
        dlbench.data.dataset_from_record(spec.identity())
        return {"images_per_second": 100.0}

    monkeypatch.setattr(benchmark, "_images_per_second", measured)
    loads = loads_counted(monkeypatch)
    projected = benchmark._projections(load_study("study_v1_cpu"), 10.0, "cpu", log=lambda *_: None)
    assert set(projected["study_v1"]["seconds_per_step"]) == set(STRENGTH)  # every method of study_v1
    assert loads == ["dsprites"] and not dlbench.data.keep_loaded(False)


def test_a_stack_out_of_memory_is_let_go_before_the_gpus_cache_is_emptied(monkeypatch):
    # emptied inside the except block, the cache kept what the traceback's frames still held
    import weakref

    import torch

    import dlbench.study.benchmark as benchmark

    class Trainer:
        pass

    held, freed = [], []

    def out_of_memory(spec, k, device, steps, stacked):
        trainer = Trainer()
        held.append(weakref.ref(trainer))
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(benchmark, "_images_per_second", out_of_memory)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(held[0]() is None))
    assert benchmark._measured_or_out_of_memory(None, 64, torch.device("cuda"), 1, True) is None
    assert freed == [True]


def test_bench_stacking_goes_on_past_a_stack_that_does_not_fit_the_gpu(tiny_dsprites, monkeypatch):
    # (tiny_dsprites: the benchmark loads the study's data; without it, a 3 GB synthetic dSprites had
    # been written to ~/.cache by the test suite)
    # on a GPU the largest stacks may not fit, and beta-TCVAE's (B, B, D) terms take more memory
    # than the others': the figures say so, and each method is timed at the largest K that fits.
    # Measured rates faked (100 img/s per beta-VAE run, 50 for the others): only the choices count.
    import torch

    import dlbench.study.benchmark as benchmark

    def fake_rate(spec, k, device, steps, stacked):
        if k > (2 if spec.method.name == "beta_tcvae" else 4):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        in_bfloat16 = 3 if spec.train.get("precision") == "bfloat16" else 1  # three times as fast
        return {"images_per_second": (100 if spec.method.name == "beta_vae" else 50) * k * in_bfloat16}

    monkeypatch.setattr(benchmark, "_images_per_second", fake_rate)
    # and the arithmetic: 1 GFLOP a step, 2 for FactorVAE (its discriminator); peaks of 10 and 40 TFLOP/s
    from dlbench import flops

    monkeypatch.setattr(flops, "step_flops", lambda spec, data, device: 1e9 * (2 if spec.method.name == "factor_vae"
                                                                                else 1))
    monkeypatch.setattr(flops, "matmul_peak_tflops", lambda device, dtype: 40.0 if dtype == torch.bfloat16 else 10.0)
    figures = benchmark.bench_stacking("cpu", stacks=[1, 2, 4, 8], steps=1, study_names=["study_v1_cpu"],
                                       log=lambda *_: None, other_precisions=("bfloat16",))
    study = figures["studies"]["study_v1_cpu"]
    assert study["stacks"]["K=8"] == {"out_of_memory": True} and study["stacks"]["K=4"]["ratio"] == 4
    assert study["best_k"] == 4
    assert study["method_stack_sizes"] == {"beta_vae": 4, "beta_tcvae": 2, "factor_vae": 4, "isa_vae": 4, "ab_vae": 4}
    rates = {"beta_vae": 400, "beta_tcvae": 100, "factor_vae": 200, "isa_vae": 200, "ab_vae": 200}
    assert study["method_images_per_second"] == rates
    # every method of study_v1_cpu at one protocol (500 steps of batch 64)
    images_per_run = study["protocol"]["steps"] * study["protocol"]["batch_size"]
    assert images_per_run == 500 * 64
    seconds = sum(images_per_run / rates[run.name.split("/")[0]] for run in load_study("study_v1_cpu").runs)
    assert study["projected_training_hours"] == pytest.approx(seconds / 3600)
    # the compute floor: 80 runs of 500 steps, 16 of them FactorVAE's at twice the arithmetic
    assert figures["matmul_peak_tflops"] == {"float32": 10.0, "bfloat16": 40.0}
    total = (64 * 1e9 + 16 * 2e9) * 500
    assert study["training_pflop"] == pytest.approx(total / 1e15)
    assert study["compute_floor_hours"] == pytest.approx({"float32": total / 10e12 / 3600, "bfloat16": total / 40e12 / 3600})
    # each method again at its K in bfloat16: the projection in bfloat16, against bfloat16's floor
    assert study["projected_training_hours_by_precision"] == pytest.approx({"float32": seconds / 3600,
                                                                           "bfloat16": seconds / 3 / 3600})
    assert study["projected_over_floor"] == pytest.approx({"float32": seconds / (total / 10e12),
                                                           "bfloat16": seconds / 3 / (total / 40e12)})
    # the TFLOP/s each method's rate achieves: its steps per second (images over the batch) times its arithmetic
    assert study["method_tflops"]["factor_vae"] == pytest.approx(200 / 64 * 2e9 / 1e12)
    assert study["method_tflops"]["beta_vae"] == pytest.approx(400 / 64 * 1e9 / 1e12)
