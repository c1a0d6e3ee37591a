"""Helpers shared by the metrics: parameter checks, batched encoding, discretisation, discrete
mutual information and entropy.

Layout convention: codes and factors are (num_points, dim) arrays, one row per point (the
layout of the rest of dlbench; disentanglement_lib stores them transposed).
"""

import math
import operator

import numpy as np

from dlbench.errors import UserError


def check_int(name, value, minimum=1):
    """value as a Python int >= minimum, or a UserError naming the parameter."""
    if isinstance(value, (bool, np.bool_)):
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_float(name, value, minimum=0.0):
    """value as a finite Python float >= minimum, or a UserError naming the parameter."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number >= {minimum}, got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not np.isfinite(out) or out < minimum:
        raise UserError(f"{name} must be a number >= {minimum}, got {value!r}")
    return out


def varying_factors(data):
    """Indices of the factors that take more than one value."""
    return np.array([k for k, n in enumerate(data.factors_num_values) if int(n) > 1], dtype=np.int64)


def factor_names(data, indices):
    """The names of the factors of data at indices, comma-separated (recorded with results so that
    the factor set a score averages over is explicit)."""
    names = list(getattr(data, "factor_names", None) or [f"factor_{k}" for k in range(data.num_factors)])
    return ",".join(names[k] for k in indices)


def varying_factor_names(data):
    """The names of the factors that take more than one value, comma-separated."""
    return factor_names(data, varying_factors(data))


def sampled_factor_names(data, factors):
    """The names of the factors that take more than one value in the sample factors (n, K): those
    a score computed on it averages over (a tiny sample may hold a varying factor fixed)."""
    return factor_names(data, [k for k in range(factors.shape[1]) if len(np.unique(factors[:, k])) > 1])


def check_columns(codes, num_observations, role):
    """Codes (n, D) of no columns are refused: no metric scores nothing, and some had stopped with an
    IndexError (MIG, SAP) or a ZeroDivisionError (active_units). role names what returned them."""
    if codes.shape[1] == 0:
        raise UserError(f"{role} returned codes of shape {codes.shape}, no columns, for {num_observations} "
                        "observations; return (n, D) codes with D >= 1")


def _check_codes(codes, num_expected):
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] != num_expected:
        raise UserError(
            f"representation_fn must return an array of shape ({num_expected}, d) for a batch of "
            f"{num_expected} observations, got shape {codes.shape}"
        )
    check_columns(codes, num_expected, "representation_fn")
    codes = codes.astype(np.float64, copy=False)
    if not np.all(np.isfinite(codes)):
        raise UserError("representation_fn returned non-finite codes (NaN or inf): the model has diverged")
    return codes


def encode(representation_fn, observations, batch_size):
    """Codes (n, d) float64 for observations, calling representation_fn on batches of batch_size."""
    n = len(observations)
    parts = []
    for start in range(0, n, batch_size):
        batch = observations[start:start + batch_size]
        parts.append(_check_codes(representation_fn(batch), len(batch)))
    if not parts:
        raise UserError("no observations to encode")
    return np.concatenate(parts, axis=0)


def generate_codes(data, representation_fn, factors, random_state, batch_size):
    """Codes (n, d) float64 of observations rendered from `factors`, batch_size at a time.

    Observations are rendered per batch so that only one batch of images is in memory.
    """
    n = len(factors)
    parts = []
    for start in range(0, n, batch_size):
        chunk = factors[start:start + batch_size]
        observations = data.sample_observations_from_factors(chunk, random_state)
        parts.append(_check_codes(representation_fn(observations), len(chunk)))
    if not parts:
        raise UserError("no points to encode")
    return np.concatenate(parts, axis=0)


def standardise(train, test):
    """train and test codes centred and scaled by the training mean and standard deviation
    (ddof 0); a column constant on the training codes becomes 0, not NaN."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    return tuple(np.where(std > 0, (x - mean) / scale, 0.0) for x in (train, test))


def train_test_codes(data, representation_fn, random_state, num_train, num_test, batch_size):
    """(factors_train, codes_train, factors_test, codes_test): the training points are drawn
    and encoded first, then the test points."""
    factors_train = data.sample_factors(num_train, random_state)
    codes_train = generate_codes(data, representation_fn, factors_train, random_state, batch_size)
    factors_test = data.sample_factors(num_test, random_state)
    codes_test = generate_codes(data, representation_fn, factors_test, random_state, batch_size)
    if codes_test.shape[1] != codes_train.shape[1]:
        raise UserError(f"representation_fn returned {codes_test.shape[1]} dimensions, "
                        f"earlier {codes_train.shape[1]}")
    return factors_train, codes_train, factors_test, codes_test


def histogram_discretize(codes, num_bins):
    """Each column into num_bins equal-width bins over its own range (labels 1..num_bins).

    disentanglement_lib's discretiser: the bin edges of np.histogram over the column, then
    np.digitize against all edges but the last, so the column's maximum falls in bin num_bins.
    A constant column gets one label (np.histogram widens a zero range to [v - 0.5, v + 0.5]).
    """
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins=num_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def _compact_labels(column):
    """(labels 0..m-1, m): the column's values relabelled by rank (np.unique's inverse)."""
    values, labels = np.unique(column, return_inverse=True)
    return labels.reshape(-1), len(values)


def _mutual_info_from_contingency(table):
    """Plug-in mutual information in nats of a 2-D contingency table of counts (int64).

    scikit-learn's mutual_info_score formula, term for term and over the non-zero cells in the
    same (row-major) order, so the result matches it to the last bit, not only to rounding.
    """
    if table.shape[0] == 1 or table.shape[1] == 1:
        return 0.0                           # one value on either side: no information
    rows, cols = np.nonzero(table)
    counts = table[rows, cols]
    total = table.sum()
    row_sums, col_sums = table.sum(axis=1), table.sum(axis=0)
    joint = counts / total
    log_outer = -np.log(row_sums[rows] * col_sums[cols]) + math.log(row_sums.sum()) + math.log(col_sums.sum())
    terms = joint * (np.log(counts) - math.log(total)) + joint * log_outer
    terms = np.where(np.abs(terms) < np.finfo(terms.dtype).eps, 0.0, terms)
    return float(np.clip(terms.sum(), 0.0, None))


def discrete_mutual_info(codes_discrete, factors):
    """Matrix (d, K) of plug-in mutual information in nats between code column i and factor k.

    Each column is relabelled once; the contingency table of a pair is then one np.bincount of
    the combined label, so the cost is O(n) per pair with no per-pair sorting. Equal to
    sklearn.metrics.mutual_info_score(factors[:, k], codes_discrete[:, i]).
    """
    codes = [_compact_labels(codes_discrete[:, i]) for i in range(codes_discrete.shape[1])]
    targets = [_compact_labels(factors[:, k]) for k in range(factors.shape[1])]
    m = np.zeros((len(codes), len(targets)))
    for k, (target, num_target) in enumerate(targets):
        for i, (code, num_code) in enumerate(codes):
            # rows: factor values, columns: code values (sklearn's orientation and cell order)
            table = np.bincount(target * num_code + code, minlength=num_target * num_code)
            m[i, k] = _mutual_info_from_contingency(table.reshape(num_target, num_code))
    return m


def discrete_entropy(factors):
    """Vector (K,) of plug-in entropies in nats of each factor column (H(v) = I(v; v))."""
    entropy = []
    for k in range(factors.shape[1]):
        labels, num = _compact_labels(factors[:, k])
        # the contingency table of a column with itself is diagonal: its value counts
        entropy.append(_mutual_info_from_contingency(np.diag(np.bincount(labels, minlength=num))))
    return np.array(entropy)
