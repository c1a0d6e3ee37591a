"""dlb_aggregate's work: check every input, read the runs, build every table, and only then write
the files (each atomically), so a mistake leaves nothing half-written."""

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlbench import rundir
from dlbench.aggregate import outputs
from dlbench.aggregate.collect import check_runs_root, collect, read_study, readable
from dlbench.aggregate.columns import (TRAIN_RESULT_PREFIX, columns_of_metric, is_setting, metric_columns, metric_name,
                                       named_metric, other_protocols, parse_metric_column, rankable_names,
                                       ranking_column, study_metric_column, train_result_columns, value_columns)
from dlbench.aggregate.leaderboard import best_settings, leaderboard, unranked_pairs
from dlbench.aggregate.outputs import check_output_folder
from dlbench.aggregate.representatives import representatives
from dlbench.errors import UserError

DEFAULT_RANK_BY = "mig"
SHOWN_DUPLICATES = 3  # a summary line names this many duplicates (or runs), then counts the rest


@dataclass
class Aggregation:
    """What dlb_aggregate wrote (results, board, best, representatives and report: the contents of
    results.csv, leaderboard.csv, best.csv, representatives.csv and report.json; files: their
    paths, once written) and what it did not count (left_out, duplicates and damaged_results, as in
    Collection)."""

    results: pd.DataFrame
    board: pd.DataFrame
    left_out: list
    duplicates: list
    best: pd.DataFrame = None
    representatives: pd.DataFrame = None
    report: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    contents: dict = field(default_factory=dict, repr=False)  # {file name: bytes}, before they are written
    damaged_results: dict = field(default_factory=dict)  # as in Collection

    def notes(self):
        """The summary lines about what was not counted: one per damaged file, one for duplicates,
        one for failed and unfinished runs, one for a ranking that could not be made."""
        lines = list(self.left_out)
        if self.duplicates:
            shown = [readable(f"{copy} (same run as {kept}{differ_note(differing, not_counted)})")
                     for copy, kept, differing, not_counted in self.duplicates[:SHOWN_DUPLICATES]]
            more = len(self.duplicates) - len(shown)
            runs = "run" if len(self.duplicates) == 1 else "runs"
            lines.append(f"{len(self.duplicates)} duplicate {runs} not counted: {', '.join(shown)}"
                         + (f" and {more} more" if more else ""))
            differ = sum(bool(duplicate.differing) for duplicate in self.duplicates)
            if differ:
                lines.append(f"{differ} of the duplicates {_verb(differ, 'holds', 'hold')} other metric values "
                             f"than the copy counted (an old or edited copy?); report.json lists them under "
                             f"duplicates with results_differ")
            lines += not_counted_notes(self.duplicates)
        counts = self.report.get("counts", {})
        if counts.get("failed") or counts.get("unfinished"):
            runs = [_runs(counts[kind], kind) for kind in ("failed", "unfinished") if counts.get(kind)]
            one = counts["failed"] + counts["unfinished"] == 1
            lines.append(f"{' and '.join(runs)} counted but left out of the statistics; report.json lists "
                         f"{'it with its' if one else 'them with their'} status")
        if counts.get("not_started"):
            lines.append(f"{counts['not_started']} of the study's runs {_verb(counts['not_started'], 'has', 'have')} "
                         f"no run directory at their place (not started, moved, or without its run.json); "
                         f"report.json lists them")
        if counts.get("not_in_study"):
            shown = ", ".join(self.report["not_in_study"][:SHOWN_DUPLICATES])
            more = counts["not_in_study"] - min(counts["not_in_study"], SHOWN_DUPLICATES)
            lines.append(f"{_runs(counts['not_in_study'])} counted {_verb(counts['not_in_study'], 'is', 'are')} not "
                         f"among the runs of study.json (another study's, or trained there by hand?): {shown}"
                         + (f" and {more} more" if more else "")
                         + "; move them out of the root if they are not this study's")
        if counts and not counts.get("done"):
            lines.append("no run has finished training: the leaderboard holds only the counts")
        short = self.report.get("rank_by_short", {})
        if short.get("settings_in_part") or short.get("settings_without"):
            lines.append(f"{rank_short_note(self.report['rank_by'], short)}; {_fill_in_advice(self.report['rank_by'])}")
        if self.report.get("rank_by") is None and counts.get("done"):
            protocols = other_protocols(self.results, DEFAULT_RANK_BY)
            absent = no_default_note(DEFAULT_RANK_BY, protocols) if protocols else f"no run has {DEFAULT_RANK_BY}"
            damaged = self.damaged_results.get(named_metric(DEFAULT_RANK_BY), [])
            if damaged:  # "no run has mig" had been said of runs whose every mig result was left out as damaged
                absent = (f"no run has a usable result of {DEFAULT_RANK_BY}: {damaged_note(damaged)}"
                          + (f"; its other protocols here: {', '.join(protocols)}" if protocols else ""))
            names = [shlex.quote(name) for name in rankable_names(self.results)]
            how = (f"rank with --rank_by one of: {', '.join(names)}" if names
                   else no_rankable_note(self.results, bool(damaged)))
            lines.append(f"best.csv is empty: {absent}; {how}")
        return lines


def no_rankable_note(results, damaged=False):
    """What --rank_by can take where no metric evaluated has a headline value (rotation and
    unsupervised have several values, none the headline): one of their columns, else a training
    result ("no metric was evaluated" had been said of runs with such metrics too). damaged: the
    default metric's results were left out as damaged (then it was evaluated, and is said so)."""
    parsed = {}  # the first value column of each metric, by the name it has in results.csv
    for column in metric_columns(results):
        metric = parse_metric_column(column)
        if metric is not None:
            parsed.setdefault(metric_name(metric), column)
    if parsed:
        columns = ", ".join(shlex.quote(column) for column in parsed.values())
        return (f"the metrics evaluated ({', '.join(parsed)}) have no headline value to rank by; rank with "
                f"--rank_by one of their columns of results.csv, e.g. {columns}")
    trained = train_result_columns(results)
    return (("no other metric has a usable result" if damaged else "no metric was evaluated")
            + "; evaluate the runs with dlb_evaluate"
            + (f", or rank by a training result, e.g. --rank_by {shlex.quote(trained[0])}" if trained else ""))


def rank_column(results, rank_by, damaged_results=None, study=None):
    """The value column best.csv ranks by: the one rank_by names (a UserError saying why not and
    what to give when no run has it), or for rank_by None the default metric's, or None when no run
    has it. A metric's name without a protocol tag is the protocol the study (the runs root's
    study.json) evaluates it with where some run has that, else its default protocol only
    (columns.ranking_column): `--rank_by factor_vae` of a study evaluating factor_vae with other
    parameters had been refused, where the default mig followed the study. damaged_results:
    Collection.damaged_results, to say that the runs' results of rank_by were left out as damaged,
    not absent."""
    if rank_by is None:  # '' is no metric, not mig
        return study_metric_column(results, study, DEFAULT_RANK_BY, ranking_column)
    column = study_metric_column(results, study, rank_by, ranking_column)
    if column is None:
        _refuse_rank_by(results, rank_by, damaged_results or {})
    return column


def _refuse_rank_by(results, rank_by, damaged_results):
    """The UserError for a --rank_by no run has a value of, saying why: a setting, damaged results,
    other protocols only, a metric of several values without a headline, or unknown."""
    names = [shlex.quote(name) for name in rankable_names(results)]
    if is_setting(rank_by):
        raise UserError(f"--rank_by {rank_by} is a setting, not a measured value: best.csv ranks the settings of "
                        f"each dataset and method by a value measured of their runs; give a metric, one of: "
                        f"{', '.join(names) or 'none yet (evaluate the runs with dlb_evaluate)'}")
    damaged = damaged_results.get(named_metric(rank_by), [])
    if damaged:
        raise UserError(f"--rank_by {rank_by}: no run has a usable result of it: {damaged_note(damaged)}")
    columns = value_columns(results)
    if not columns:
        raise UserError(f"unknown --rank_by {rank_by!r}: no run under the runs root has a metric result or "
                        f"training result yet; leave --rank_by out, or evaluate the runs with dlb_evaluate first")
    protocols = other_protocols(results, rank_by)
    if protocols:
        raise UserError(f"--rank_by {rank_by}: {no_default_note(rank_by, protocols)} "
                        f"({'give' if len(protocols) == 1 else 'give one of them, e.g.'} "
                        f"--rank_by {shlex.quote(protocols[0])})")
    several = columns_of_metric(results, rank_by)
    if several:  # unsupervised, rotation: no value is the metric's headline
        raise UserError(f"--rank_by {rank_by}: its results hold several values and none is its headline; "
                        f"give one of them: {', '.join(map(shlex.quote, several))}")
    headless = _metrics_without_headline(results)
    several = (f"; metrics of several values by one of their columns, e.g. {', '.join(headless)}"
               if headless else "")
    raise UserError(f"unknown --rank_by {rank_by!r}: no run has it; give one of the metrics present: "
                    f"{', '.join(names) or 'none'}{several} (or a column of results.csv holding measured values, "
                    f"e.g. {shlex.quote(columns[0])})")


def _metrics_without_headline(results):
    """The first column of each metric present that has no headline value (unsupervised, rotation;
    sampled ones too), which --rank_by takes by a column: ['unsupervised.mutual_info_score']."""
    rankable = set(rankable_names(results))
    first = {}
    for column in metric_columns(results):
        metric = parse_metric_column(column)
        if metric is not None and metric_name(metric) not in rankable:
            first.setdefault(metric_name(metric), column)
    return [shlex.quote(column) for column in first.values()]


def damaged_note(damaged):
    """How many results of a metric were left out as damaged or outdated (damaged: their
    collect.LeftOutResult), and the first."""
    kinds = sorted({"outdated" if result.outdated else "damaged" for result in damaged})
    return (f"{len(damaged)} {'was' if len(damaged) == 1 else 'were'} left out as {' or '.join(kinds)}, the first: "
            f"{damaged[0].line.removeprefix('metric left out: ')}")


def no_default_note(name, protocols):
    """Why a metric's name ranks nothing where runs have only other protocols of it."""
    return f"no run has {name}'s default protocol; its results here are of {', '.join(protocols)}"


def aggregate_runs(runs_root, out_dir, rank_by=None, only=None):
    """Write the files of outputs.FILES for the runs under runs_root (those matching one of the
    --only patterns, if given) to out_dir; returns an Aggregation. Every input (the runs root, the
    output folder, rank_by, the patterns) is checked and every table built before the first file
    is written. One aggregation at a time writes into a folder (another is told who holds it)."""
    aggregation = prepare_aggregation(runs_root, out_dir, rank_by, only)
    with rundir.hold_run(out_dir, "aggregated"):
        return write_aggregation(aggregation, out_dir)


def prepare_aggregation(runs_root, out_dir, rank_by=None, only=None):
    """aggregate_runs' checks and tables, nothing written yet: an Aggregation whose contents are
    the bytes of its files (dlb_report checks the places of its figures, which the tables name,
    before anything is written)."""
    out_dir = Path(out_dir)
    check_runs_root(runs_root)
    check_output_folder(out_dir, runs_root)
    outputs.check_parquet_writer()
    collection = collect(runs_root, only)
    study, study_note = read_study(runs_root)
    if study_note:
        collection.left_out.append(study_note)
    results = collection.results
    column = rank_column(results, rank_by, collection.damaged_results, study)
    board = leaderboard(results)
    best = best_settings(board, column or DEFAULT_RANK_BY)  # without the column: no rows, the same header
    chosen = representatives(results, study)
    report = outputs.report_record(runs_root, study, collection, board, chosen, column, unranked_pairs(board, best),
                                   only)
    contents = {"results.csv": outputs.csv_bytes(results), "results.parquet": outputs.parquet_bytes(results),
                "leaderboard.csv": outputs.csv_bytes(board), "best.csv": outputs.csv_bytes(best),
                "representatives.csv": outputs.csv_bytes(chosen), "report.json": outputs.json_bytes(report)}
    return Aggregation(results, board, collection.left_out, collection.duplicates, best, chosen, report,
                       contents=contents, damaged_results=collection.damaged_results)


def write_aggregation(aggregation, out_dir):
    """Write the files of a prepare_aggregation (as one set); returns it, with their paths."""
    aggregation.files = outputs.write_files(Path(out_dir), aggregation.contents)
    return aggregation


def aggregate(runs_root, out_dir, rank_by=None):
    """aggregate_runs, returning only the two DataFrames (results, leaderboard)."""
    aggregation = aggregate_runs(runs_root, out_dir, rank_by)
    return aggregation.results, aggregation.board


def differ_note(columns, not_counted=()):
    """What follows a duplicate's 'same run as ...': the metric columns in which it differs, and
    those it alone holds (not counted)."""
    note = f"; its {', '.join(columns)} differ" if columns else ""
    return note + (f"; only it holds {', '.join(not_counted)}, not counted" if not_counted else "")


def _verb(count, one, several):
    return one if count == 1 else several


def _runs(count, kind=""):
    """'1 failed run', '3 runs'."""
    return f"{count} {kind + ' ' if kind else ''}run{'' if count == 1 else 's'}"


def not_counted_notes(duplicates):
    """The line about the results that only duplicates hold: none of them is counted, so a metric
    evaluated in a copy alone had vanished from the tables without a word."""
    holding = [duplicate for duplicate in duplicates if duplicate.not_counted]
    if not holding:
        return []
    shown = "; ".join(f"{readable(duplicate.copy)}: {', '.join(duplicate.not_counted)}"
                      for duplicate in holding[:SHOWN_DUPLICATES])
    more = len(holding) - min(len(holding), SHOWN_DUPLICATES)
    return [f"{len(holding)} of the duplicates {_verb(len(holding), 'holds', 'hold')} results the copy counted "
            f"lacks, which are not counted ({shown}"
            + (f"; and {more} more" if more else "") + "); evaluate the copy counted with those metrics "
            "(dlb_evaluate), or move the other copy out of the root; report.json lists them under duplicates "
            "with results_not_counted"]


def rank_short_note(rank_by, short):
    """The line about settings short of best.csv's ranking value (report.json's rank_by_short)."""
    without, in_part = short["settings_without"], short["settings_in_part"]
    return (f"best.csv ranks by {rank_by}, which not every finished run has: {without} setting"
            f"{'' if without == 1 else 's'} {_have(without)} none (not candidates) and {in_part} {_have(in_part)} it "
            f"from some of {'its' if in_part == 1 else 'their'} runs")


def _fill_in_advice(rank_by):
    """How the runs short of the ranking value get it: a training scalar is logged by some methods
    only (beta_tcvae's tc), and no command computes it afterwards."""
    if rank_by.startswith(TRAIN_RESULT_PREFIX):
        return "their methods do not log it in training; rank by another --rank_by"
    return "evaluate their runs with that protocol (dlb_evaluate), or rank by another --rank_by"


def _have(count):
    return "has" if count == 1 else "have"
