"""Aggregation of a study: dlb_aggregate RUNS_ROOT --out DIR writes into DIR

- results.csv and results.parquet: one row per run (the representation modes are columns, see
  below): run_dir (relative to RUNS_ROOT), dataset (with its options, and its grid where runs of
  it trained on several: collect.py), method, seed, status, dataset_shape (the grid: observations
  and factor sizes; no column where no run.json has it), then hyperparameters
  `hp.<name>`, settings `train.<name>` and `model.<name>` (nested ones as `model.prior.name`), the
  final training scalars of model/results.json `train_result.<name>`, and every metric value
  `[<mode>.]<metric>[<protocol tag>].<key>`: `mig.discrete_mig` for the mean representation and the
  default protocol, `sampled.mig.discrete_mig` for the sampled one, `mig[num_train=500].discrete_mig`
  for another protocol (results of different protocols are never mixed). Numbers are numbers in
  both files; a setting that mixes kinds across runs is text.
- leaderboard.csv: one row per dataset, method and setting (the hp., train. and model. columns,
  bookkeeping settings aside): num_runs = num_done + num_failed + num_unfinished, then for every
  value column (metrics, then train_result.*) `<column>.count`, `.mean`, `.std`, `.sem`,
  `.median`, `.q25`, `.q75` and `.upper_half_mean`, over the finished runs only
  (dlbench/aggregate/leaderboard.py defines each statistic).
- best.csv: per dataset and method the leaderboard row of the setting with the best mean of the
  `--rank_by` column, after the columns rank_by (the value column) and rank_direction.
- representatives.csv: per dataset, method and setting the representative run (ISA-VAE, appendix
  A.5): dataset, method, the setting columns, run_dir, mig_column, mig, reconstruction_column,
  reconstruction, distance, distance_method, num_upper_half, num_candidates
  (dlbench/aggregate/representatives.py).
- report.json: runs root, study name (RUNS_ROOT/study.json), dlbench version, rank_by, counts,
  and the failed, unfinished, left-out and duplicate runs with their run_dir and status, and the
  names of the runs study.json lists that have no run directory (not_started) and of the runs
  counted that it does not list (not_in_study).

Modules: collect.py reads the runs, columns.py names the columns, leaderboard.py holds the
statistics and best.csv, representatives.py the representative runs, outputs.py the files,
pipeline.py puts them together, benchmark.py is dlb_bench aggregate.
"""

from dlbench.aggregate.collect import (Collection, check_runs_root, collect, dataset_label, read_study, readable,
                                      run_folder, typed_columns)
from dlbench.aggregate.columns import (lower_is_better, metric_columns, parse_metric_column, rankable_names,
                                       ranking_column, resolve_metric_column, setting_columns, value_columns)
from dlbench.aggregate.leaderboard import STATISTICS, best_settings, leaderboard, summarise, upper_half
from dlbench.aggregate.outputs import FILES, check_output_folder
from dlbench.aggregate.pipeline import (DEFAULT_RANK_BY, Aggregation, aggregate, aggregate_runs, prepare_aggregation,
                                       rank_column, write_aggregation)
from dlbench.aggregate.representatives import distances_to_mean, representative, representatives
from dlbench.metrics import protocol_tag  # tests and callers have imported it from here

__all__ = [
    "Aggregation", "Collection", "DEFAULT_RANK_BY", "FILES", "STATISTICS", "aggregate", "aggregate_runs",
    "best_settings", "check_output_folder", "check_runs_root", "collect", "dataset_label", "distances_to_mean",
    "leaderboard", "lower_is_better", "metric_columns", "parse_metric_column", "prepare_aggregation", "protocol_tag",
    "rank_column", "rankable_names", "ranking_column", "read_study", "readable", "representative", "representatives",
    "resolve_metric_column", "run_folder", "setting_columns", "summarise", "typed_columns", "upper_half",
    "value_columns", "write_aggregation",
]
