"""Training: the loss falls, resume is bit-exact, NaN fails the run, finished runs are kept."""

import json
import sys

import gin
import numpy as np
import pytest
import torch

import dlbench.train.loop as loop
from dlbench.errors import UserError
from dlbench.train.run import train_from_gin

from tests.conftest import TINY_GRID, TINY_PARAMS, tiny_params
from tests.training import read_log, training_scalars


def weights(run_dir):
    return torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]


def test_training_lowers_the_loss_on_tiny_data(tiny_dsprites, tmp_path):
    run_dir, status = train_from_gin([], TINY_PARAMS + ["train.steps = 60", "train.log_every = 10"],
                                     tmp_path / "run", "cpu", progress=False)
    assert status == "done"
    rows = read_log(run_dir)
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40, 50, 60]
    assert float(rows[-1]["loss"]) < 0.7 * float(rows[0]["loss"])
    assert float(rows[-1]["reconstruction"]) < float(rows[0]["reconstruction"])


def test_a_run_is_a_function_of_its_config_and_seed(tiny_dsprites, tmp_path):
    a, _ = train_from_gin([], TINY_PARAMS, tmp_path / "a", "cpu", progress=False)
    b, _ = train_from_gin([], TINY_PARAMS, tmp_path / "b", "cpu", progress=False)
    c, _ = train_from_gin([], TINY_PARAMS + ["train.seed = 1"], tmp_path / "c", "cpu", progress=False)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def interrupt_at(monkeypatch, step, params, run_dir):
    """Train run_dir as if the process were killed (Ctrl-C) after `step` updates."""
    original = loop.Trainer.run

    def crash(self, until, *args, **kwargs):
        original(self, step, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.Trainer, "run", crash)
    with pytest.raises(KeyboardInterrupt):
        train_from_gin([], params, run_dir, "cpu", progress=False)
    monkeypatch.setattr(loop.Trainer, "run", original)


def test_resume_equals_an_uninterrupted_run_bit_for_bit(tiny_dsprites, tmp_path, monkeypatch):
    whole, _ = train_from_gin([], TINY_PARAMS, tmp_path / "whole", "cpu", progress=False)
    interrupt_at(monkeypatch, 17, TINY_PARAMS, tmp_path / "resumed")
    resumed_dir = tmp_path / "resumed"
    assert json.loads((resumed_dir / "run.json").read_text())["status"] == "interrupted"
    assert sorted(p.name for p in (resumed_dir / "model" / "checkpoints").iterdir()) == ["step_000000010.pt"]
    assert not (resumed_dir / "model" / "checkpoint.pt").exists()

    _, status = train_from_gin([], TINY_PARAMS, resumed_dir, "cpu", progress=False)
    assert status == "done"
    wa, wb = weights(whole), weights(resumed_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert read_log(whole) and [r["loss"] for r in read_log(whole)] == [r["loss"] for r in read_log(resumed_dir)]
    assert not (resumed_dir / "model" / "checkpoints").exists()  # resume state is dropped once done


@pytest.mark.parametrize("in_study, alike", [
    (False, "OMP_NUM_THREADS=1 resumes it alike"),
    # a study shares its threads out among its workers: OMP_NUM_THREADS=2 under --workers 2 gives each 1
    (True, "the study run with the --workers it trained with, which gave each run 1, resumes it alike")])
def test_a_resume_with_other_cpu_threads_says_its_weights_will_differ(tiny_dsprites, tmp_path, monkeypatch,
                                                                         capsys, in_study, alike):
    # the threads decide the order of the float sums: the resumed run had gone on without a word
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        interrupt_at(monkeypatch, 12, TINY_PARAMS, tmp_path / "r")
        capsys.readouterr()
        interrupt_at(monkeypatch, 14, TINY_PARAMS, tmp_path / "r")
        assert "CPU threads" not in capsys.readouterr().out  # the same count: nothing to say
        torch.set_num_threads(2)
        train_from_gin([], TINY_PARAMS, tmp_path / "r", "cpu", progress=False, in_study=in_study)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert (f"{tmp_path / 'r'}: trained so far with 1 CPU threads, now with 2: its weights will differ in float "
            f"rounding from the run trained with 1 throughout ({alike})") in out, out


def test_a_resume_writes_a_missing_config_gin_again(tiny_dsprites, tmp_path, monkeypatch, capsys):
    # resumed with the config given, the run had finished without the file that names its config
    interrupt_at(monkeypatch, 12, TINY_PARAMS, tmp_path / "r")
    config = tmp_path / "r" / "model" / "config.gin"
    text = config.read_text()
    config.unlink()
    assert train_from_gin([], TINY_PARAMS, tmp_path / "r", "cpu", progress=False)[1] == "done"
    assert f"{config} was missing; written again from the config given" in capsys.readouterr().out
    assert config.read_text() == text


def test_the_final_training_scalars_are_the_means_of_the_last_steps_whatever_the_log_every(tiny_dsprites, tmp_path,
                                                                                            monkeypatch):
    # they had been the last log row's: the means of the last log_every steps, a setting said not to
    # change a result (runs differing in it are pooled in a leaderboard)
    monkeypatch.setattr(loop, "RESULT_STEPS", 8)
    every_step, _ = train_from_gin([], TINY_PARAMS + ["train.log_every = 1"], tmp_path / "every", "cpu",
                                   progress=False)
    rows = read_log(every_step)
    assert len(rows) == 20
    results = training_scalars(every_step)
    for name in ("loss", "reconstruction", "kl"):  # the mean of the last 8 rows, each one step's value
        assert results[name] == pytest.approx(sum(float(row[name]) for row in rows[-8:]) / 8, rel=1e-6)
    assert results["steps"] == 20
    seven, _ = train_from_gin([], TINY_PARAMS + ["train.log_every = 7"], tmp_path / "seven", "cpu", progress=False)
    assert training_scalars(seven) == results
    # a resume may change log_every: the result is the same, and config.gin says the setting now in force
    # (from its checkpoint at step 14, within the last 8 steps)
    interrupt_at(monkeypatch, 17, TINY_PARAMS + ["train.log_every = 5", "train.checkpoint_every = 7"],
                 tmp_path / "resumed")
    resumed, _ = train_from_gin([], TINY_PARAMS + ["train.log_every = 3"], tmp_path / "resumed", "cpu",
                                progress=False)
    assert [s["from_step"] for s in json.loads((resumed / "run.json").read_text())["sessions"]] == [0, 14]
    assert training_scalars(resumed) == results
    assert "train.log_every = 3" in (resumed / "model" / "config.gin").read_text()


def test_resume_refuses_a_different_config(tiny_dsprites, tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 12, TINY_PARAMS, tmp_path / "r")
    with pytest.raises(UserError, match="different config"):
        train_from_gin([], TINY_PARAMS + ["beta_vae.beta = 1.0"], tmp_path / "r", "cpu", progress=False)


def test_a_finished_run_is_left_alone_unless_overwrite(tiny_dsprites, tmp_path):
    run_dir, _ = train_from_gin([], TINY_PARAMS, tmp_path / "r", "cpu", progress=False)
    stamp = (run_dir / "model" / "checkpoint.pt").stat().st_mtime_ns
    assert train_from_gin([], TINY_PARAMS, run_dir, "cpu", progress=False)[1] == "skipped"
    assert (run_dir / "model" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert train_from_gin([], TINY_PARAMS, run_dir, "cpu", overwrite=True, progress=False)[1] == "done"
    assert (run_dir / "model" / "checkpoint.pt").stat().st_mtime_ns != stamp


def test_a_nan_loss_fails_the_run_with_its_step(tiny_dsprites, tmp_path, monkeypatch):
    from dlbench.methods import BetaVAE

    original = BetaVAE.objective

    def nan_from_step_7(self, outputs, step=0, draws=None):
        self.calls = getattr(self, "calls", 0) + 1
        loss, scalars = original(self, outputs, step, draws)
        return (loss * float("nan") if self.calls >= 7 else loss), scalars

    monkeypatch.setattr(BetaVAE, "objective", nan_from_step_7)
    run_dir, status = train_from_gin([], TINY_PARAMS, tmp_path / "r", "cpu", progress=False)
    record = json.loads((run_dir / "run.json").read_text())
    assert status == "failed" and record["status"] == "failed" and record["failed_step"] == 7
    assert not (run_dir / "model" / "checkpoint.pt").exists()


def test_run_json_records_identity_and_operative_config(tiny_dsprites, tmp_path):
    run_dir, _ = train_from_gin([], TINY_PARAMS, tmp_path / "r", "cpu", progress=False)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == "beta_vae" and record["dataset"] == "dsprites" and record["seed"] == 0
    assert record["hyperparameters"] == {"beta": 4.0}
    assert record["train"]["steps"] == 20 and record["model"]["latent_dim"] == 4
    assert record["device"] == "cpu" and record["status"] == "done" and record["dlbench_version"]
    config = (run_dir / "model" / "config.gin").read_text()
    assert "beta_vae.beta = 4.0" in config and "train.steps = 20" in config and "model.latent_dim = 4" in config
    results = json.loads((run_dir / "model" / "results.json").read_text())
    assert {"loss", "reconstruction", "kl", "elbo", "kl_0", "kl_3"} <= set(results)
    assert results["elbo"] == pytest.approx(-(results["reconstruction"] + results["kl"]), rel=1e-5)


@pytest.mark.parametrize("dataset", ["color_dsprites", "noisy_dsprites"])
def test_dsprites_variants_train_on_device_made_batches_and_resume_bit_for_bit(dataset, tiny_dsprites, tmp_path,
                                                                               monkeypatch):
    params = [p for p in TINY_PARAMS if not p.startswith("dataset.name")] + [f"dataset.name = '{dataset}'"]
    whole, status = train_from_gin([], params, tmp_path / "whole", "cpu", progress=False)
    assert status == "done" and (whole / "model" / "samples").is_dir()
    interrupt_at(monkeypatch, 17, params, tmp_path / "resumed")
    _, status = train_from_gin([], params, tmp_path / "resumed", "cpu", progress=False)
    assert status == "done"
    wa, wb = weights(whole), weights(tmp_path / "resumed")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_data_is_held_once(tiny_dsprites, monkeypatch):
    """On the CPU the trainer's tensor is a view of the dataset's array; where it is a copy (a GPU)
    the dataset lets go of its array, and the sample figures come from the trainer's copy."""
    from dlbench.config import parse_gin, resolve_run_spec
    from dlbench.data.dsprites import DSprites

    parse_gin([], TINY_PARAMS)
    spec = resolve_run_spec()
    data = DSprites()
    trainer = loop.Trainer(spec, data, torch.device("cpu"))
    assert loop.shares_memory(trainer.images, data.images) and data._images is not None
    assert not loop.shares_memory(trainer.images.clone(), data.images)
    shown, scale = trainer.shown_images()
    assert shown is trainer.images and scale == data.pixel_scale

    data = DSprites()  # (the first one already gave the process its copy)
    kept = data.images.copy()
    released = []
    monkeypatch.setattr(data, "release_images", lambda: (released.append(True), DSprites.release_images(data)))
    monkeypatch.setattr(loop, "shares_memory", lambda tensor, array: False)  # what a device copy gives
    loop.Trainer(spec, data, torch.device("cpu"))
    assert released == [True] and data._images is None
    np.testing.assert_array_equal(data.images, kept)  # read again on the next use


def test_initial_weights_depend_on_the_seed_alone_and_leave_the_process_rng_alone(tiny_dsprites):
    import dlbench.data
    from dlbench.config import parse_gin, resolve_run_spec
    from dlbench.train.loop import Trainer

    parse_gin([], [*TINY_PARAMS, "train.method = @factor_vae()", "factor_vae.discriminator_width = 8"])
    spec = resolve_run_spec()
    data = dlbench.data.dataset_from_record(spec.identity())
    torch.manual_seed(123)
    first = Trainer(spec, data, torch.device("cpu"))
    after = torch.rand(3)  # the process's RNG went on as if no trainer had been built
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))
    torch.rand(1000)  # other draws, and another run built before, change nothing
    Trainer(spec, data, torch.device("cpu"))
    second = Trainer(spec, data, torch.device("cpu"))
    for a, b in [(first.model, second.model), (first.method.discriminator, second.method.discriminator)]:
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert second.images is first.images  # one copy of the dataset for the runs of a process


def test_bfloat16_precision_trains_and_is_part_of_the_identity_only_when_set(tiny_dsprites, tmp_path):
    from dlbench.config import parse_gin, resolve_run_spec

    run_dir, status = train_from_gin([], [*TINY_PARAMS, "train.precision = 'bfloat16'"], tmp_path / "bf16", "cpu",
                                     progress=False)
    record = json.loads((run_dir / "run.json").read_text())
    assert status == "done" and record["train"]["precision"] == "bfloat16"
    assert all(np.isfinite(float(row["loss"])) for row in read_log(run_dir))
    # the default is left out of the identity, so a run recorded before precision existed is the same run
    parse_gin([], TINY_PARAMS)
    assert "precision" not in resolve_run_spec().identity()["train"]
    run_dir, _ = train_from_gin([], TINY_PARAMS, tmp_path / "f32", "cpu", progress=False)
    assert "precision" not in json.loads((run_dir / "run.json").read_text())["train"]
    # the difference names the default, not a missing value
    with pytest.raises(UserError, match="train.precision: 'float32' -> 'bfloat16'"):
        train_from_gin([], [*TINY_PARAMS, "train.precision = 'bfloat16'"], run_dir, "cpu", progress=False)
    # and so do the results of a study with both
    from dlbench.aggregate.collect import collect

    results = collect(tmp_path).results.sort_values("run_dir")
    assert list(results["run_dir"]) == ["bf16", "f32"] and list(results["train.precision"]) == ["bfloat16", "float32"]
    assert "train.compile" not in results  # columns only for what some run set


def test_train_compile_is_part_of_the_identity_only_when_set():
    from dlbench.config import parse_gin, resolve_run_spec

    identities = {}
    for setting in ([], ["train.compile = True"]):
        parse_gin([], [*TINY_PARAMS, *setting])
        identities[bool(setting)] = resolve_run_spec().identity()
        gin.clear_config()
    # runs recorded before compile existed keep their identity; a compiled run is another run
    assert "compile" not in identities[False]["train"] and identities[True]["train"]["compile"] is True
    parse_gin([], [*TINY_PARAMS, "train.compile = 'yes'"])
    try:
        with pytest.raises(UserError, match="train.compile"):
            resolve_run_spec()
    finally:
        gin.clear_config()


def test_a_finished_run_left_alone_names_the_command_that_trains_it_again(tmp_path):
    # "use --overwrite" had been said by dlb_study too, which has no --overwrite
    from dlbench import rundir
    from dlbench.train.run import SKIPPED, left_alone

    rundir.update_run(tmp_path, status="done")
    for path in (rundir.weights_path(tmp_path), rundir.train_results_path(tmp_path)):  # what a finished run has
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    lines = []
    assert left_alone(tmp_path, lines.append) == SKIPPED
    assert lines == [f"{tmp_path}: training already finished; left alone (`dlb_train --run_dir {tmp_path} --overwrite` "
                     "trains it again from step 0)"]


@pytest.mark.parametrize("terminal, flags, bar", [(True, [], True), (True, ["--no_progress"], False),
                                                  (False, [], False)])
def test_a_dsprites_generated_for_a_training_draws_its_bar_as_the_training_does(root, tmp_path, capsys, monkeypatch,
                                                                                 terminal, flags, bar):
    # generated on first use, it had drawn its bar into pipes, logs and --no_progress runs alike
    from dlbench.cli import train as train_cli
    from dlbench.data import dsprites as D

    real = D.generate_npz
    monkeypatch.setattr(D, "generate_npz", lambda path, **kw: real(path, class_indices=TINY_GRID, **kw))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    params = tiny_params("train.steps = 2", "train.checkpoint_every = 2", "train.log_every = 1")
    args = ["--run_dir", str(tmp_path / "run"), "--device", "cpu", *flags]
    assert train_cli.main(args + [arg for p in params for arg in ("--gin_param", p)]) == 0
    err = capsys.readouterr().err
    assert "SYNTHETIC" in err and ("rendering dSprites" in err) == bar, err
