"""Representations dlbench did not train: a TorchScript file, or a Python callable named as
`module.path:function`, that maps float observations (n, C, H, W) in [0, 1] to codes (n, D),
and optionally an encoder giving (mean, logvar) for the metrics that need the encoder's Gaussian.

Each is checked once on a few of the dataset's observations before any metric runs, so that a
module of the wrong shape or dtype, one that raises, returns NaN or a wrong batch size, is one
clear line before anything is computed or written.
"""

import hashlib
import importlib
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from dlbench.errors import UserError
from dlbench.metrics.utils import check_columns

PROBE_SIZE = 3  # odd and small: a module that returns a fixed batch size shows it


def load_callable(spec, role="--representation"):
    """The torch-callable that `spec` names: a TorchScript file, or module.path:function."""
    path = Path(spec)
    if path.is_file():
        return _load_torchscript(path, role)
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise UserError(f"{role} '{spec}' is neither a file nor module.path:function; give a TorchScript "
                        f"file (torch.jit.save) or a callable such as mypackage.models:encode")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # modules in the current folder, as `python -m` finds them
    if module_name.endswith(".py"):
        raise UserError(f"{role} '{spec}' names a file, not a module: give {module_name[:-3]}:{attribute} (the "
                        f"module's name, run from its folder)")
    try:
        module = importlib.import_module(module_name)
    except SystemExit as err:
        raise UserError(f"{role} '{spec}': importing {module_name} called {_exit_said(err)}; a module that "
                        f"gives codes must not exit when imported") from None
    except Exception as err:  # an import can fail in any way the user's code does
        raise UserError(f"{role} '{spec}': importing {module_name} failed ({type(err).__name__}: "
                        f"{_first_line(err)}); run from the folder that holds it, or install it") from None
    fn = getattr(module, attribute, None)
    if not callable(fn):
        raise UserError(f"{role} '{spec}': {module_name} has no callable {attribute!r}")
    return fn


def source_digest(spec):
    """The sha256 of what `spec` names, so that a result stored for it is reused only while it is
    unchanged: a TorchScript file's bytes, or the source of module.path:function's module (loaded
    first by load_callable): its file, or for a module of a package of the user's own the package's
    every .py file (a change in a module the function imports had kept the stale results); None for a
    module without a file, whose results are never reused."""
    path = Path(spec)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    module_name = spec.partition(":")[0]
    path = Path(getattr(sys.modules.get(module_name), "__file__", None) or "")
    if not path.is_file():
        return None
    package = _own_package_folder(module_name)
    if package is None:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def _own_package_folder(module_name):
    """The folder of the top-level package of module_name where it is a package of the user's own
    (not one installed under site-packages), else None."""
    top = sys.modules.get(module_name.partition(".")[0])
    init = Path(getattr(top, "__file__", None) or "")
    if init.name != "__init__.py" or any(part in ("site-packages", "dist-packages") for part in init.parts):
        return None
    return init.parent


def _load_torchscript(path, role):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as err:  # a truncated file, a pickle, an eager-mode torch.save, an array of codes
            codes = (" (arrays of codes cannot be scored: the metrics draw observations of their own and encode "
                     "them, so give the encoder)" if Path(path).suffix.lower() in ARRAY_SUFFIXES else "")
            raise UserError(f"{role} '{path}' is not a TorchScript module ({type(err).__name__}){codes}; save one "
                            f"with torch.jit.save(torch.jit.trace(module, example_images), 'codes.pt'), or give "
                            f"MODULE:FUNCTION, a Python function from images to codes (for a run of dlb_train, give "
                            f"its run directory instead)") from None


# files that hold arrays, which a user may take for a representation's codes
ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".csv", ".txt", ".pkl", ".pickle")


def _exit_said(err):
    """A SystemExit as the call that raised it: sys.exit(3), sys.exit('bye'), sys.exit()."""
    return f"sys.exit({'' if err.code is None else repr(err.code)})"


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# the first line of every error from TorchScript's interpreter: the error itself comes after its traceback
_TORCHSCRIPT_FAILED = "The following operation failed in the TorchScript interpreter."


def _what_raised(err):
    """(the name of what err is, the line of its message that says what went wrong): its first line,
    except from TorchScript's interpreter, whose first line says only that some operation failed."""
    text = str(err)
    raised = _torchscript_error(text) if text.startswith(_TORCHSCRIPT_FAILED) else None
    return raised or (type(err).__name__, _first_line(err))


def _torchscript_error(text):
    """(name, first line of its message) of the error a TorchScript interpreter's message ends
    with, after the last of its tracebacks (those lines are indented, or paths with line numbers):
    e.g. ('RuntimeError', 'Given groups=1, ... to have 3 channels, but got 1 channels instead'),
    ('ValueError', ...) for `raise ValueError` in a scripted module; None where there is none."""
    after = text.rpartition("\nTraceback of TorchScript")[2]
    found = re.search(r"^(?:builtins\.)?([A-Za-z_][\w.]*(?:Error|Exception)): *(.*)$", after, re.MULTILINE)
    return found.groups() if found else None


def _to_device(fn, device):
    if isinstance(fn, torch.nn.Module):
        return fn.to(device).eval()
    return fn


def _as_array(value, role):
    if isinstance(value, torch.Tensor):
        value = _tensor_values(value, role)
    if not isinstance(value, np.ndarray):
        raise UserError(f"{role} returned a {type(value).__name__}; return a tensor or a numpy array")
    if isinstance(value, np.ma.MaskedArray):  # the metrics would read the values under the mask
        masked = int(np.ma.getmaskarray(value).sum())
        if masked:
            raise UserError(f"{role} returned a masked array with {masked} of its {value.size} codes masked; "
                            f"return codes without a mask (e.g. .filled() with the values meant)")
        value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.floating):
        raise UserError(f"{role} returned codes of dtype {value.dtype}; return floating-point codes")
    return value


def _tensor_values(tensor, role):
    """The tensor's values as a numpy array; a UserError for one that has none to give (a meta
    tensor, a sparse or quantized one): its TypeError or NotImplementedError had been a traceback.
    A RuntimeError is said only of a nested tensor: elsewhere it can be the host out of memory,
    which the command says as such."""
    try:
        return tensor.detach().cpu().numpy()
    except (TypeError, NotImplementedError, RuntimeError) as err:
        if type(err) is RuntimeError and not tensor.is_nested:  # NotImplementedError is one too
            raise
        raise UserError(f"{role} returned {_tensor_said(tensor)}, which holds no values numpy can read "
                        f"({_first_line(err)}); return a dense tensor of values (e.g. .to_dense()) or a numpy "
                        f"array") from None


def _tensor_said(tensor):
    if tensor.device.type == "meta":
        return "a tensor on the meta device"
    if tensor.is_nested:
        return "a nested tensor"
    if tensor.layout != torch.strided:
        return f"a sparse tensor ({tensor.layout})"
    return f"a tensor of {tensor.dtype} on {tensor.device}"


def numpy_codes_fn(fn, device, batch_size, role="--representation"):
    """representation_fn for the metrics: numpy observations -> numpy codes (n, D), batched on the
    device; every batch is checked for shape (the width of the first, the probe's), dtype, size and
    finiteness."""
    fn = _to_device(fn, device)
    same_width = _SameWidth(role)

    @torch.no_grad()
    def representation_fn(observations):
        parts = []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size], dtype=torch.float32, device=device)
            parts.append(same_width(_checked_codes(_call(fn, x, role), len(x), role)))
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    return representation_fn


def numpy_encode_fn(fn, device, batch_size, role="--encoder"):
    """encode_fn for the model-side metrics: numpy observations -> (mean, logvar) float64 arrays."""
    fn = _to_device(fn, device)
    same_width = _SameWidth(role + " mean")

    @torch.no_grad()
    def encode_fn(observations):
        means, logvars = [], []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size], dtype=torch.float32, device=device)
            out = _call(fn, x, role)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise UserError(f"{role} must return (mean, logvar), got a {type(out).__name__}")
            mean = _checked_codes(out[0], len(x), role + " mean")
            logvar = _checked_codes(out[1], len(x), role + " logvar")
            if mean.shape != logvar.shape:
                raise UserError(f"{role} returned mean {mean.shape} and logvar {logvar.shape}; they must match")
            means.append(same_width(mean).astype(np.float64))  # logvar's is mean's, checked above
            logvars.append(logvar.astype(np.float64))
        return np.concatenate(means), np.concatenate(logvars)

    return encode_fn


class _SameWidth:
    """Codes passed through it must all have the width of the first (the probe's, once probed):
    only the probe's had been checked, and later batches of another width had been scored into a
    silently wrong result, or ended in np.concatenate's ValueError."""

    def __init__(self, role):
        self.role, self.first = role, None

    def __call__(self, codes):
        if self.first is None:
            self.first = codes.shape
        elif codes.shape[1] != self.first[1]:
            (rows, width), (batch, changed) = self.first, codes.shape
            raise UserError(f"{self.role} changed its code width from {width} columns (on a batch of {rows} "
                            f"observations) to {changed} (on a batch of {batch}); return the same number of "
                            f"columns for every batch")
        return codes


def _call(fn, x, role):
    try:
        return fn(x)
    except UserError:
        raise
    except SystemExit as err:  # its status had become dlb_evaluate's, without a word
        raise UserError(f"{role} called {_exit_said(err)} on a batch of shape {tuple(x.shape)}; it must return "
                        f"the batch's codes, not exit") from None
    except Exception as err:  # whatever the user's module raises is reported, not a traceback
        name, said = _what_raised(err)
        raise UserError(f"{role} raised {name} on a batch of shape {tuple(x.shape)}: {said}") from None


def _checked_codes(value, batch, role):
    codes = _as_array(value, role)
    if codes.ndim != 2:
        raise UserError(f"{role} returned shape {codes.shape} for {batch} observations; return (n, D) codes")
    check_columns(codes, batch, role)
    if codes.shape[0] != batch:
        raise UserError(f"{role} returned {codes.shape[0]} rows for a batch of {batch} observations; "
                        "return one code per observation")
    if not np.all(np.isfinite(codes)):
        raise UserError(f"{role} returned non-finite codes (NaN or inf) for a batch of {batch} observations")
    return codes


def probe(representation_fn, data, random_state_seed=0):
    """Call fn (a representation_fn or an encode_fn) once on PROBE_SIZE of the dataset's
    observations: any problem is a UserError now, before a metric has computed anything."""
    rng = np.random.RandomState(random_state_seed)
    return representation_fn(data.sample_observations(PROBE_SIZE, rng))
