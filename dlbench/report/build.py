"""dlb_report's work: the aggregation (dlbench.aggregate), then the figures and index.html.

OUT/ receives the aggregation's files (results.csv, leaderboard.csv, ..., report.json), then
- figures/: the study figures (dlbench.report.figures, names starting with their kind) and the
  training curves of each method and setting (curves_<dataset>_<method>_<setting>), PNG and PDF,
  and drawn.json, the list of the figures drawn (a later report into OUT removes only those);
- figures/representatives/<dataset>_<method>_<setting>/: the pictures of the setting's
  representative run (representatives.csv; dlbench.report.model_pictures);
- index.html, the page (dlbench.report.page).

Every input is checked before the first file is written (the runs root, the output folder and
rank_by by the aggregation; here the two paths of OUT the report adds, and, once the tables name
them, the places of the figures and pictures: check_figure_places), so a mistake leaves nothing
behind. What cannot be drawn once the tables exist (a representative whose checkpoint is
gone or whose dataset is missing, a setting whose runs have no training log) is one line in the
log and on the page, not the end of the report.
"""

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlbench import rundir
from dlbench.aggregate import (check_output_folder, check_runs_root, prepare_aggregation, read_study, readable,
                               run_folder, setting_columns, write_aggregation)
from dlbench.aggregate.columns import IDENTITY
from dlbench.errors import UserError, describe_os_error, is_disk_fault
from dlbench.report import page
from dlbench.report.figure_files import figure_files
from dlbench.report.figures.settings import figure_name, finished_runs, label_settings

FIGURES = "figures"
REPRESENTATIVES = "representatives"
STUDY_TEXT_LIMIT = 200_000  # characters of the study's gin file shown; a study file is a page or two


@dataclass
class Setting:
    """One row of the leaderboard: its key (dataset, method and setting values, missing ones as
    None), its label ('beta_vae, beta=4') and a name for files ('dsprites_beta_vae_beta=4')."""

    key: tuple
    dataset: str
    method: str
    label: str
    name: str


@dataclass
class Report:
    """What build_report wrote: the Aggregation, index.html's path, the study figures and the
    training curves ({name: [png, pdf]}), the representatives' pictures (page.Representative)
    and the lines saying what could not be drawn."""

    aggregation: object
    index: Path
    figures: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    representatives: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def figure_files(self):
        """Every figure file written (PNG, PDF, GIF)."""
        pictures = [path for entry in self.representatives for paths in entry.pictures.values() for path in paths]
        return [path for paths in (*self.figures.values(), *self.curves.values()) for path in paths] + pictures


def build_report(runs_root, out_dir, rank_by=None, log=print, only=None):
    """Aggregate the runs under runs_root (those matching one of the --only patterns, if given) into
    out_dir, draw every figure into out_dir/figures and write out_dir/index.html; returns a Report.
    log receives a line per stage and per problem."""
    runs_root, out_dir = Path(runs_root), Path(out_dir)
    check_report_paths(runs_root, out_dir)
    # one report at a time into a folder: two at once had each listed only its own figures in
    # drawn.json, and the other's were then kept for good as the user's
    with rundir.hold_run(out_dir, "reported"):
        return _build_report(runs_root, out_dir, rank_by, log, only)


def _build_report(runs_root, out_dir, rank_by, log, only):
    from dlbench.report.figures import planned_figures, study_figures

    aggregation = prepare_aggregation(runs_root, out_dir, rank_by, only)
    figures_dir = out_dir / FIGURES
    settings = leaderboard_settings(aggregation.board)
    planned = planned_figures(aggregation.results, aggregation.board)
    # the figures' names are known only now, from the tables: a folder where one goes had stopped
    # the report midway, after the tables and the figures before it
    check_figure_places(figure_places(aggregation, settings, planned, figures_dir))
    write_aggregation(aggregation, out_dir)
    # the page there describes the tables just replaced: stopped before its successor is written,
    # the report has no page rather than one that contradicts its tables
    (out_dir / page.INDEX).unlink(missing_ok=True)
    study_record, _ = read_study(runs_root)
    study = aggregation.report.get("study")
    report = Report(aggregation, out_dir / page.INDEX)

    log(f"drawing the study figures into {figures_dir}")
    drawn = DrawnFigures(figures_dir, log)
    try:
        report.figures = study_figures(aggregation.results, aggregation.board, figures_dir, study, planned)
        report.figures.update(draw_posterior_densities(aggregation.representatives, runs_root, figures_dir, study,
                                                       report.problems, log))
        drawn.add(report.figure_files)
        report.curves = draw_curves(aggregation.results, settings, runs_root, figures_dir, study, report.problems,
                                    log)
        drawn.add(report.figure_files)
        report.representatives = draw_representatives(aggregation.representatives, settings, runs_root,
                                                      figures_dir / REPRESENTATIVES, study, report.problems, log)
    except BaseException:  # a stop midway (Ctrl-C, a full disk): what the stage drew before it is listed too
        with contextlib.suppress(OSError):
            drawn.add_written_since_start()
        raise
    drawn.finish(report.figure_files, log)
    content = page.PageContent(
        out_dir=out_dir, report=aggregation.report, board=aggregation.board, study=study_record,
        study_text=study_text(study_record), figures=report.figures, curves=report.curves,
        representatives=report.representatives, problems=report.problems)
    page.write_page(content)
    return report


# what a report draws into figures/: other files there are left alone
FIGURE_SUFFIXES = (".png", ".pdf", ".gif")
DRAWN = "drawn.json"
# file systems that keep modification times in whole seconds (or two) may date a file written just
# after the report started before it
MTIME_SLACK_SECONDS = 2.0


class DrawnFigures:
    """figures/drawn.json: the figure files the reports into a folder drew. A report removes those
    of an earlier one that it does not draw again (another --only slice, a setting gone: beside
    the new ones they would read as this study's), and nothing else: a figure the list does not
    name is the user's (the list is missing or unreadable: nothing is removed). The list grows as
    each stage draws, so that a report stopped midway leaves none of its figures unlisted."""

    def __init__(self, figures_dir, log=print):
        self.folder = Path(figures_dir)
        self.earlier = self._listed(log)
        self.started = time.time() - MTIME_SLACK_SECONDS

    def _listed(self, log):
        path = self.folder / DRAWN
        if not path.is_file():
            return set()
        try:
            names = json.loads(path.read_text(encoding="utf-8"))["figures"]
            listed = {(self.folder / name).resolve() for name in names if isinstance(name, str)}
        except (OSError, ValueError, KeyError, TypeError) as err:
            # said: the figures of the report before stay beside this one's without a word otherwise
            log(f"'{path}' is unreadable ({type(err).__name__}), so the figures of earlier reports in "
                f"{self.folder} are left in place; remove by hand those this report does not draw again")
            return set()
        inside = self.folder.resolve()
        return {path for path in listed if path.suffix in FIGURE_SUFFIXES and path.is_relative_to(inside)}

    def add_written_since_start(self):
        """List every figure file written since this report started: a stage stopped midway had
        left the figures it drew unlisted, which the next report then kept as the user's."""
        self.add(path for path in self.folder.rglob("*") if path.suffix in FIGURE_SUFFIXES and path.is_file()
                 and path.stat().st_mtime >= self.started)

    def add(self, written):
        """Record the figures written so far, with the earlier ones not yet removed."""
        self._write(self.earlier | {Path(path).resolve() for path in written})

    def finish(self, written, log):
        """Remove the earlier figures not written again (and the folders that leaves empty); the
        list becomes what was written."""
        inside = self.folder.resolve()
        keep = {Path(path).resolve() for path in written}
        stale = sorted(path for path in self.earlier - keep if path.is_file())
        for path in stale:
            path.unlink()
            folders = path.relative_to(inside).parts[:-1]
            if folders:  # figures/ itself stays: the list is written there
                rundir.remove_empty_folders(path.parent, top=inside / folders[0])
        self._write(keep)
        if stale:
            log(f"removed {len(stale)} figure file{'s' if len(stale) != 1 else ''} of an earlier report that this "
                f"one does not draw")

    def _write(self, paths):
        self.folder.mkdir(parents=True, exist_ok=True)
        inside = self.folder.resolve()
        rundir.write_json(self.folder / DRAWN, {"figures": sorted(str(path.relative_to(inside)) for path in paths)})


def check_report_paths(runs_root, out_dir):
    """The aggregation's checks (runs root, then output folder) and the report's own: its figures
    folder must not be a file, nor index.html a folder."""
    check_runs_root(runs_root)
    check_output_folder(out_dir, runs_root)
    figures_dir, index = out_dir / FIGURES, out_dir / page.INDEX
    if figures_dir.exists() and not figures_dir.is_dir():
        raise UserError(f"'{figures_dir}' is a file, where the report puts its figures folder; "
                        f"move it away or choose another --out")
    if index.is_dir():
        raise UserError(f"'{index}' is a folder, where the report writes its page; move it away or choose "
                        f"another --out")


def figure_places(aggregation, settings, planned, figures_dir):
    """[(path, 'file' or 'folder', what the report puts there)] for every place the report may write
    into figures_dir, given the aggregation, its leaderboard_settings and its planned study figures."""
    from dlbench.report.figures import aggregate_posterior_density

    names = [*planned, *aggregate_posterior_density.figure_names(aggregation.representatives)]
    places = [(path, "file", f"figure {path.name}") for name in names for path in figure_files(figures_dir, name)]
    curves = curve_settings(aggregation.results, settings)
    places += [(path, "file", f"training curves {path.name}") for setting in curves
               for path in figure_files(figures_dir, f"curves_{setting.name}")]
    places.append((figures_dir / DRAWN, "file", "list of the figures drawn"))
    chosen = representative_settings(aggregation.representatives, settings)
    if chosen:
        from dlbench.report.model_pictures import PICTURE_FILES

        folder = figures_dir / REPRESENTATIVES
        places.append((folder, "folder", "folder of the representative models' pictures"))
        for setting in chosen:
            places.append((folder / setting.name, "folder", f"folder of the pictures of {setting.label}"))
            places += [(folder / setting.name / name, "file", f"picture {name} of {setting.label}")
                       for name in PICTURE_FILES]
    return places


def check_figure_places(places):
    """Refuse anything standing where one of places ((path, 'file' or 'folder', what)) goes: a
    folder where a figure goes had stopped the report midway, and a file where a folder of pictures
    goes had left those pictures out with exit 0."""
    for path, kind, what in places:
        if kind == "file" and path.exists() and not path.is_file():
            raise UserError(f"'{path}' is {'a folder' if path.is_dir() else 'not a file'}, where the report writes "
                            f"its {what}; move it away and run the command again")
        if kind == "folder" and path.exists() and not path.is_dir():
            raise UserError(f"'{path}' is a file, where the report puts its {what}; move it away and run the "
                            f"command again")


def leaderboard_settings(board):
    """A Setting per leaderboard row, in the board's order. Labels name a setting by the setting
    columns that vary within its dataset and method (and the dataset, where there are several);
    labels and file names are made unique."""
    group = IDENTITY + setting_columns(board)
    several_datasets = board["dataset"].nunique() > 1
    settings, labels, names = [], set(), set()
    for _, rows in board.groupby(IDENTITY, sort=False):
        for index, row in label_settings(rows).iterrows():
            parts = [part for part in (row["method"], row["setting"]) if part]
            label = ", ".join(parts) + (f" on {row['dataset']}" if several_datasets else "")
            setting = Setting(setting_key(row, group), row["dataset"], row["method"], unique_name(label, labels),
                              unique_name(figure_name(row["dataset"], *parts), names))
            settings.append((index, setting))
    return [setting for _, setting in sorted(settings, key=lambda pair: pair[0])]


def setting_key(row, columns):
    """The values of columns in row, missing ones as None (NaN never equals itself, so it cannot
    be part of a key that is looked up)."""
    return tuple(None if pd.isna(row[c]) else row[c] for c in columns)


def unique_name(name, taken):
    """name, or name-2, name-3, ... where two settings' names or labels would clash (values that
    print alike); recorded in taken."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate)
    return candidate


def finished_runs_of_settings(results):
    """{setting key: [the run_dir of each of its finished runs]}."""
    group = IDENTITY + setting_columns(results)
    runs_of = {}
    for _, run in finished_runs(results).iterrows():
        runs_of.setdefault(setting_key(run, group), []).append(run["run_dir"])
    return runs_of


def curve_settings(results, settings):
    """The settings whose training curves are drawn: those with a finished run."""
    runs_of = finished_runs_of_settings(results)
    return [setting for setting in settings if setting.key in runs_of]


def representative_settings(chosen, settings):
    """The Setting of each row of representatives.csv (chosen), in its order."""
    by_key = {setting.key: setting for setting in settings}
    group = IDENTITY + setting_columns(chosen)
    return [by_key[setting_key(row, group)] for _, row in chosen.iterrows()]


def draw_curves(results, settings, runs_root, folder, study, problems, log):
    """The training curves of each setting's finished runs: {setting label: [png, pdf]}. A setting
    without a finished run has none; one whose runs have no usable log is a line in problems, and
    so is each run left out of its setting's curves or drawn without some rows of its log."""
    from dlbench.report.curves import training_curves

    runs_of = finished_runs_of_settings(results)
    drawn = curve_settings(results, settings)
    log(f"drawing the training curves of {len(drawn)} setting{'s' if len(drawn) != 1 else ''}")
    curves = {}
    for setting in drawn:
        def note_run(run_dir, line, label=setting.label):
            note(problems, log, f"training curves of {label}: run {run_dir.relative_to(runs_root)} {line}")

        try:
            run_dirs = sorted(run_folder(runs_root, name) for name in runs_of[setting.key])
            curves[setting.label] = training_curves(run_dirs, folder, f"curves_{setting.name}", setting.label,
                                                    setting.dataset, study, note_run)
        except (UserError, OSError) as err:
            if is_disk_fault(err):
                raise
            note(problems, log, f"training curves of {setting.label} not drawn: {reason(err)}")
    return curves


def draw_posterior_densities(chosen, runs_root, folder, study, problems, log):
    """The aggregate posterior of each setting's representative (rows of representatives.csv), on
    a grid of two hyperparameters, for models with two latents: {name: [png, pdf]}."""
    from dlbench.report.figures import aggregate_posterior_density

    return aggregate_posterior_density.draw_figures(chosen, runs_root, folder, study,
                                                    problem=lambda line: note(problems, log, line))


def draw_representatives(chosen, settings, runs_root, folder, study, problems, log):
    """The pictures of each representative run (a row of representatives.csv) into folder/<setting
    name>/: a page.Representative per row, with its pictures or the reason there are none."""
    from dlbench.report.model_pictures import model_pictures

    entries = []
    if len(chosen):
        log(f"drawing the pictures of {len(chosen)} representative model{'s' if len(chosen) != 1 else ''}")
    for setting, (_, row) in zip(representative_settings(chosen, settings), chosen.iterrows()):
        entry = page.Representative(setting.label, row["run_dir"], row.to_dict())
        try:
            run_dir = require_weights(run_folder(runs_root, row["run_dir"]))
            entry.pictures = model_pictures(run_dir, folder / setting.name, study)
        except (UserError, OSError) as err:
            if is_disk_fault(err):
                raise
            entry.problem = reason(err)
            note(problems, log, f"pictures of the representative of {setting.label} ({row['run_dir']}) "
                                f"not drawn: {entry.problem}")
        entries.append(entry)
    return entries


def require_weights(run_dir):
    """run_dir, once its final weights are known to be there: checked first, since model_pictures
    loads (and may generate) the dataset before the model, which is wasted for a run without weights."""
    path = rundir.weights_path(run_dir)
    if not path.is_file():
        raise UserError(f"'{path}' is missing; train the run again with `{rundir.retrain_command(run_dir)}`")
    return run_dir


def reason(err):
    text = describe_os_error(err) if isinstance(err, OSError) else str(err)
    return readable(" ".join(text.split()))


def note(problems, log, line):
    """line, which may name a run's files, with their names as the tables show them (readable)."""
    problems.append(readable(line))
    log(problems[-1])


def study_text(record):
    """The text of the study's gin file that study.json names, where it still is; None otherwise."""
    path = Path(record["file"]) if record and isinstance(record.get("file"), str) else None
    if path is None or not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(STUDY_TEXT_LIMIT)
    except OSError:
        return None  # the page says the file could not be read
