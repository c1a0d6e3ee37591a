"""Every configurable value has a declared type and range, checked when the config is resolved:
one UserError naming the binding, before anything is written."""

import inspect
import json
import re

import gin
import pytest

from dlbench import checks
from dlbench.config import dataset_settings, model_settings, parse_gin, resolve_run_spec, train_settings
from dlbench.errors import UserError
from dlbench.methods import METHODS
from dlbench.priors import PRIORS

from tests.conftest import TINY_PARAMS


def _parameters(configurable):
    target = configurable.__init__ if inspect.isclass(configurable) else configurable
    target = inspect.unwrap(target)
    return [p for p in inspect.signature(target).parameters if p not in ("self", "latent_dim")]


def every_binding():
    """(configurable name, parameter, extra bindings that make it take effect) for every parameter
    of every configurable a run resolves: train, dataset, model, each method, each prior."""
    for name, fn in (("train", train_settings), ("dataset", dataset_settings), ("model", model_settings)):
        for param in _parameters(fn):
            yield name, param, []
    for name, cls in sorted(METHODS.items()):
        for param in _parameters(cls):
            yield name, param, [f"train.method = @{name}()"]
    for name, cls in sorted(PRIORS.items()):
        for param in _parameters(cls):
            # the mixture's default means are the paper's 2-D ones
            latent = ["model.latent_dim = 2"] if name == "gaussian_mixture" else []
            yield name, param, [f"model.prior = '{name}'", *latent]


BINDINGS = list(every_binding())


@pytest.fixture(autouse=True)
def no_bindings_left():
    """Each test's bindings end with it: a prior made later in the same process reads gin's (a sparse mixture
    of tests/test_priors.py had taken this file's sparse_mixture.sigma0_sq = 3e-39)."""
    yield
    gin.clear_config()


def resolve(*bindings):
    parse_gin([], [*TINY_PARAMS, *bindings])
    return resolve_run_spec()


def test_the_tiny_config_resolves():
    assert resolve().train["steps"] == 20


@pytest.mark.parametrize("configurable, param, extra", BINDINGS, ids=[f"{c}.{p}" for c, p, _ in BINDINGS])
@pytest.mark.parametrize("nonsense", ["'abc'", "{'x': None}"])
def test_a_value_of_the_wrong_type_names_its_binding(configurable, param, extra, nonsense):
    with pytest.raises(UserError) as err:
        resolve(*extra, f"{configurable}.{param} = {nonsense}")
    message = str(err.value)
    assert "\n" not in message
    assert f"{configurable}.{param}" in message or (configurable, param) == ("model", "prior"), message


@pytest.mark.parametrize("binding, needle", [
    ("train.steps = 1.5", "train.steps must be an integer >= 1, got 1.5"),
    ("train.steps = True", "train.steps must be an integer >= 1, got True"),
    ("train.batch_size = 0", "train.batch_size must be an integer >= 1, got 0"),
    ("train.lr = -1e-3", "train.lr must be a number in [1.41e-45, 3.4e+38]"),
    ("train.seed = -1", "train.seed must be an integer in [0, 4294967295], got -1"),
    ("train.adam_betas = (0.9,)", "train.adam_betas must be a list of 2 numbers"),
    ("train.checkpoint_minutes = -1", "train.checkpoint_minutes must be a number >= 0"),
    ("model.latent_dim = 0", "model.latent_dim must be an integer >= 1, got 0"),
    ("model.architecture = 'resnet'", "model.architecture must be one of"),
    ("beta_vae.beta = -1.0", "beta_vae.beta must be a number >= 0, got -1.0"),
    ("beta_vae.beta = 'abc'", "beta_vae.beta must be a number >= 0, got 'abc'"),
    ("beta_vae.beta = nan", None),
    ("beta_vae.beta = 1e309", "beta_vae.beta must be a finite number >= 0 that float32 holds"),  # had said "a number >= 0"
    # finite, but inf as a float32: torch had refused them in a traceback once training began
    ("train.lr = 1e39", "train.lr must be a number in [1.41e-45, 3.4e+38] (float32 rounds a smaller one to 0, and Adam "
                        "would then take no step), got 1e+39"),
    ("beta_vae.beta = -1e39", "beta_vae.beta must be a finite number >= 0 that float32 holds"),
])
def test_ranges(binding, needle):
    if needle is None:  # gin has no NaN literal: float('nan') cannot be typed, so 'nan' is a reference error
        with pytest.raises(UserError):
            resolve(binding)
        return
    with pytest.raises(UserError, match=re.escape(needle)):
        resolve(binding)


@pytest.mark.parametrize("method", ["isa_vae", "isa_tcvae"])
def test_isa_methods_refuse_a_negative_beta(method):
    with pytest.raises(UserError, match=f"{method}.beta must be a number >= 0, got -2.0"):
        resolve(f"train.method = @{method}()", "model.prior = 'lp_nested_isa'", "model.latent_dim = 20",
                f"{method}.beta = -2.0")


def test_checks_return_the_declared_type():
    assert checks.integer("x", 3) == 3 and type(checks.integer("x", 3)) is int
    assert checks.number("x", 3) == 3.0 and type(checks.number("x", 3)) is float
    assert checks.numbers("x", (1, 2.5), length=2) == [1.0, 2.5]
    assert checks.flag("x", False) is False
    for bad in (1.0, "1", True, None):
        with pytest.raises(UserError):
            checks.integer("x", bad)
    for bad in (float("inf"), float("nan"), "1", None, True):
        with pytest.raises(UserError):
            checks.number("x", bad)
    with pytest.raises(UserError):
        checks.flag("x", 1)


# --- values float32 cannot use --------------------------------------------------------------------
# Each had passed as a positive number and ended training at its first steps, exit 1, the run marked
# failed: a variance whose reciprocal is inf in float32, a scale whose square is, an epsilon that is 0.

MIXTURE_2D = ["model.prior = 'gaussian_mixture'", "model.latent_dim = 2"]
GIVEN_VARIANCES = ["model.prior = 'anisotropic_gaussian'", "anisotropic_gaussian.init = 'given'",
                   "model.latent_dim = 2"]
VARIANCE_RANGE = "must be a number in [2.94e-39, 3.4e+38] ("
SCALE_RANGE = "isotropic_gaussian.scale must be a number in [5.43e-20, 1.84e+19] (a standard deviation"

FLOAT32_UNUSABLE = [
    (["isotropic_gaussian.scale = 1e-30"], SCALE_RANGE),
    (["isotropic_gaussian.scale = 1e20"], SCALE_RANGE),  # its square is inf
    (["model.prior = 'sparse_mixture'", "sparse_mixture.sigma0_sq = 1e-40"],
     "sparse_mixture.sigma0_sq " + VARIANCE_RANGE),
    ([*MIXTURE_2D, "gaussian_mixture.variance = 1e-40"], "gaussian_mixture.variance " + VARIANCE_RANGE),
    (["model.prior = 'student_t'", "student_t.nu = 1e-46"], "student_t.nu " + VARIANCE_RANGE),  # 0 in float32
    ([*GIVEN_VARIANCES, "anisotropic_gaussian.variances = [1e-40, 1.0]"],
     "anisotropic_gaussian.variances must each be at least 2.94e-39 times their mean"),
    (["train.adam_eps = 1e-50"], "train.adam_eps must be a number in [1.41e-45, 3.4e+38] (float32 rounds"),
    # 0 in float32: Adam took no step, and the run ended "done" with the weights it started from
    (["train.lr = 1e-50"], "train.lr must be a number in [1.41e-45, 3.4e+38] (float32 rounds a smaller one to 0, "
                           "and Adam would then take no step)"),
    (["train.method = @factor_vae()", "factor_vae.discriminator_lr = 1e-50"],
     "factor_vae.discriminator_lr must be a number in [1.41e-45, 3.4e+38]"),
]


@pytest.mark.parametrize("bindings, needle", FLOAT32_UNUSABLE, ids=[b[-1] for b, _ in FLOAT32_UNUSABLE])
def test_a_value_float32_cannot_use_is_refused_with_the_range_it_can(bindings, needle):
    with pytest.raises(UserError, match=re.escape(needle)):
        resolve(*bindings)


FLOAT32_USABLE = [  # each trains (checked on the linear-Gaussian model); the tiny ones just inside their ranges
    ["isotropic_gaussian.scale = 1e-18"],
    ["isotropic_gaussian.scale = 1e10"],
    ["model.prior = 'sparse_mixture'", "sparse_mixture.sigma0_sq = 3e-39"],
    ["model.prior = 'sparse_mixture'", "sparse_mixture.sigma0_sq = 3e38"],
    [*MIXTURE_2D, "gaussian_mixture.variance = 1e-30"],
    ["model.prior = 'student_t'", "student_t.nu = 1e30"],
    [*GIVEN_VARIANCES, "anisotropic_gaussian.variances = [1e-30, 1.0]"],
    ["train.adam_eps = 1e-44"],  # a float32 subnormal, not 0
    ["train.lr = 1e-44"],
]


@pytest.mark.parametrize("bindings", FLOAT32_USABLE, ids=[b[-1] for b in FLOAT32_USABLE])
def test_a_value_float32_can_use_passes(bindings):
    resolve(*bindings)


@pytest.mark.parametrize("check", [checks.divisor, checks.scale,
                                   lambda binding, value: checks.nonzero_in_float32(binding, value, "why")])
def test_the_range_a_refusal_says_passes_whole(check):
    # the ends are said to 3 digits, rounded inward: 5.421e-20 said as 5.42e-20 would refuse 5.42e-20
    with pytest.raises(UserError) as err:
        check("x", -1.0)
    low, high = re.search(r"in \[(\S+), (\S+)\]", str(err.value)).groups()
    assert check("x", float(low)) == float(low) and check("x", float(high)) == float(high)


@pytest.mark.parametrize("binding", ["isotropic_gaussian.scale = 1e-18", "sparse_mixture.sigma0_sq = 3e-39"])
def test_a_tiny_value_float32_can_use_trains(tmp_path, binding):
    # the sparse mixture's on component carries a loss whose off component underflows to -inf
    from tests.commands import run_in_process

    prior = binding.partition(".")[0]
    args = ["--gin", "linear_gaussian_beta_vae.gin", "--run_dir", tmp_path / "run", "--device", "cpu",
            "--no_progress", "--gin_param", f"model.prior = '{prior}'", "--gin_param", binding,
            "--gin_param", "train.steps = 30", "--gin_param", "train.checkpoint_every = 30"]
    result = run_in_process("dlb_train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "done"
