"""leaderboard.csv (statistics over seeds per setting) and best.csv (the best setting per dataset
and method).

Statistics are over the finished runs (status 'done') of a setting that have the value; failed
and unfinished runs are only counted. For n values:
- mean; std, the sample standard deviation (n - 1 in the denominator; missing for n < 2);
  sem = std / sqrt(n) (missing for n < 2);
- median, q25 and q75: quantiles with linear interpolation between order statistics (numpy's
  default, R's type 7); for one value all three are that value;
- upper_half_mean: the mean of the values at or above the median (the ISA-VAE paper's "upper half"
  statistic). For an odd n the median itself is in: of 5 values the top 3 are averaged; for an
  even n without ties at the middle, the top n/2; values equal to the median are all in.
"""

import numpy as np
import pandas as pd

from dlbench import rundir
from dlbench.aggregate.columns import IDENTITY, lower_is_better, setting_columns, value_columns

STATISTICS = ("count", "mean", "std", "sem", "median", "q25", "q75", "upper_half_mean")
COUNT_COLUMNS = ("num_runs", "num_done", "num_failed", "num_unfinished")
DONE, FAILED, UNFINISHED = "done", "failed", "unfinished"


def status_kind(status):
    """'done', 'failed' or 'unfinished' (running, interrupted, or no status recorded)."""
    if status == rundir.Status.DONE:
        return DONE
    return FAILED if status == rundir.Status.FAILED else UNFINISHED


def upper_half(values):
    """The mask of the values at or above their median (see the module's docstring)."""
    values = np.asarray(values, dtype=float)
    return values >= np.median(values)


def summarise(values):
    """{statistic: value} of STATISTICS for a 1-D array of values without missing ones."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return {"count": 0, **{name: np.nan for name in STATISTICS[1:]}}
    std = values.std(ddof=1) if n > 1 else np.nan
    q25, q75 = np.quantile(values, [0.25, 0.75])
    return {"count": n, "mean": values.mean(), "std": std, "sem": std / np.sqrt(n) if n > 1 else np.nan,
            "median": np.median(values), "q25": q25, "q75": q75,
            "upper_half_mean": values[upper_half(values)].mean()}


def leaderboard(results):
    """One row per dataset, method and setting: the runs counted by status (num_runs is their
    total) and STATISTICS of every value column over the finished runs, as '<column>.<statistic>'."""
    group = IDENTITY + setting_columns(results)
    values = value_columns(results)
    kinds = results["status"].map(status_kind)
    rows = []
    for key, runs in results.groupby(group, dropna=False, sort=True):
        row = dict(zip(group, key))
        counts = kinds[runs.index].value_counts()
        row.update(num_runs=len(runs), num_done=int(counts.get(DONE, 0)), num_failed=int(counts.get(FAILED, 0)),
                   num_unfinished=int(counts.get(UNFINISHED, 0)))
        done = runs[kinds[runs.index] == DONE]
        for column in values:
            stats = summarise(done[column].dropna().to_numpy(dtype=float))
            row.update({f"{column}.{name}": value for name, value in stats.items()})
        rows.append(row)
    columns = group + list(COUNT_COLUMNS) + [f"{c}.{name}" for c in values for name in STATISTICS]
    return pd.DataFrame(rows, columns=columns)


def best_settings(board, column):
    """best.csv: per dataset and method, the leaderboard row of the setting with the best mean of
    `column` (the highest, or the lowest where lower_is_better), with rank_by (the column) and
    rank_direction ('higher' or 'lower') in front. Settings without a mean are not candidates; of
    equal means the first in the leaderboard's order wins; a dataset and method with no mean at
    all has no row (unranked_pairs lists them)."""
    lower = lower_is_better(column)
    mean = f"{column}.mean"
    chosen = []
    if mean in board.columns:
        for _, settings in board.groupby(IDENTITY, sort=True):
            ranked = settings[mean].dropna()
            if not ranked.empty:
                chosen.append(ranked.idxmin() if lower else ranked.idxmax())
    best = board.loc[chosen].copy()
    best.insert(0, "rank_direction", "lower" if lower else "higher")
    best.insert(0, "rank_by", column)
    return best.reset_index(drop=True)


def unranked_pairs(board, best):
    """[(dataset, method)] of the leaderboard with no row in best (no finished run has the value)."""
    ranked = set(zip(best["dataset"], best["method"]))
    return sorted({pair for pair in zip(board["dataset"], board["method"]) if pair not in ranked})


def short_of_value(board, column):
    """(settings whose finished runs lack `column` in part, those that lack it in all): the mean
    best.csv ranks them by is over fewer runs than finished, or there is none (not a candidate).
    Their runs were not all evaluated with the protocol that column is of."""
    if column is None:
        return 0, 0
    count = board[f"{column}.count"] if f"{column}.count" in board.columns else 0
    finished = board["num_done"] > 0
    return int((finished & (count > 0) & (count < board["num_done"])).sum()), int((finished & (count == 0)).sum())
