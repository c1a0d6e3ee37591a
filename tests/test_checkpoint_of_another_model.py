"""A checkpoint copied from another run (a mistake, or a sync gone wrong) is refused where it is
read: the final weights by dlb_postprocess and dlb_evaluate, a periodic checkpoint on resume.
One of another latent size fails to load anyway; one of the same shapes (another prior scale)
had been used without a word, under the run's name."""

import gin
import pytest
import torch

import dlbench.data
from dlbench import rundir
from dlbench.config import parse_gin, resolve_run_spec
from dlbench.errors import UserError
from dlbench.train import checkpoints
from dlbench.train.loop import Trainer
from dlbench.train.run import resume_from_newest_checkpoint
from tests.commands import assert_one_line_error, run_command, tree
from tests.conftest import tiny_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OTHER_SCALE = "isotropic_gaussian.scale = 2.0"


def test_a_model_config_differing_in_any_recorded_setting_is_named():
    recorded = {"architecture": "conv", "latent_dim": 3, "prior": {"name": "isotropic_gaussian", "scale": 1.0}}
    same = {"model_config": {**recorded, "latent_dim": 3.0, "observation_shape": [1, 64, 64]}}
    checkpoints.require_model(recorded, same)  # 3 and 3.0 are one setting; what run.json lacks is not compared
    with pytest.raises(checkpoints.OtherModel, match=r"model\.latent_dim is 3 in the run's config but 1 "):
        checkpoints.require_model(recorded, {"model_config": {**recorded, "latent_dim": 1}})
    other_prior = {**recorded, "prior": {"name": "isotropic_gaussian", "scale": 2.0}}
    with pytest.raises(checkpoints.OtherModel, match=r"model\.prior\.scale is 1\.0 .* but 2\.0 "):
        checkpoints.require_model(recorded, {"model_config": other_prior})


def test_a_setting_filled_in_when_training_starts_is_not_compared():
    # run.json records the PCA prior before its singular values are computed from the data
    recorded = {"prior": {"name": "anisotropic_gaussian", "init": "pca", "pca_singular_values": None}}
    stored = {"model_config": {"prior": {"name": "anisotropic_gaussian", "init": "pca",
                                         "pca_singular_values": [3.0, 2.0]}}}
    checkpoints.require_model(recorded, stored)


@pytest.fixture
def weights_of_another_scale(trained_run):
    """The final weights of trained_run, as a run of the same shapes but prior scale 2 would have
    written them (its weights, another model_config)."""
    state = torch.load(rundir.weights_path(trained_run), weights_only=True)
    state["model_config"]["prior"]["scale"] = 2.0
    checkpoints.save_atomic(state, rundir.weights_path(trained_run))
    return trained_run


@pytest.mark.parametrize("command", ["dlb_postprocess", "dlb_evaluate"])
def test_final_weights_of_another_model_are_refused_as_damaged(weights_of_another_scale, tiny_dsprites, command):
    run_dir = weights_of_another_scale
    before = tree(run_dir)
    args = ["--metrics", "mig"] if command == "dlb_evaluate" else []
    result = run_command(command, run_dir, *args, data_root=tiny_dsprites)
    assert result.returncode == 2, result.stderr
    line = assert_one_line_error(result)
    assert "the weights of another model" in line and "model.prior.scale is 1.0" in line, line
    assert f"dlb_train --run_dir {run_dir} --overwrite" in line, line
    assert tree(run_dir) == before


def _spec(*params):
    parse_gin([], tiny_params(*params))
    try:
        return resolve_run_spec()
    finally:
        gin.clear_config()


def test_resume_passes_over_a_checkpoint_of_another_model(tiny_dsprites, tmp_path):
    data = dlbench.data.get_dataset("dsprites")
    own = Trainer(_spec(), data, torch.device("cpu"))
    rundir.checkpoints_dir(tmp_path).mkdir(parents=True)
    for step in (2, 4):
        own.run(step, 10**9, lambda *_: None)
        checkpoints.save_checkpoint(tmp_path, own.state_dict())
    other = Trainer(_spec(OTHER_SCALE), data, torch.device("cpu"))
    other.run(4, 10**9, lambda *_: None)
    newest = rundir.checkpoint_path(tmp_path, 4)
    checkpoints.save_atomic(other.state_dict(), newest)  # copied over the run's newest
    lines = []
    trainer = Trainer(_spec(), data, torch.device("cpu"))
    resume_from_newest_checkpoint(tmp_path, trainer, lines.append)
    assert f"'{newest}' is not a checkpoint of this run (model.prior.scale is 1.0" in lines[0], lines
    assert trainer.step == 2, lines
    # and with none of its own left, resume says so instead of training on the other model
    rundir.checkpoint_path(tmp_path, 2).unlink()
    with pytest.raises(UserError, match="no readable checkpoint"):
        resume_from_newest_checkpoint(tmp_path, Trainer(_spec(), data, torch.device("cpu")), lines.append)
