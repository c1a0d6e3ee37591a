"""--executor slurm: the study's units as a submitit job array, run here through submitit's local
executor (no Slurm on CI): the same results as the local executor, a preempted job requeued and
its run resumed to the same weights, and its mistakes one line each."""

import json
import os
import signal
import sys
import time

import pytest

from dlbench.cli import study as study_cli
from dlbench.study import load_study
from dlbench.study.slurm import make_executor, submit
from dlbench.study.unit import DONE, units_of
from tests.commands import assert_one_line_error, run_command, run_in_process, tree
from tests.conftest import STACKED_STUDY_OPTIONS
from tests.test_study import assert_same_study, weights_and_results, write_study
from tests.test_study_ray import stacked_sizes

pytestmark = pytest.mark.slow


def test_the_slurm_executor_gives_the_local_executors_results_also_for_stacks(local_stacked_study, tiny_dsprites,
                                                                            tmp_path):
    # three runs in stacks of two: a stack and a run alone, each one job
    study, local = local_stacked_study
    slurm = tmp_path / "slurm"
    result = run_command("dlb_study", study, "--runs_root", slurm, "--executor", "slurm", *STACKED_STUDY_OPTIONS,
                         data_root=tiny_dsprites)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitit's local executor" in result.stdout and "submitted 2 jobs for 3 runs (local)" in result.stdout
    assert_same_study(weights_and_results(slurm), weights_and_results(local))
    assert stacked_sizes(slurm) == stacked_sizes(local) and sorted(stacked_sizes(slurm), key=str) == [2, 2, False]


def test_a_preempted_job_is_requeued_and_its_run_resumes_where_it_stopped_to_the_same_weights(tiny_dsprites,
                                                                                               tmp_path):
    # submitit's handler had requeued the job by exiting mid-step, the run then resuming from its
    # last periodic checkpoint (every train.checkpoint_minutes): no step is lost now
    study_path = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [4.0]}")
    study_path.write_text(study_path.read_text().replace("'train.steps': 20", "'train.steps': 80").replace(
        "'train.checkpoint_every': 10", "'train.checkpoint_every': 100000"))  # the warning comes at step 10
    study = load_study(str(study_path))
    alone, preempted = tmp_path / "alone", tmp_path / "preempted"
    assert run_command("dlb_study", study_path, "--runs_root", alone, "--device", "cpu", "--no_progress",
                       data_root=tiny_dsprites).returncode == 0

    (unit,) = units_of(study, study.runs, preempted)
    executor = make_executor(preempted / "slurm_logs", {}, log=lambda *_: None)
    (job,) = submit(executor, [[unit]], "cpu", False, threads=1)
    train_log = preempted / study.runs[0].name / "model" / "train_log.csv"
    deadline = time.monotonic() + 120
    while not (train_log.is_file() and len(train_log.read_text().splitlines()) > 2):
        assert time.monotonic() < deadline and not job.done(), job.stderr()
        time.sleep(0.1)
    # Slurm's warning to the job's task (the process that holds the run's claim): the run stops at
    # its step with a checkpoint, then submitit's handler requeues the job
    task = json.loads((preempted / study.runs[0].name / "claim.json").read_text())["pid"]
    os.kill(task, signal.SIGUSR2)
    assert job.result() == {unit.run_dir: DONE}
    sessions = json.loads((preempted / study.runs[0].name / "run.json").read_text())["sessions"]
    assert [s["ended"] for s in sessions] == ["interrupted by SIGUSR2", "done"], sessions
    assert 0 < sessions[0]["to_step"] == sessions[1]["from_step"] < 80, sessions  # resumed where it stopped
    assert_same_study(weights_and_results(preempted, metrics=False), weights_and_results(alone, metrics=False))


@pytest.mark.parametrize("args, needle", [
    (["--executor", "slurm", "--slurm_option", "bogus_thing=1"], "submitit refused the Slurm options"),
    (["--executor", "slurm", "--workers", "2"], "--workers is for --executor local"),
    (["--slurm_time", "10"], "go with --executor slurm"),
    (["--executor", "slurm", "--slurm_option", "nokeyvalue"], "bad --slurm_option"),
    (["--executor", "kubernetes"], "invalid choice: 'kubernetes'"),
    (["--executor", "slurm", "--slurm_option", "time=60"], "give it as --slurm_time"),
    (["--executor", "slurm", "--slurm_option", "partition=gpu"], "give it as --slurm_partition"),
    (["--status", "--dry_run"], "give one"),
    (["--status", "--retry_failed"], "--retry_failed trains, which --status does not; leave one out"),
    (["--dry_run", "--retry_failed"], "--retry_failed trains, which --dry_run does not; leave one out"),
    (["--ray_address", "127.0.0.1:6379"], "go with --executor ray"),
    (["--executor", "ray", "--device", "cuda"], "--device cuda on Ray needs --gpus_per_worker"),
])
def test_slurm_mistakes_are_one_line(tiny_dsprites, tmp_path, args, needle):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    before = tree(tmp_path)
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--device", "cpu", *args,
                            data_root=tiny_dsprites)
    assert_one_line_error(result, needle)
    assert tree(tmp_path) == before


def test_without_slurm_more_jobs_than_cores_are_refused(tiny_dsprites, tmp_path, monkeypatch, capsys):
    # submitit's local executor starts every job at once: a 1280-run study had started 1280 processes
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 4.0]}")
    code = study_cli.main([str(study), "--runs_root", str(tmp_path / "runs"), "--executor", "slurm", "--device", "cpu",
                           "--no_progress"])
    said = capsys.readouterr()
    err = said.err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "starts every job at once (--array_parallelism is Slurm's): 2 jobs on 1 cores; give --executor local" \
        in err[0]
    assert "or --stack K, which makes a job of K runs" in err[0]
    # nothing written: the study's record and an empty slurm_logs/ had been, after a line saying the
    # jobs would run locally
    assert not (tmp_path / "runs").exists() and said.out == "", said.out


def test_without_submitit_the_line_says_which_extra_to_install(tiny_dsprites, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    code = study_cli.main([str(study), "--runs_root", str(tmp_path / "runs"), "--executor", "slurm", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install -e '.[slurm]'" in err[0]


def test_a_login_node_without_a_gpu_submits_jobs_with_the_device_as_given(tiny_dsprites, tmp_path, monkeypatch,
                                                                          capsys):
    # the device had been resolved on the submitting machine: --device cuda refused there, and the
    # default auto sent "cpu" to the jobs, so a GPU cluster's nodes trained on their CPUs
    import torch

    from dlbench.study import slurm

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(slurm, "on_slurm", lambda: True)  # sbatch found: the jobs run on the nodes
    submitted = []

    def run_slurm(study, runs, runs_root, device, options, retry_failed=False, log=print, stack=1):
        submitted.append((str(device), stack))
        return {spec.name: DONE for spec in runs}

    monkeypatch.setattr(slurm, "run_slurm", run_slurm)
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    base = [str(study), "--runs_root", str(tmp_path / "runs"), "--executor", "slurm", "--no_progress"]
    assert study_cli.main([*base, "--device", "cuda", "--stack", "4"]) == 0
    assert study_cli.main(base) == 0
    assert submitted == [("cuda", 4), ("auto", 1)]
    # the default's one run a task is said (it had gone without a word)
    assert "each slurm task trains one run: --stack auto measures the GPU's memory" in capsys.readouterr().out
    # --stack auto would measure a GPU this machine lacks: refused where asked for, or implied by
    # --device cuda, and in a dry run too (it had printed the commands and exited 0)
    for given in (["--device", "cuda"], ["--stack", "auto"], ["--device", "cuda", "--dry_run"],
                  ["--stack", "auto", "--dry_run"]):
        assert study_cli.main([*base, *given]) == 2, given
        assert "--stack auto measures the GPU's memory on this machine, which has none" in capsys.readouterr().err
    assert study_cli.main([*base, "--stack", "auto", "--device", "cpu"]) == 0  # CPU nodes: one run a task
    assert submitted[-1] == ("cpu", 1)
    assert study_cli.main([*base, "--stack", "0", "--dry_run"]) == 2
    assert "bad --stack '0'" in capsys.readouterr().err
    # without Slurm the jobs run here: this machine's device sizes the stacks, and no word of the nodes' GPUs
    monkeypatch.setattr(slurm, "on_slurm", lambda: False)
    assert study_cli.main([*base, "--stack", "auto"]) == 0
    assert submitted[-1] == ("auto", 1) and "GPU" not in capsys.readouterr().out


def test_runs_stopped_with_their_jobs_are_counted_in_the_summary(tiny_dsprites, tmp_path, monkeypatch, capsys):
    # "1 stopped with their job" had been said of one
    from dlbench.study import slurm
    from dlbench.study.unit import STOPPED

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 2.0]}")
    base = [str(study), "--runs_root", str(tmp_path / "runs"), "--executor", "slurm", "--device", "cpu",
            "--no_progress"]
    for stopped, said in ((1, "1 stopped with its job (the same command resumes it)"),
                          (2, "2 stopped with their jobs (the same command resumes them)")):
        monkeypatch.setattr(slurm, "run_slurm", lambda study, runs, *args, stopped=stopped, **kwargs: {
            spec.name: STOPPED for spec in runs[:stopped]} | {spec.name: DONE for spec in runs[stopped:]})
        assert study_cli.main(base) == 1
        assert f"finished, 0 failed, {said}" in capsys.readouterr().out


def test_a_job_that_ends_without_a_result_stops_its_runs_and_says_why(trained_run, tmp_path):
    # its runs had been counted failed (run.json said interrupted, and a rerun resumed them), with
    # the last line of submitit's log as the reason ("Loading pickle: ...")
    import shutil
    import types

    from dlbench import rundir
    from dlbench.study.slurm import ended_early
    from dlbench.study.unit import FAILED, STOPPED

    stopped, failed = trained_run, shutil.copytree(trained_run, tmp_path / "failed")
    rundir.mark_stopped(stopped, rundir.Status.INTERRUPTED, "SIGKILL")
    rundir.mark_stopped(failed, rundir.Status.FAILED, "the loss became non-finite at step 7")
    units = [types.SimpleNamespace(run_dir=str(stopped)), types.SimpleNamespace(run_dir=str(failed))]
    job = types.SimpleNamespace(job_id="8048", paths=types.SimpleNamespace(stderr="/logs/8048_0_log.err"))
    killed = RuntimeError("Job 8048 has not produced any output\nsubmitit INFO (2026-12-01) - Loading pickle: x.pkl")
    lines = []
    statuses = ended_early(job, units, killed, {str(stopped): "a", str(failed): "b"}, lines.append)
    assert statuses == {str(stopped): STOPPED, str(failed): FAILED}
    assert lines[0] == ("a: job 8048 ended without a result (Job 8048 has not produced any output); the run keeps its "
                        "last checkpoint and the same command resumes it (its log: /logs/8048_0_log.err)")
    raised = RuntimeError("Traceback (most recent call last):\n  File x\nValueError: boom\nsubmitit INFO - Exiting")
    assert ended_early(job, units[1:], raised, {str(failed): "b"}, lines.append) == {str(failed): FAILED}
    assert lines[-1] == "b: job 8048 failed: ValueError: boom (its log: /logs/8048_0_log.err)"


def test_each_job_gets_the_time_asked_for_and_no_local_job_submitits_two_minutes(tmp_path):
    # submitit's local executor (no Slurm) had cut every job at 2 minutes, requeued it three times
    # and then failed it; --slurm_time had not reached it
    from dlbench.study.slurm import REQUEUES

    unlimited = make_executor(tmp_path / "a", {}, log=lambda *_: None)
    assert unlimited.cluster == "local" and unlimited.parameters["timeout_min"] >= 24 * 60
    assert unlimited._executor.max_num_timeout == REQUEUES >= 10
    assert make_executor(tmp_path / "b", {"time": 30}, log=lambda *_: None).parameters["timeout_min"] == 30


def test_on_slurm_a_job_time_limit_is_asked_for_not_left_to_submitits_five_minutes(tiny_dsprites, tmp_path,
                                                                                  monkeypatch, capsys):
    # a Slurm cluster's commands, faked: submitit needs sbatch and srun on the path
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "srun"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    runs = tmp_path / "runs"
    assert study_cli.main([str(study), "--runs_root", str(runs), "--executor", "slurm", "--no_progress"]) == 2
    assert "give --slurm_time MINUTES" in capsys.readouterr().err and not runs.exists()
    executor = make_executor(tmp_path / "logs", {"time": 240, "partition": "gpu"})
    assert executor.cluster == "slurm" and executor._executor.parameters["time"] == 240


def test_stopping_the_study_leaves_slurms_jobs_running_and_says_how_to_stop_them():
    # a closed terminal (SIGHUP) or Ctrl-C ends only the waiting: the jobs are the cluster's
    import types

    from dlbench.errors import Interrupted
    from dlbench.study.slurm import stopped_waiting

    def job(job_id, done):
        return types.SimpleNamespace(job_id=job_id, done=lambda: done)

    jobs = [job("8048_0", True), job("8048_1", False), job("8048_2", False)]
    stopped = stopped_waiting("slurm", jobs, signal.SIGHUP)
    assert isinstance(stopped, Interrupted) and stopped.exit_code == 128 + signal.SIGHUP
    assert str(stopped) == ("stopped waiting by SIGHUP: 2 jobs go on on Slurm (scancel 8048 stops them); "
                            "dlb_study --status shows how far their runs are")


# a job whose first SIGTERM is lost (sent while its controller had no task yet, or taken by
# submitit's handler before training listened): it ends at the second
DEAF_TO_ONE_SIGTERM = ("import signal, sys, time; heard = []; "
                       "signal.signal(signal.SIGTERM, lambda *_: heard.append(1) or len(heard) > 1 and sys.exit(0)); "
                       "print('ready', flush=True); time.sleep(60)")


def test_a_local_job_that_lost_the_stop_is_sent_it_again(monkeypatch):
    import subprocess

    from dlbench.study import slurm

    class LocalJob:  # submitit's local job as stopped_waiting uses it: its id is its controller's pid
        def __init__(self):
            self.process = subprocess.Popen([sys.executable, "-c", DEAF_TO_ONE_SIGTERM], stdout=subprocess.PIPE,
                                            text=True)
            assert self.process.stdout.readline() == "ready\n"
            self.job_id = str(self.process.pid)

        def done(self):
            return self.process.poll() is not None

        def wait(self):
            self.process.wait(timeout=10)  # (sent once, the job had trained on and the study waited for good)

    monkeypatch.setattr(slurm, "RESEND_SECONDS", 0.5)
    jobs = [LocalJob(), LocalJob()]
    stopped = slurm.stopped_waiting("local", jobs, signal.SIGTERM)
    assert stopped.exit_code == 128 + signal.SIGTERM
    assert [job.process.returncode for job in jobs] == [0, 0]


def test_a_stop_during_the_submission_stops_the_jobs_submitted(tiny_dsprites, tmp_path, monkeypatch, capsys):
    # SIGTERM raised inside the submission had left its local jobs unknown to the study: they
    # trained on with nobody to stop them, after the study had said it was interrupted
    from dlbench.study import slurm

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 4.0]}")
    study.write_text(study.read_text().replace("'train.steps': 20", "'train.steps': 100000"))
    submitted = []

    def submit_then_stop(*args, **kwargs):
        submitted.extend(real_submit(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's stop, as the submission ends
        return submitted

    real_submit = slurm.submit
    monkeypatch.setattr(slurm, "submit", submit_then_stop)
    code = study_cli.main([str(study), "--runs_root", str(tmp_path / "runs"), "--executor", "slurm",
                           "--device", "cpu", "--no_progress"])
    assert code == 128 + signal.SIGTERM, capsys.readouterr()
    assert "stopped by SIGTERM: every run keeps its last checkpoint" in capsys.readouterr().err
    assert len(submitted) == 2 and all(job.done() for job in submitted)
    for job in submitted:  # the controller has gone, and so has its task
        with pytest.raises(ProcessLookupError):
            os.kill(int(job.job_id), 0)
    assert not list((tmp_path / "runs").rglob("claim.json"))


def test_a_finished_studys_rerun_submits_no_job(trained_run, tiny_dsprites, tmp_path):
    # each finished run had been a job: on a cluster, an allocation queued to do nothing
    from tests.test_study import study_of_the_trained_run
    from dlbench.study.unit import evaluate_unit

    study, _, unit = study_of_the_trained_run(trained_run, tmp_path)
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    before = tree(unit.run_dir)
    result = run_in_process("dlb_study", study.file, "--runs_root", tmp_path / "runs", "--executor", "slurm",
                            "--device", "cpu", data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr
    assert "submitted" not in result.stdout and "local executor" not in result.stdout, result.stdout
    assert "study s: 1 run finished, 0 failed" in result.stdout, result.stdout
    assert not (tmp_path / "runs" / "slurm_logs").exists()
    assert tree(unit.run_dir) == before


def test_without_slurm_the_slurm_options_given_are_said_to_be_unused(tmp_path):
    # cpus_per_task=abc had passed without a word, the study taken for one checked for its cluster
    said = []
    make_executor(tmp_path, {"cpus_per_task": "abc", "partition": "gpu", "time": 30}, log=said.append)
    assert said == ["no Slurm on this machine (sbatch not found): running the jobs with submitit's local executor, "
                    "which applies none of the Slurm options given (cpus_per_task, partition)"]
    said.clear()
    make_executor(tmp_path, {"time": 30}, log=said.append)  # the time limit applies to local jobs too
    assert said == ["no Slurm on this machine (sbatch not found): running the jobs with submitit's local executor"]
