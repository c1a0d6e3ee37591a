"""dlb_evaluate --representation: any representation (a TorchScript file or a Python callable)
scored on a registered dataset with the same metrics and results files, and every way such a
module can be wrong refused with one line before anything is written."""

import json
import textwrap

import numpy as np
import pytest
import torch

from dlbench.metrics import evaluate
from tests.commands import assert_one_line_error, run_command, run_in_process, tree
from tests.conftest import TINY_GRID

FAST = ["--metrics", "mig,factor_vae", "--metric_param", "mig.num_train=300",
        "--metric_param", "factor_vae.num_train=50", "--metric_param", "factor_vae.num_eval=30",
        "--metric_param", "factor_vae.num_variance_estimate=200"]


class PoolCodes(torch.nn.Module):
    """A fixed representation: each code dimension the mean intensity of a quarter of the image."""

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 2)
        return pooled.reshape(x.shape[0], -1)


def save_script(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def results_of(out, metric, params):
    from dlbench.evaluation import metric_result_path

    return json.loads(metric_result_path(out, "mean", metric, params).read_text())


def test_a_torchscript_file_gets_the_results_the_metric_functions_give(tiny_dsprites, tmp_path):
    script = save_script(PoolCodes(), tmp_path / "pool.pt")
    out = tmp_path / "out"
    result = run_command("dlb_evaluate", "--representation", script, "--dataset", "dsprites", "--out", out,
                         "--device", "cpu", *FAST, data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr
    mig = results_of(out, "mig", {"num_train": 300})
    assert mig["representation"] == str(script) and mig["dataset"] == "dsprites"

    # the same numbers as the metric function called directly with the module
    from dlbench.data import get_dataset

    import os
    os.environ["DLBENCH_DATA"] = str(tiny_dsprites)
    data = get_dataset("dsprites")
    module = PoolCodes()
    fn = lambda obs: module(torch.as_tensor(obs)).numpy()
    direct = evaluate("mig", data, fn, seed=0, num_train=300)
    assert mig["discrete_mig"] == pytest.approx(direct["discrete_mig"], abs=1e-12)


def test_a_python_callable_is_imported_from_the_current_folder(tiny_dsprites, tmp_path):
    (tmp_path / "mycodes.py").write_text(textwrap.dedent("""
        import torch
        def encode(x):
            return x.mean(dim=(2, 3)).repeat(1, 3) * torch.tensor([1.0, 2.0, 3.0])
    """))
    result = run_command("dlb_evaluate", "--representation", "mycodes:encode", "--dataset", "dsprites",
                         "--out", tmp_path / "out", "--device", "cpu", "--metrics", "mig",
                         "--metric_param", "mig.num_train=300", data_root=tiny_dsprites, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert results_of(tmp_path / "out", "mig", {"num_train": 300})["discrete_mig"] >= 0


BAD_MODULES = {
    "raises": ("def encode(x):\n    raise ValueError('boom')\n", "raised ValueError"),
    "nan": ("import torch\ndef encode(x):\n    return torch.full((x.shape[0], 2), float('nan'))\n", "non-finite"),
    "batch": ("import torch\ndef encode(x):\n    return torch.zeros(8, 2)\n", "rows for a batch of 3"),
    "shape": ("import torch\ndef encode(x):\n    return torch.zeros(x.shape[0], 2, 2)\n", "return (n, D) codes"),
    "columns": ("import torch\ndef encode(x):\n    return torch.zeros(x.shape[0], 0)\n", "no columns, for 3 observations"),
    "dtype": ("import torch\ndef encode(x):\n    return torch.zeros(x.shape[0], 2, dtype=torch.int64)\n", "dtype int64"),
    "type": ("def encode(x):\n    return [1, 2]\n", "returned a list; return a tensor or a numpy array"),
    # both had ended dlb_evaluate with exit status 3 and not a word
    "exits": ("import sys\ndef encode(x):\n    sys.exit(3)\n",
              "--representation called sys.exit(3) on a batch of shape (3, 1, 64, 64)"),
    "exits_on_import": ("import sys\nsys.exit(3)\n", "--representation 'bad:encode': importing bad called sys.exit(3)"),
    # both had ended in a traceback from .numpy(), outside the guarded call
    "meta": ("def encode(x):\n    return x.flatten(1)[:, :4].to('meta')\n",
             "returned a tensor on the meta device, which holds no values numpy can read"),
    "sparse": ("def encode(x):\n    return x.flatten(1)[:, :4].to_sparse()\n",
               "returned a sparse tensor (torch.sparse_coo), which holds no values numpy can read"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODULES))
def test_a_wrong_module_is_one_line_and_nothing_is_written(tiny_dsprites, tmp_path, case):
    source, needle = BAD_MODULES[case]
    (tmp_path / "bad.py").write_text(source)
    before = tree(tmp_path)
    result = run_command("dlb_evaluate", "--representation", "bad:encode", "--dataset", "dsprites",
                         "--out", tmp_path / "out", "--device", "cpu", "--metrics", "mig",
                         data_root=tiny_dsprites, cwd=tmp_path)
    assert_one_line_error(result, "--representation", needle)
    assert [p for p in tree(tmp_path) if "__pycache__" not in p] == before


@pytest.mark.parametrize("args, needle", [
    (["--representation", "nothing.pt", "--dataset", "dsprites", "--out", "o"], "neither a file nor module.path:function"),
    (["--representation", "nomodule_here:fn", "--dataset", "dsprites", "--out", "o"], "importing nomodule_here failed"),
    (["--representation", "garbage.pt", "--dataset", "dsprites", "--out", "o"], "is not a TorchScript module"),
    # the advice had been to save a module over the file given (a run's checkpoint.pt, say)
    (["--representation", "garbage.pt", "--dataset", "dsprites", "--out", "o"], "'codes.pt'), or give MODULE:FUNCTION"),
    # a file of codes had been told to be saved with torch.jit.script, which the README's own example avoids
    (["--representation", "garbage.npy", "--dataset", "dsprites", "--out", "o"],
     "(arrays of codes cannot be scored: the metrics draw observations of their own and encode them, so give the "
     "encoder); save one with torch.jit.save(torch.jit.trace(module, example_images)"),
    (["--representation", "garbage.py:fn", "--dataset", "dsprites", "--out", "o"],
     "names a file, not a module: give garbage:fn"),
    (["--representation", "garbage.pt", "--out", "o"], "--dataset"),
    (["--representation", "garbage.pt", "--dataset", "dsprites"], "--out"),
    (["--representation", "garbage.pt", "--dataset", "nope", "--out", "o"], "unknown dataset"),
    (["RUN", "--representation", "garbage.pt", "--dataset", "dsprites", "--out", "o"], "either RUN_DIR or --representation"),
    (["--representation", "garbage.pt", "--dataset", "dsprites", "--out", "o", "--metrics", "recon_ll"],
     "recon_ll needs the model (the model's encoder and decoder)"),
    (["--representation", "garbage.pt", "--dataset", "dsprites", "--out", "o", "--metrics", "aggregate_kl"],
     "aggregate_kl needs the model (the model's encoder and prior)"),
])
def test_mistakes_in_the_command_are_one_line(tiny_dsprites, tmp_path, args, needle):
    (tmp_path / "garbage.pt").write_bytes(b"not a module")
    np.save(tmp_path / "garbage.npy", np.zeros((384, 4), dtype=np.float32))
    before = tree(tmp_path)
    result = run_in_process("dlb_evaluate", *args, data_root=tiny_dsprites, cwd=tmp_path)
    assert_one_line_error(result, needle)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("given, said", [
    (["--out", "o"], "--representation needs --dataset (the dataset to evaluate on)"),
    (["--dataset", "dsprites"], "--representation needs --out (the folder for results)"),
    ([], "--representation needs --dataset (the dataset to evaluate on) and --out (the folder for results)"),
])
def test_a_missing_dataset_or_out_is_explained_alone(tmp_path, given, said):
    # both had ended in "(the dataset to evaluate on, the folder for results)", whichever was missing
    result = run_in_process("dlb_evaluate", "--representation", "codes.pt", *given, cwd=tmp_path)
    assert assert_one_line_error(result, said).endswith(said)
    assert tree(tmp_path) == []


def test_masked_codes_are_refused_and_an_array_with_nothing_masked_is_taken():
    # the metrics read the values under a mask: a fully masked array had been called "non-finite codes",
    # a partly masked one of finite values was taken as it stood
    import numpy as np

    from dlbench.errors import UserError
    from dlbench.external import _checked_codes

    values = np.arange(6.0).reshape(3, 2)
    for mask, masked in ((True, 6), ([[False, True], [False, False], [False, False]], 1)):
        with pytest.raises(UserError, match=rf"masked array with {masked} of its 6 codes masked.*\.filled\(\)"):
            _checked_codes(np.ma.masked_array(values, mask=mask), 3, "--representation")
    taken = _checked_codes(np.ma.masked_array(values, mask=False), 3, "--representation")
    assert type(taken) is np.ndarray and np.array_equal(taken, values)


def test_what_a_metric_needs_of_the_model_is_named_from_the_functions_it_takes():
    from dlbench.evaluation import MODEL_PARTS, model_parts
    from dlbench.model_functions import MODEL_FUNCTIONS

    assert set(MODEL_PARTS) == set(MODEL_FUNCTIONS)  # a new model function must say what it runs
    assert model_parts("aggregate_kl") == "encoder and prior"  # q(z) from the encoder against p(z)
    assert model_parts("iwae") == "encoder, decoder and prior"  # importance weights p(x|z) p(z) / q(z|x)
    assert model_parts("mig_chen") == "encoder"



def test_the_readmes_pooled_pixels_example_runs_as_written(tmp_path):
    # it had scripted a class read from standard input, which TorchScript cannot (no source file)
    import re
    import subprocess
    import sys

    from tests.commands import REPO

    readme = (REPO / "README.md").read_text()
    script = re.search(r"```\npython - <<'PY'\n(.*?)\nPY\ndlb_evaluate --representation pool\.pt", readme, re.DOTALL)[1]
    result = subprocess.run([sys.executable, "-"], input=script, text=True, capture_output=True, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    codes = torch.jit.load(str(tmp_path / "pool.pt"))(torch.rand(5, 1, 64, 64))
    assert codes.shape == (5, 16)


class ZeroCodes(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0], 3)


def evaluate_in_process(script, out, dataset="dsprites", *extra):
    from dlbench.cli import evaluate as evaluate_cli

    return evaluate_cli.main(["--representation", str(script), "--dataset", dataset, "--out", str(out), "--device",
                              "cpu", "--metrics", "mig", "--metric_param", "mig.num_train=300", *map(str, extra)])


def evaluated(capsys, script, out, dataset="dsprites", *extra):
    """evaluate_in_process as a CompletedProcess for assert_one_line_error."""
    import subprocess

    capsys.readouterr()
    code = evaluate_in_process(script, out, dataset, *extra)
    stdout, stderr = capsys.readouterr()
    return subprocess.CompletedProcess([], code, stdout, stderr)


def test_a_stored_result_is_reused_only_for_the_same_representation_unchanged(tiny_dsprites, tmp_path, capsys,
                                                                                 monkeypatch):
    # the file behind the same path changed, or another dataset: the stored MIG had been handed back
    script, out = save_script(PoolCodes(), tmp_path / "codes.pt"), tmp_path / "out"
    assert evaluate_in_process(script, out) == 0
    pooled = results_of(out, "mig", {"num_train": 300})
    assert pooled["discrete_mig"] > 0
    result = evaluated(capsys, script, out)  # unchanged: kept, and said so
    assert result.returncode == 0 and "kept the results stored for it of mig" in result.stdout
    assert results_of(out, "mig", {"num_train": 300}) == pooled

    save_script(ZeroCodes(), script)  # another module at the same path: its results are not the folder's
    assert_one_line_error(evaluated(capsys, script, out), "holds results of an earlier", "(the file has changed since)",
                          "pass --overwrite")
    assert results_of(out, "mig", {"num_train": 300}) == pooled
    assert evaluate_in_process(script, out, "dsprites", "--overwrite") == 0
    assert results_of(out, "mig", {"num_train": 300})["discrete_mig"] == 0  # constant codes carry no information
    assert_one_line_error(evaluated(capsys, script, out, "noisy_dsprites"), "on dsprites (mig[num_train=300])")
    assert evaluate_in_process(script, out, "noisy_dsprites", "--overwrite") == 0
    assert results_of(out, "mig", {"num_train": 300})["dataset"] == "noisy_dsprites"

    # another grid of the same dataset's name (a DLBENCH_DATA elsewhere): its MIG had been handed back
    from dlbench.data.dsprites import FILENAME, generate_npz

    other_root = tmp_path / "other_grid"
    generate_npz(other_root / "dsprites" / FILENAME, class_indices={**TINY_GRID, "posX": [0, 8, 16, 24, 31]})
    assert evaluate_in_process(script, out, "dsprites", "--overwrite") == 0
    monkeypatch.setenv("DLBENCH_DATA", str(other_root))
    assert_one_line_error(evaluated(capsys, script, out), "on dsprites (another grid of it)")
    result = evaluated(capsys, script, out, "dsprites", "--overwrite")
    assert result.returncode == 0 and "kept the results" not in result.stdout
    assert results_of(out, "mig", {"num_train": 300})["dataset_shape"]["observations"] == 480
    # a grid of that very shape that kept other positions: its results had been kept as this one's
    same_shape_root = tmp_path / "same_shape_grid"
    generate_npz(same_shape_root / "dsprites" / FILENAME, class_indices={**TINY_GRID, "posX": [1, 9, 17, 25, 30]})
    monkeypatch.setenv("DLBENCH_DATA", str(same_shape_root))
    assert_one_line_error(evaluated(capsys, script, out), "on dsprites (another grid of it)")


def test_an_out_never_mixes_two_representations_results(tiny_dsprites, tmp_path, capsys):
    # the second dataset's mig had replaced the first's without a word, beside the first's sap
    script, out = save_script(PoolCodes(), tmp_path / "codes.pt"), tmp_path / "out"
    assert evaluate_in_process(script, out, "dsprites", "--metrics", "sap", "--metric_param", "sap.num_train=100",
                               "--metric_param", "sap.num_test=100") == 0
    before = tree(out)
    assert_one_line_error(evaluated(capsys, script, out, "noisy_dsprites"),
                          f"--out '{out}' holds results of {script} on dsprites (mig[num_train=300], sap[",
                          "choose another --out")
    assert tree(out) == before
    result = evaluated(capsys, script, out, "noisy_dsprites", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert f"removed the results of {script} on dsprites (--overwrite; one folder holds one representation's " \
        "results): mig[num_train=300], sap[" in result.stdout
    stored = [json.loads(path.read_text())["dataset"] for path in out.glob("metrics/mean/*/results.json")]
    assert stored == ["noisy_dsprites"]


@pytest.mark.parametrize("stopped_at", ["mig", "sap"])
def test_an_overwrite_stopped_midway_leaves_the_new_representations_results_alone(tiny_dsprites, tmp_path,
                                                                                   monkeypatch, stopped_at):
    # the other representation's results were removed once every metric was computed: a stop after
    # the new mig had kept it beside the old sap
    from dlbench import evaluation

    sap = ["--metric_param", "sap.num_train=100", "--metric_param", "sap.num_test=100"]
    pooled, zeros, out = save_script(PoolCodes(), tmp_path / "pool.pt"), save_script(ZeroCodes(), tmp_path / "z.pt"), \
        tmp_path / "out"
    assert evaluate_in_process(pooled, out, "dsprites", "--metrics", "sap", *sap) == 0
    compute = evaluation.metrics.evaluate

    def stopped(name, *args, **kwargs):
        if name == stopped_at:
            raise KeyboardInterrupt
        return compute(name, *args, **kwargs)

    monkeypatch.setattr(evaluation.metrics, "evaluate", stopped)
    assert evaluate_in_process(zeros, out, "dsprites", "--metrics", "sap", *sap, "--overwrite") == 130
    stored = {path.parent.name: json.loads(path.read_text())["representation"]
              for path in out.glob("metrics/*/*/results.json")}
    assert stored == ({} if stopped_at == "mig" else {"mig[num_train=300]": str(zeros)})


def test_a_run_directory_is_refused_as_out(trained_run, tmp_path, capsys):
    # the representation's results would have passed for the run's own model's
    from dlbench.evaluation import metric_result_path

    script = save_script(PoolCodes(), tmp_path / "codes.pt")
    assert evaluate_in_process(script, trained_run) == 2
    assert "is a run directory of dlb_train" in capsys.readouterr().err
    assert not metric_result_path(trained_run, "mean", "mig", {"num_train": 300}).exists()
    # nor a folder inside one (results under RUN/metrics/metrics/ had been written)
    before = sorted(p for p in trained_run.rglob("*"))
    assert evaluate_in_process(script, trained_run / "metrics") == 2
    assert f"is inside '{trained_run.absolute()}', a run directory of dlb_train" in capsys.readouterr().err
    assert sorted(p for p in trained_run.rglob("*")) == before


def test_a_study_root_is_refused_as_out(tiny_dsprites, tmp_path, capsys):
    # a study's root holds its runs: results written there, or in a folder of it, are read by no
    # aggregation (it reads run directories), and the folder may be a run's place later
    root = tmp_path / "study"
    root.mkdir()
    (root / "study.json").write_text('{"name": "mine"}')
    script = save_script(PoolCodes(), tmp_path / "codes.pt")
    assert evaluate_in_process(script, root) == 2
    assert "is the runs root of a study" in capsys.readouterr().err
    assert evaluate_in_process(script, root / "mine") == 2
    assert f"is inside '{root.absolute()}', the runs root of a study" in capsys.readouterr().err
    assert sorted(p.name for p in root.rglob("*")) == ["study.json"]


def test_a_folder_of_runs_is_refused_as_out(tiny_trained_run, tiny_dsprites, tmp_path, capsys):
    # results written beside dlb_train runs had been accepted, and dlb_aggregate of the folder
    # shows the runs without them: a representation is never aggregated with runs
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(tiny_trained_run, runs / "group" / "b8")
    before = sorted(runs.rglob("*"))
    script = save_script(PoolCodes(), tmp_path / "codes.pt")
    assert evaluate_in_process(script, runs) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out '{runs}' holds dlb_train runs ('{runs / 'group' / 'b8'}')" in err, err
    assert sorted(runs.rglob("*")) == before
    assert evaluate_in_process(script, tmp_path / "elsewhere") == 0  # a folder of no runs is taken


@pytest.mark.parametrize("kind, said", [("EACCES", "Permission denied"), ("EROFS", "Read-only file system")])
def test_an_out_it_may_not_write_in_is_found_before_anything_is_computed(tiny_dsprites, tmp_path, kind, said):
    # the metric had been computed before its result met the folder; a read-only disk had been
    # said to deny permission, with the advice to change it
    from tests.test_hardening import fault

    script, out = save_script(PoolCodes(), tmp_path / "codes.pt"), tmp_path / "out"
    (out / "metrics" / "mean").mkdir(parents=True)
    result = run_command("dlb_evaluate", "--representation", script, "--dataset", "dsprites", "--out", out,
                         "--metrics", "mig", "--metric_param", "mig.num_train=300", data_root=tiny_dsprites,
                         fault=fault(kind, out, "metrics/mean*"))
    assert_one_line_error(result, f"cannot use '{out / 'metrics' / 'mean'}': {said}")
    assert "mig" not in result.stdout and not list((out / "metrics" / "mean").iterdir())


def test_an_interruption_keeps_the_metrics_computed(tiny_dsprites, tmp_path, monkeypatch, capsys):
    from dlbench import evaluation

    compute = evaluation.metrics.evaluate

    def interrupted_at_sap(name, *args, **kwargs):
        if name == "sap":
            raise KeyboardInterrupt
        return compute(name, *args, **kwargs)

    monkeypatch.setattr(evaluation.metrics, "evaluate", interrupted_at_sap)
    script, out = save_script(PoolCodes(), tmp_path / "codes.pt"), tmp_path / "out"
    capsys.readouterr()
    assert evaluate_in_process(script, out, "dsprites", "--metrics", "sap") == 130
    assert results_of(out, "mig", {"num_train": 300})["discrete_mig"] > 0
    # the line had said "interrupted by SIGINT" alone
    assert capsys.readouterr().err == (f"dlb_evaluate: {out}: evaluation stopped by SIGINT after 1 of 2 metrics (mig), "
                                       "kept; the same command computes the others\n")


def test_codes_of_another_width_than_the_probes_are_one_line_and_nothing_is_stored(tiny_dsprites, tmp_path):
    # 5 columns on the probe, 3 on the metric's batches had been scored (MIG 0.596, exit 0)
    (tmp_path / "narrows.py").write_text("def encode(x):\n    z = x.flatten(1)[:, :5]\n"
                                         "    return z if x.shape[0] <= 3 else z[:, :3]\n")
    before = tree(tmp_path)
    result = run_command("dlb_evaluate", "--representation", "narrows:encode", "--dataset", "dsprites",
                         "--out", tmp_path / "out", "--device", "cpu", "--metrics", "mig",
                         "--metric_param", "mig.num_train=300", data_root=tiny_dsprites, cwd=tmp_path)
    assert_one_line_error(result, "--representation changed its code width from 5 columns (on a batch of 3 "
                          "observations) to 3 (on a batch of 64)", "return the same number of columns for every batch")
    assert "discrete_mig" not in result.stdout
    assert [p for p in tree(tmp_path) if "__pycache__" not in p] == before


def test_a_width_that_changes_within_one_call_is_one_line_not_a_concatenation_error():
    # numpy's ValueError from np.concatenate had been a traceback
    import numpy as np

    from dlbench.errors import UserError
    from dlbench.external import numpy_codes_fn, numpy_encode_fn

    by_parity = lambda x: x.flatten(1)[:, :5] if len(x) % 2 == 0 else x.flatten(1)[:, :4]
    with pytest.raises(UserError, match=r"changed its code width from 5 columns \(on a batch of 2 observations\) "
                                        r"to 4 \(on a batch of 1\)"):
        numpy_codes_fn(by_parity, "cpu", batch_size=2)(np.zeros((3, 1, 4, 4), np.float32))
    gaussian = lambda x: (by_parity(x), by_parity(x))
    with pytest.raises(UserError, match=r"--encoder mean changed its code width from 5 columns"):
        numpy_encode_fn(gaussian, "cpu", batch_size=2)(np.zeros((3, 1, 4, 4), np.float32))


class ThreeChannelCodes(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


class RaisesInScript(torch.nn.Module):
    def forward(self, x):
        if x.shape[1] != 3:
            raise ValueError("give RGB images\nnot grey ones")
        return x.flatten(1)


def test_a_torchscript_modules_error_is_said_by_its_cause_not_the_interpreters_header(tiny_dsprites, tmp_path, capsys):
    # the line had been the header alone: "The following operation failed in the TorchScript interpreter."
    out = tmp_path / "out"
    line = assert_one_line_error(evaluated(capsys, save_script(ThreeChannelCodes(), tmp_path / "rgb.pt"), out),
                                 "--representation raised RuntimeError on a batch of shape (3, 1, 64, 64): "
                                 "Given groups=1", "to have 3 channels, but got 1 channels instead")
    assert "TorchScript interpreter" not in line and not out.exists()
    assert_one_line_error(evaluated(capsys, save_script(RaisesInScript(), tmp_path / "raises.pt"), out),
                          "--representation raised ValueError on a batch of shape (3, 1, 64, 64): give RGB images")


def test_a_callable_that_changes_the_current_folder_moves_neither_the_results_nor_the_data(tiny_dsprites, tmp_path):
    # --out (relative) had been resolved after the callable's os.chdir: its results went elsewhere,
    # and its claim.json stayed behind in the --out asked for
    import os

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "wanders.py").write_text(f"import os\nos.chdir({str(elsewhere)!r})\n"
                                         f"def encode(x):\n    os.chdir({str(elsewhere)!r})\n"
                                         f"    return x.flatten(1)[:, :4]\n")
    result = run_command("dlb_evaluate", "--representation", "wanders:encode", "--dataset", "dsprites",
                         "--out", "out", "--device", "cpu", "--metrics", "mig", "--metric_param", "mig.num_train=300",
                         data_root=os.path.relpath(tiny_dsprites, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "out") == ["metrics", "metrics/mean", "metrics/mean/mig[num_train=300]",
                                      "metrics/mean/mig[num_train=300]/results.json"]
    assert tree(elsewhere) == []


class GaussianCodes(torch.nn.Module):
    """An encoder for PoolCodes: its codes as the mean, with a fixed variance."""

    def forward(self, x):
        mean = torch.nn.functional.adaptive_avg_pool2d(x, 2).reshape(x.shape[0], -1)
        return mean, torch.full_like(mean, -2.0)


def test_an_encoder_no_metric_asked_for_reads_is_refused_before_anything_loads(tiny_dsprites, tmp_path, capsys):
    # it had been taken, and recorded in every result: the same command without it was then refused
    result = evaluated(capsys, tmp_path / "missing.pt", tmp_path / "out", "dsprites", "--encoder",
                       tmp_path / "missing.pt", "--metrics", "sap")
    assert_one_line_error(result, "--encoder is read only by mig_chen and total_correlation, neither of which is "
                          "among the metrics asked for (mig, sap); add one of them to --metrics, or drop --encoder")
    assert not (tmp_path / "out").exists()


def test_the_encoder_is_part_of_the_results_of_the_metrics_that_read_it_only(tiny_dsprites, tmp_path, capsys):
    # a MIG computed beside total_correlation had recorded the encoder: the same MIG asked for
    # without it was refused, as of another representation
    script, out = save_script(PoolCodes(), tmp_path / "codes.pt"), tmp_path / "out"
    tc = ["--metrics", "total_correlation", "--metric_param", "total_correlation.num_samples=200"]
    encoder = save_script(GaussianCodes(), tmp_path / "gauss.pt")
    other = save_script(GaussianCodes(), tmp_path / "other.pt")
    assert evaluate_in_process(script, out, "dsprites", "--encoder", encoder, *tc) == 0
    assert "encoder" not in results_of(out, "mig", {"num_train": 300})
    assert results_of(out, "total_correlation", {"num_samples": 200})["encoder"] == str(encoder)

    result = evaluated(capsys, script, out)
    assert result.returncode == 0 and "kept the results stored for it of mig[num_train=300]" in result.stdout
    result = evaluated(capsys, script, out, "dsprites", "--encoder", encoder, *tc)
    assert result.returncode == 0
    assert "kept the results stored for it of mig[num_train=300], total_correlation[num_samples=200]" in result.stdout

    # another encoder: the results it would replace are those of the metrics that read the encoder
    assert_one_line_error(evaluated(capsys, script, out, "dsprites", "--encoder", other, *tc),
                          f"holds results of {script} on dsprites with the encoder {encoder} "
                          f"(total_correlation[num_samples=200]); pass --overwrite")


def _package(root, name, helper_size):
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "entry.py").write_text(f"from {name}.helper import enc\n\ndef rep(x):\n    return enc(x)\n")
    (package / "helper.py").write_text(f"SIZE = {helper_size}\n\ndef enc(x):\n    return x[:, :SIZE]\n")
    return package


def test_a_change_anywhere_in_the_package_of_ones_own_module_is_a_change_of_the_representation(tmp_path,
                                                                                              monkeypatch):
    # only the entry module's file had been hashed: after a change in the module it imports, the stored
    # results had been kept as the changed representation's
    import hashlib
    import importlib
    import sys

    from dlbench.external import source_digest

    package = _package(tmp_path, "own_codes_pkg", 2)
    (tmp_path / "own_codes_flat.py").write_text("def rep(x):\n    return x\n")
    installed = _package(tmp_path / "lib" / "site-packages", "installed_codes_pkg", 2)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path / "lib" / "site-packages"))
    for name in ("own_codes_pkg.entry", "own_codes_flat", "installed_codes_pkg.entry"):
        importlib.import_module(name)
    try:
        before = source_digest("own_codes_pkg.entry:rep")
        (package / "helper.py").write_text((package / "helper.py").read_text().replace("SIZE = 2", "SIZE = 3"))
        assert source_digest("own_codes_pkg.entry:rep") != before
        # a module alone is its file; a module of an installed package too (its package is not the user's)
        flat = (tmp_path / "own_codes_flat.py").read_bytes()
        assert source_digest("own_codes_flat:rep") == hashlib.sha256(flat).hexdigest()
        entry = (installed / "entry.py").read_bytes()
        assert source_digest("installed_codes_pkg.entry:rep") == hashlib.sha256(entry).hexdigest()
    finally:
        for name in [n for n in sys.modules if n.startswith(("own_codes", "installed_codes"))]:
            del sys.modules[name]
