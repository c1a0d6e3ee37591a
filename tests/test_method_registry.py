"""Every method's gin file trains through dlb_train into a standard run directory and is
evaluated by dlb_evaluate, with nothing method-specific in those stages; the README documents
every method."""

import json
import re
from pathlib import Path

import pytest
import torch

from dlbench.cli import evaluate as evaluate_cli
from dlbench.cli import train as train_cli
from dlbench.evaluation import metric_result_path
from dlbench.methods import METHODS

REPO = Path(__file__).resolve().parent.parent
METHOD_GINS = {name: REPO / "gin" / f"{name}.gin" for name in sorted(METHODS)}

# The gin file's protocol, shrunk to seconds on the 384-image grid (the architecture, prior and
# method settings stay the gin file's own, except sizes that must shrink with them).
SHRINK = ["train.steps = 6", "train.batch_size = 16", "train.log_every = 3", "train.checkpoint_every = 3"]
SHRINK_PER_METHOD = {"factor_vae": ["factor_vae.discriminator_width = 64"]}


def test_every_method_has_one_signature_and_no_state_between_its_calls():
    import inspect

    from dlbench.methods.base import Method

    for name, cls in METHODS.items():
        for hook in ("objective", "draw", "loss", "after_step"):
            assert inspect.signature(getattr(cls, hook)) == inspect.signature(getattr(Method, hook)), (name, hook)
        # loss() is the base class's for all: the trainer calls model and objective itself
        assert cls.loss is Method.loss, name


def test_every_setting_of_a_method_is_in_its_recorded_hyperparameters():
    # a setting left out of hyperparameters() is not part of the run's identity: a run with
    # another value of it would be taken for the finished run ("left alone") and counted as its copy
    import inspect

    for name, cls in METHODS.items():
        settings = {p for p in inspect.signature(cls.__init__).parameters if p != "self"}
        assert set(cls().hyperparameters()) == settings, name


def test_every_registered_method_has_a_gin_file_and_a_readme_entry():
    readme = (REPO / "README.md").read_text()
    for name, gin_file in METHOD_GINS.items():
        assert gin_file.is_file(), f"{name} has no gin/{name}.gin"
        assert f"| `{name}` | `gin/{name}.gin` |" in readme, f"{name} is missing from the README's methods table"


@pytest.mark.parametrize("name", sorted(METHOD_GINS))
def test_each_method_trains_and_evaluates_through_the_generic_stages(tiny_dsprites, tmp_path, name):
    run_dir = tmp_path / name
    args = ["--gin", str(METHOD_GINS[name]), "--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in SHRINK + SHRINK_PER_METHOD.get(name, []):
        args += ["--gin_param", binding]
    assert train_cli.main(args) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == name and record["status"] == "done"
    metrics = ["--metrics", "mig,recon_ll", "--metric_param", "mig.num_train=300",
               "--metric_param", "recon_ll.num_points=100"]
    assert evaluate_cli.main([str(run_dir), "--device", "cpu"] + metrics) == 0
    for metric in ("mig", "recon_ll"):
        params = {"mig": {"num_train": 300}, "recon_ll": {"num_points": 100}}[metric]
        assert metric_result_path(run_dir, "mean", metric, params).is_file()


def _objective_returning(loss, scalars):
    def objective(outputs, step=0, draws=None):
        return (loss(outputs), scalars) if scalars is not None else loss(outputs)
    return objective


@pytest.mark.parametrize("loss, scalars, said", [
    (lambda o: -o.log_px, {}, "returned a tensor of shape (16,) as the loss; it must return a 0-d"),
    (lambda o: 1.0, {}, "returned a float as the loss"),
    (lambda o: -o.log_px.mean(), None, "returned a Tensor; it must return (loss, scalars)"),
    (lambda o: -o.log_px.mean(), {"kl": torch.zeros(3)}, "returned the scalar 'kl' of shape (3,); every scalar"),
    (lambda o: -o.log_px.mean(), [], "returned a list as its scalars")])
@pytest.mark.parametrize("stacked", [False, True], ids=["alone", "stacked"])
def test_an_objective_that_returns_no_0d_loss_and_scalars_is_named_at_its_first_step(tiny_dsprites, loss, scalars,
                                                                                     said, stacked):
    # torch had said "grad can be implicitly created only for scalar outputs", or "'float' object has no
    # attribute 'backward'", naming no method
    import gin

    from dlbench.config import parse_gin, resolve_run_spec
    from dlbench.data import get_dataset
    from dlbench.train.loop import Trainer
    from dlbench.train.stack import StackedTrainer
    from tests.conftest import TINY_PARAMS

    try:
        parse_gin([], TINY_PARAMS)
        spec = resolve_run_spec()
    finally:
        gin.clear_config()
    spec.train["method"].objective = _objective_returning(loss, scalars)
    data = get_dataset("dsprites")
    with pytest.raises(TypeError, match=f"dlbench.methods.beta_vae.BetaVAE.objective {re.escape(said)}"):
        if stacked:
            StackedTrainer([spec, spec], data=data, device=torch.device("cpu")).train_step(16)
        else:
            Trainer(spec, data, torch.device("cpu")).run(1, 1, on_log=lambda *_: None)
