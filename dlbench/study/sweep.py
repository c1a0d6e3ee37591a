"""The small algebra of sweeps (disentanglement_lib's, written as gin values):

- a dict is the product of its entries: {'beta_vae.beta': [1.0, 4.0], 'train.seed': [0, 1]} is 4 runs;
- an entry whose key is a tuple of bindings moves its values together (zip): each value is a
  tuple, {('beta_vae.beta', 'train.lr'): [(1.0, 1e-3), (4.0, 1e-4)]} is 2 runs;
- a list of sweeps is their union, in order (chain): one study can hold several methods, each
  with its own hyperparameter grid.

A sweep expands to a list of assignments ({binding: value}, in the order written). A string value
starting with '@' is a gin reference (a method, '@beta_tcvae()'), written without quotes.
"""

import itertools

from dlbench.errors import UserError


def expand(sweep, where="study.sweep"):
    """The assignments of a sweep (see above); a UserError naming the part that is malformed."""
    if sweep is None:
        return [{}]
    if isinstance(sweep, (list, tuple)):
        if not sweep:
            raise UserError(f"{where} is an empty list; give a dict of bindings, or a list of them (a chain)")
        return [assignment for i, part in enumerate(sweep) for assignment in expand(part, f"{where}[{i}]")]
    if not isinstance(sweep, dict):
        raise UserError(f"{where} must be a dict of bindings to value lists (or a list of such dicts), got {sweep!r}")
    axes = [_axis(key, values, where) for key, values in sweep.items()]
    return [dict(item for part in combination for item in part.items()) for combination in itertools.product(*axes)]


def _axis(key, values, where):
    if not isinstance(values, (list, tuple)) or not values:
        raise UserError(f"{where}: {key!r} must have a non-empty list of values, got {values!r}")
    if isinstance(key, tuple):
        for value in values:
            if not isinstance(value, (list, tuple)) or len(value) != len(key):
                raise UserError(f"{where}: the values of {key!r} move together, so each must be a tuple of "
                                f"{len(key)}, got {value!r}")
        return [dict(zip(key, value)) for value in values]
    if not isinstance(key, str) or "." not in key:
        raise UserError(f"{where}: {key!r} is not a binding such as 'beta_vae.beta'")
    return [{key: value} for value in values]


def binding(key, value):
    """The gin binding of one assignment: strings quoted, '@references' as they are."""
    if isinstance(value, str) and value.startswith("@"):
        return f"{key} = {value}"
    return f"{key} = {value!r}"
