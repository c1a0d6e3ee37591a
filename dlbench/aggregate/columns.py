"""The columns of results.csv and what they mean: which tell settings apart, which hold measured
values, and which column `--rank_by NAME` ranks by (a metric's name stands for its default
protocol's headline value, never for another protocol's, which is named with its tag).

A metric column is named `[<mode>.]<metric>[<protocol tag>].<key>`: `mig.discrete_mig` (the mean
representation, default protocol), `sampled.mig.discrete_mig`, `mig[num_train=500].discrete_mig`.
"""

import re
from dataclasses import dataclass

from dlbench import rundir
from dlbench.metrics import HEADLINE_KEYS  # noqa: F401  (callers have imported it from here)

IDENTITY = ["dataset", "method"]
RUN_COLUMNS = ("run_dir", "dataset", "method", "seed", "status", "dataset_shape")
SETTING_PREFIXES = ("hp.", "train.", "model.")
TRAIN_RESULT_PREFIX = "train_result."
BOOKKEEPING_COLUMNS = {f"train.{name}" for name in rundir.BOOKKEEPING_TRAIN_SETTINGS}

# Keys where a smaller value is the better one (dependence between codes, inference errors, losses).
LOWER_IS_BETTER_KEYS = {
    "total_correlation", "gaussian_total_correlation", "gaussian_wasserstein_correlation",
    "gaussian_wasserstein_correlation_norm", "mutual_info_score", "true_inference_error",
    "true_inference_error_aligned", "model_inference_error", "kl_qz_pz", "kl_pz_qz",
    "kl",  # elbo's KL term, as the training loss's
    "max_abs_objective_change", "max_abs_objective_change_over_stderr",  # rotation: Theorem 2 says 0
}
# and keys of these forms: a standard error (objective_stderr, objective_change_stderr_r1), how far
# a rotation moved a score (mig_max_abs_change); ranked the other way, the worst had come first
_LOWER_IS_BETTER_FORMS = re.compile(r"_stderr(_r\d+)?$|_max_abs_change$")
# the training scalars that are losses, penalties or divergences (kl_<j>: a latent's KL, as the total);
# elbo, mi (the index-code mutual information), capacity and the discriminator's accuracy rank highest first
_LOWER_IS_BETTER_TRAIN_RESULTS = re.compile(
    r"^(loss|reconstruction|kl|kl_\d+|dimwise_kl|tc|cov_offdiag|cov_diag|divergence|discriminator_loss"
    r"|train_seconds_this_session)$")

_METRIC_COLUMN = re.compile(r"^(?:(?P<mode>\w+)\.)?(?P<metric>\w+)(?P<tag>\[[^\]]*\])?\.(?P<key>[^.\[\]]+)$")
_METRIC_NAME = re.compile(r"^(?:(?P<mode>\w+)\.)?(?P<metric>\w+)(?P<tag>\[[^\]]*\])?$")


@dataclass(frozen=True)
class MetricColumn:
    mode: str   # 'mean' where the column name has no mode
    metric: str
    tag: str    # '' for the metric's default protocol
    key: str


def parse_metric_column(column):
    """The parts of a metric column of results.csv, or None for another column (a run's identity,
    a setting, a training result) or a name of another form."""
    if column in RUN_COLUMNS or column.startswith((*SETTING_PREFIXES, TRAIN_RESULT_PREFIX)):
        return None
    match = _METRIC_COLUMN.match(column)
    if not match:
        return None
    return MetricColumn(match["mode"] or "mean", match["metric"], match["tag"] or "", match["key"])


def metric_columns(results):
    return [c for c in results.columns if not c.startswith((*SETTING_PREFIXES, TRAIN_RESULT_PREFIX))
            and c not in RUN_COLUMNS]


def train_result_columns(results):
    return [c for c in results.columns if c.startswith(TRAIN_RESULT_PREFIX)]


def value_columns(results):
    """The measured values the leaderboard summarises: every metric value, then the final training
    scalars of model/results.json."""
    return metric_columns(results) + train_result_columns(results)


def setting_columns(results):
    """The columns that tell settings apart: hyperparameters, model and train settings, except the
    bookkeeping ones (runs that only checkpointed or logged more often are the same setting)."""
    return [c for c in results.columns
            if c.startswith(SETTING_PREFIXES) and c not in BOOKKEEPING_COLUMNS]


def lower_is_better(column):
    """Whether a smaller value of a value column is the better one."""
    if column.startswith(TRAIN_RESULT_PREFIX):
        return _LOWER_IS_BETTER_TRAIN_RESULTS.match(column[len(TRAIN_RESULT_PREFIX):]) is not None
    parsed = parse_metric_column(column)
    return parsed is not None and (parsed.key in LOWER_IS_BETTER_KEYS
                                   or _LOWER_IS_BETTER_FORMS.search(parsed.key) is not None)


def resolve_metric_column(results, name):
    """The value column that `name` stands for, or None when no run has it.

    `name` is a value column itself (`mig.discrete_mig`, `train_result.loss`), or a metric's name,
    optionally with its mode and protocol tag (`mig`, `sampled.mig`, `mig[num_train=500]`): then
    the column of its headline key (HEADLINE_KEYS; for a metric not listed there, its only key).
    Without a tag the default protocol's column is preferred; when only other protocols are
    present, the one with the most values (then the first by name): what representatives and
    figures show where a study evaluated another protocol only. A ranking takes ranking_column."""
    if name in value_columns(results):
        return name
    wanted = _METRIC_NAME.match(name)
    if not wanted:
        return None
    mode, metric, tag = wanted["mode"] or "mean", wanted["metric"], wanted["tag"]
    same_metric = _parsed_columns_of(results, mode, metric, tag)
    key = _headline_key(metric, {p.key for p in same_metric.values()})
    candidates = sorted(c for c, p in same_metric.items() if p.key == key)
    if not candidates:
        return None
    default = [c for c in candidates if same_metric[c].tag == ""]
    if default:
        return default[0]
    return max(candidates, key=lambda c: results[c].notna().sum())  # max keeps the first of equals


def study_protocol(study, metric):
    """`metric` with the tag of the protocol the study (a runs root's study.json, or None) evaluates
    it with ('mig[num_train=1000]'), or None where the study gives it no parameters."""
    params = ((study or {}).get("metric_params") or {}).get(metric)
    if not isinstance(params, dict) or not params:
        return None
    from dlbench.evaluation import protocol_name

    return protocol_name(metric, params, 0)


def study_metric_column(results, study, metric, resolve=resolve_metric_column):
    """resolve's column of `metric` (resolve_metric_column's, or ranking_column's), but in the
    protocol the study evaluates it with where some run has that: a study whose protocol changed,
    its older runs still holding the old protocol's results, had shown those where they outnumbered
    the new (or were the default)."""
    studied = study_protocol(study, metric)
    return (studied and resolve(results, studied)) or resolve(results, metric)


def ranking_column(results, name):
    """The value column `--rank_by name` ranks by, or None when no run has it: resolve_metric_column's,
    except that a metric's name without a protocol tag stands for its default protocol only. A
    ranking by another protocol is asked for by its tag (`mig[num_bins=10]`): taken in silence, it
    had been handed back as the default's."""
    column = resolve_metric_column(results, name)
    if column is None or column == name:
        return column
    return column if parse_metric_column(column).tag == (_METRIC_NAME.match(name)["tag"] or "") else None


def other_protocols(results, name):
    """The protocols other than the default of the metric `name` (without a tag, optionally with
    its mode) that some run has, as the names that rank by them: ['mig[num_bins=10]']."""
    wanted = _METRIC_NAME.match(name)
    if not wanted or wanted["tag"]:
        return []
    mode, metric = wanted["mode"] or "mean", wanted["metric"]
    parsed = filter(None, map(parse_metric_column, metric_columns(results)))
    names = {metric_name(p) for p in parsed if p.mode == mode and p.metric == metric and p.tag}
    return sorted(name for name in names if ranking_column(results, name) is not None)


def metric_name(parsed):
    """The name a MetricColumn's metric is given by: 'mig', 'sampled.mig', 'mig[num_bins=10]'."""
    return ("" if parsed.mode == "mean" else f"{parsed.mode}.") + parsed.metric + parsed.tag


def named_metric(name):
    """The metric name (metric_name's form: 'mig', 'sampled.mig', 'mig[num_bins=10]') that a
    --rank_by value stands for, a metric's name or one of its value columns; None for another."""
    parsed = parse_metric_column(name)
    if parsed is None:
        wanted = _METRIC_NAME.match(name)
        parsed = wanted and MetricColumn(wanted["mode"] or "mean", wanted["metric"], wanted["tag"] or "", "")
    return metric_name(parsed) if parsed else None


def columns_of_metric(results, name):
    """The value columns of the metric `name` (optionally with its mode; with its protocol tag,
    that protocol's only)."""
    wanted = _METRIC_NAME.match(name)
    if not wanted:
        return []
    return list(_parsed_columns_of(results, wanted["mode"] or "mean", wanted["metric"], wanted["tag"]))


def _parsed_columns_of(results, mode, metric, tag):
    """{column: MetricColumn} of the value columns of metric in mode (of protocol tag; any for None)."""
    parsed = {c: parse_metric_column(c) for c in metric_columns(results)}
    return {c: p for c, p in parsed.items() if p and (p.mode, p.metric) == (mode, metric) and tag in (None, p.tag)}


def is_setting(name):
    """Whether name is a column that tells runs or settings apart (hp.beta, train.lr, seed), not one
    holding measured values."""
    return name in RUN_COLUMNS or name.startswith(SETTING_PREFIXES)


def _headline_key(metric, keys):
    if metric in HEADLINE_KEYS:
        return HEADLINE_KEYS[metric]
    return next(iter(keys)) if len(keys) == 1 else None


def rankable_names(results):
    """The metric names `--rank_by` takes for these results (ranking_column resolves them), e.g.
    ['mig', 'recon_ll[num_points=200]', 'sampled.mig']."""
    parsed = filter(None, map(parse_metric_column, metric_columns(results)))
    return sorted({name for name in map(metric_name, parsed) if ranking_column(results, name) is not None})
