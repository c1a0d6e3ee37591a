"""Declared types and ranges of configurable values, checked when a config is resolved.

Each check takes the binding's name (e.g. 'train.steps') and the value gin gave, returns the
value as its declared Python type, and raises a UserError naming the binding, the expected type
and range, and the value received. A float is never accepted where an integer is declared (1.5
steps is a mistake, not 1 step), nor a bool where a number is.
"""

import math
import operator

from dlbench.errors import UserError


def _range_text(minimum, maximum, positive):
    if positive:
        return " > 0"
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _refuse(binding, kind, value):
    raise UserError(f"{binding} must be {kind}, got {value!r}")


def _in_range(value, minimum, maximum, positive):
    return ((minimum is None or value >= minimum) and (maximum is None or value <= maximum)
            and (not positive or value > 0))


def integer(binding, value, minimum=None, maximum=None):
    """value as an int (an int or an integral numpy scalar; not a float or bool)."""
    kind = "an integer" + _range_text(minimum, maximum, False)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        _refuse(binding, kind, value)
    try:
        value = operator.index(value)
    except TypeError:
        _refuse(binding, kind, value)
    if not _in_range(value, minimum, maximum, False):
        _refuse(binding, kind, value)
    return value


FLOAT32_MAX = 3.4028234663852886e38


def number(binding, value, minimum=None, maximum=None, positive=False):
    """value as a finite float (ints accepted; not a bool, a string or a NaN)."""
    kind = "a number" + _range_text(minimum, maximum, positive)
    if isinstance(value, (bool, str)) or type(value).__name__ == "bool_":
        _refuse(binding, kind, value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        _refuse(binding, kind, value)
    # 1e309 reads as inf; above FLOAT32_MAX a float32 tensor of it is inf (torch had refused it in a traceback)
    if not math.isfinite(out) or abs(out) > FLOAT32_MAX:
        _refuse(binding, "a finite number" + _range_text(minimum, maximum, positive) + " that float32 holds "
                f"(at most {FLOAT32_MAX:.3g} in size)", value)
    if not _in_range(out, minimum, maximum, positive):
        _refuse(binding, kind, value)
    return out


def numbers(binding, value, length=None, minimum=None, maximum=None, positive=False):
    """value as a list of finite floats (a list or tuple), of `length` items when given."""
    count = f"{length} " if length is not None else ""
    kind = f"a list of {count}numbers" + _range_text(minimum, maximum, positive)
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length) or not value:
        _refuse(binding, kind, value)
    try:
        return [number(binding, item, minimum, maximum, positive) for item in value]
    except UserError:  # said of the whole list, which is what the binding holds
        _refuse(binding, kind, value)


def one_of(binding, value, choices):
    """value, which must be one of choices (compared as given: strings stay strings)."""
    if not isinstance(value, type(choices[0])) or value not in choices:
        _refuse(binding, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def flag(binding, value):
    """value as a bool (True or False only: 0, 1 and strings are refused)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        _refuse(binding, "True or False", value)
    return bool(value)


def text(binding, value):
    """value, which must be a non-empty string."""
    if not isinstance(value, str) or not value:
        _refuse(binding, "a non-empty string", value)
    return value


def hyperparameter(binding, value, minimum=None, positive=False):
    """A method's hyperparameter: a number (returned as a float), or a tensor of K values, one per
    run of a stack (returned as it is), every value finite and in range."""
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        values = value.detach().cpu().tolist() if hasattr(value, "detach") else list(value)
        numbers(binding, values, minimum=minimum, positive=positive)
        return value
    return number(binding, value, minimum=minimum, positive=positive)
