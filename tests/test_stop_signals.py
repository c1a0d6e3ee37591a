"""SIGTERM (a scheduler's stop) and SIGHUP (a closed terminal) stop every command as Ctrl-C does:
what it holds is released, what it finished is kept, one line says so, and the exit status is
128 + the signal. By default they would end the process on the spot, leaving its claim behind
(dlb_train's own handling while it trains is tested in tests/test_interruptions.py)."""

import os
import signal

import pytest

from dlbench import evaluation, rundir
from dlbench.cli import evaluate
from dlbench.cli.common import run_main


def signalling_on(name, signum, evaluate_metric):
    """metrics.evaluate that sends this process signum when it is asked for metric `name`."""

    def evaluate_or_signal(metric, *args, **kwargs):
        if metric == name:
            os.kill(os.getpid(), signum)
        return evaluate_metric(metric, *args, **kwargs)

    return evaluate_or_signal


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_stops_dlb_evaluate_keeping_the_metrics_it_finished(signame, trained_run, capsys, monkeypatch):
    signum = getattr(signal, signame)
    monkeypatch.setattr(evaluation.metrics, "evaluate", signalling_on("sap", signum, evaluation.metrics.evaluate))
    before = {each: signal.getsignal(each) for each in (signal.SIGTERM, signal.SIGHUP)}

    code = evaluate.main([str(trained_run), "--metrics", "mig,sap", "--device", "cpu"])

    err = capsys.readouterr().err
    assert code == 128 + signum, err
    assert [line for line in err.splitlines() if line.strip()] == [f"dlb_evaluate: interrupted by {signame}"]
    assert not rundir.claim_path(trained_run).exists()  # the claim went with the command, not after its lease
    assert evaluation.stored_result(trained_run, "mean", "mig", {}, 0) is not None
    assert evaluation.stored_result(trained_run, "mean", "sap", {}, 0) is None
    assert {each: signal.getsignal(each) for each in before} == before  # the command's handlers are gone


def test_a_repeated_signal_does_not_cut_the_unwinding_short():
    unwound = []

    def body(argv):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler signalling again while the command cleans up
            unwound.append(True)

    assert run_main("dlb_test", body, []) == 128 + signal.SIGTERM
    assert unwound == [True]
