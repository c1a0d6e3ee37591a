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


# The smallest positive float32 (a subnormal): float32 rounds a smaller positive number to 0.
FLOAT32_SMALLEST = 2.0 ** -149
# The smallest number whose reciprocal float32 holds: a variance below it makes the 1/variance of a Gaussian
# log-density inf in float32, and the first step's loss was not finite (1e-40 is a subnormal, not 0).
FLOAT32_RECIPROCAL_MIN = 1.0 / FLOAT32_MAX


def _rounded_inward(bound, up):
    """bound to 3 significant digits, rounded up (a minimum) or down (a maximum), so that every value
    in the range a message says passes the check (5.421e-20 said as 5.42e-20 would refuse 5.42e-20)."""
    shown = float(f"{bound:.2e}")
    step = 10.0 ** (math.floor(math.log10(abs(shown))) - 2)
    if up and shown < bound:
        shown += step
    elif not up and shown > bound:
        shown -= step
    return f"{shown:.3g}"


def _within(binding, value, minimum, maximum, why):
    """value as a float in [minimum, maximum] (both > 0), refused with the range and why it is that range."""
    kind = f"a number in [{_rounded_inward(minimum, up=True)}, {_rounded_inward(maximum, up=False)}] ({why})"
    try:
        out = number(binding, value)
    except UserError:  # said with the range the setting needs, not only "a number"
        _refuse(binding, kind, value)
    if not minimum <= out <= maximum:
        _refuse(binding, kind, value)
    return out


def divisor(binding, value, what="a variance"):
    """A positive setting the model divides by (a variance; Student-t's nu, which divides z^2): float32
    must hold it and its reciprocal. Larger values fail number()'s own float32 check; smaller ones
    pass `positive` but end the first training step with a loss that is not finite."""
    return _within(binding, value, FLOAT32_RECIPROCAL_MIN, FLOAT32_MAX,
                   f"{what}: float32 holds neither a larger one nor the reciprocal of a smaller one")


def scale(binding, value):
    """A positive standard deviation: its square, the variance the model divides by, must be a divisor."""
    return _within(binding, value, math.sqrt(FLOAT32_RECIPROCAL_MIN), math.sqrt(FLOAT32_MAX),
                   "a standard deviation: float32 holds neither the square of a larger one "
                   "nor the reciprocal of a smaller one's square")


def nonzero_in_float32(binding, value, why):
    """A positive number that must not be 0 in float32 (an epsilon added to keep a division away from 0/0)."""
    return _within(binding, value, FLOAT32_SMALLEST, FLOAT32_MAX, f"float32 rounds a smaller one to 0, {why}")


def normalised_divisors(binding, values, what):
    """values, positive numbers (already checked) that the model normalises to mean 1 and then divides by
    (the anisotropic prior's variances): each normalised one must be a divisor, so none may be below
    1/FLOAT32_MAX of their mean. Returns values."""
    largest = max(values)
    relative = [v / largest for v in values]  # in (0, 1]: their sum cannot overflow
    smallest_allowed = sum(relative) / len(relative) * FLOAT32_RECIPROCAL_MIN
    if min(relative) < smallest_allowed:
        raise UserError(f"{binding} must each be at least {_rounded_inward(FLOAT32_RECIPROCAL_MIN, up=True)} times "
                        f"their mean ({what}, normalised to mean 1: float32 holds the reciprocal of none smaller), "
                        f"got {values!r}")
    return values


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
