"""index.html: the study report as one self-contained page.

It holds the study's configuration (report.json, RUNS_ROOT/study.json and the study's gin file),
the leaderboard as a sortable table, every figure (the PNG shown, the PDF linked), the
representative models' pictures, the failed and unfinished runs, what was left out, and links to
the aggregation's files. Links are relative (the report folder can be moved, zipped, served or
opened from disk) and nothing is fetched from elsewhere: the styles and the few lines of script
that sort the table are in the page. Every text that comes from a file (names, paths, messages,
the gin file) is escaped, so a run named '<script>' is shown, not run.
"""

import html
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from dlbench.aggregate.leaderboard import COUNT_COLUMNS
from dlbench.aggregate.pipeline import differ_note, rank_short_note
from dlbench.config import shown_gin_path
from dlbench.report.figures.metric_columns import board_columns, headline_columns
from dlbench.report.figures.settings import format_value, varying_settings
from dlbench.rundir import atomic_write_text

INDEX = "index.html"

# The study figures by kind (the start of their names), in the page's order.
FIGURE_KINDS = (
    ("tradeoff_", "Disentanglement against reconstruction"),
    ("distribution_", "Spread over seeds"),
    ("correlations_", "Rank correlations between metrics"),
    ("strength_", "Metrics against regularisation strength"),
    ("tc_vs_mig_", "Total correlation against MIG"),
    ("rotation_", "The objective, MIG and FactorVAE under rotations of the latent space"),
    ("elbo_terms_", "The objective, the ELBO and its terms against beta"),
    ("aggregate_posterior_", "Aggregate posterior q(z) of each setting's representative"),
)
OTHER_FIGURES = "Other figures"
# A representative's pictures (dlbench.report.model_pictures), in the page's order.
PICTURES = (("reconstructions", "Reconstructions (top: data, bottom: reconstruction)"),
            ("traversals", "Latent traversals, -2 to 2 prior std, latents ordered by KL"),
            ("traversals_gif", "Latent traversals, animated"),
            ("factor_map", "Mean code over two factors"))
REPRESENTATIVE_VALUES = (("mig", "MIG"), ("reconstruction", "reconstruction"), ("distance", "distance"),
                         ("num_upper_half", "runs in the upper half"))
RUN_FIELDS = ("run_dir", "dataset", "method", "seed", "status", "step", "error")
COUNT_NAMES = {"run_json_found": "run.json files found", "runs": "runs counted", "done": "finished",
               "failed": "failed", "unfinished": "unfinished", "not_started": "not started (study.json lists them)",
               "not_in_study": "counted, not in study.json",
               "runs_left_out": "runs left out (damaged)",
               "metric_results_left_out": "metric results left out (damaged)",
               "results_with_values_left_out": "results with a value left out (not a finite number)",
               "duplicates": "duplicate copies",
               "settings": "settings", "representatives": "representative models"}


@dataclass
class Representative:
    """A setting's representative run on the page: the setting's label, the run (relative to the
    runs root), its row of representatives.csv, and its pictures ({name: [paths]}) or the reason
    there are none."""

    label: str
    run_dir: str
    values: dict
    pictures: dict = field(default_factory=dict)
    problem: str = None


@dataclass
class PageContent:
    """What index.html shows; every path is under out_dir, where the page is written."""

    out_dir: Path
    report: dict            # report.json
    board: object           # leaderboard.csv as a DataFrame
    study: dict = None      # RUNS_ROOT/study.json, where there is one
    study_text: str = None  # the text of the study's gin file, where it could be read
    figures: dict = field(default_factory=dict)          # study figures {name: [png, pdf]}
    curves: dict = field(default_factory=dict)           # training curves {setting label: [png, pdf]}
    representatives: list = field(default_factory=list)  # [Representative]
    problems: list = field(default_factory=list)         # lines: what could not be drawn


def write_page(content):
    """Write content.out_dir/index.html atomically; returns its path."""
    path = Path(content.out_dir) / INDEX
    atomic_write_text(path, render_page(content))
    return path


def render_page(content):
    """index.html's text."""
    study = content.report.get("study")
    title = "dlbench report" + (f": study {study}" if study else "")
    sections = [
        ("configuration", "Configuration", configuration_section(content)),
        ("leaderboard", "Leaderboard", leaderboard_section(content.board)),
        ("figures", "Figures", figures_section(content)),
        ("curves", "Training curves", curves_section(content)),
        ("representatives", "Representative models", representatives_section(content)),
        ("failures", "Failed and unfinished runs", failures_section(content.report)),
        ("left-out", "Left out", left_out_section(content)),
        ("files", "Files", files_section(content)),
    ]
    nav = " · ".join(f'<a href="#{anchor}">{heading}</a>' for anchor, heading, _ in sections)
    body = "\n".join(f'<section id="{anchor}">\n<h2>{heading}</h2>\n{text}\n</section>'
                     for anchor, heading, text in sections)
    return PAGE.format(title=esc(title), nav=nav, body=body, style=STYLE, script=SCRIPT)


def esc(value):
    return html.escape(str(value))


def link(path, out_dir):
    """A relative URL from the page to path (a file under out_dir)."""
    return quote(Path(os.path.relpath(path, out_dir)).as_posix())


def definition_table(rows):
    """A two-column table of (name, already escaped HTML) rows."""
    return "<table class=\"facts\">\n" + "\n".join(f"<tr><th>{esc(name)}</th><td>{value}</td></tr>"
                                                   for name, value in rows) + "\n</table>"


def plain_list(lines):
    return "<ul>\n" + "\n".join(f"<li>{esc(line)}</li>" for line in lines) + "\n</ul>"


# --- configuration ---------------------------------------------------------------------------------

def configuration_section(content):
    report, study = content.report, content.study
    damaged = any(line.startswith("study left out") for line in report.get("left_out", []))
    # "no study.json" had been said of a root whose study.json was there but left out as unreadable
    none = "study.json left out as unreadable, see below" if damaged else "no study.json in the runs root"
    rows = [("study", esc(report.get("study") or f"none recorded ({none})")),
            ("runs root", f"<code>{esc(report.get('runs_root'))}</code>"),
            ("runs taken", "those matching " + ", ".join(f"<code>{esc(p)}</code>" for p in report["only"])
             if report.get("only") else "all"),
            ("dlbench version", esc(report.get("dlbench_version"))),
            ("best.csv ranked by", esc(report.get("rank_by") or "nothing (no value to rank by)"))]
    rows += [(COUNT_NAMES.get(key, key), esc(value)) for key, value in report.get("counts", {}).items()]
    if study:
        rows += [("runs in the study", esc(len(study.get("runs", [])))),
                 ("metrics", esc(", ".join(map(str, study.get("metrics", []))))),
                 ("metric settings", f"<code>{esc(study.get('metric_params', {}))}</code>")]
    parts = [definition_table(rows)]
    if study and study.get("file"):
        parts.append(study_file_part(shown_gin_path(study["file"]), content.study_text))
    return "\n".join(parts)


def study_file_part(path, text):
    if text is None:
        return f"<p>The study file <code>{esc(path)}</code> is not readable here (moved, or on another machine).</p>"
    return (f"<p>The study file <code>{esc(path)}</code>, as it is now:</p>\n"
            f"<pre class=\"gin\">{esc(text)}</pre>")


# --- leaderboard -----------------------------------------------------------------------------------

def leaderboard_section(board):
    settings = varying_settings(board)
    metrics = headline_columns(board_columns(board), every_mode=True)  # a sampled result had been in the CSV only
    header = ([("dataset", "dataset"), ("method", "method")] + [(c, c) for c in settings]
              + [(c, c) for c in COUNT_COLUMNS]
              + [(f"{m.name} (mean ± s.e.)", f"{m.label}: mean ± standard error over the finished seeds")
                 for m in metrics])
    head = [f'<th title="{esc(hint)}">{esc(name)}</th>' for name, hint in header]
    rows = []
    for _, row in board.iterrows():
        cells = [text_cell(row["dataset"]), text_cell(row["method"])]
        cells += [value_cell(row[c]) for c in settings]
        cells += [value_cell(row[c]) for c in COUNT_COLUMNS]
        cells += [mean_cell(row[f"{m.column}.mean"], row[f"{m.column}.sem"]) for m in metrics]
        rows.append(cells)
    note = ("<p>One row per dataset, method and setting; the settings shown are those that vary. Click a "
            "column's header to sort by it (again to reverse). Every statistic of every metric is in "
            '<a href="leaderboard.csv">leaderboard.csv</a>; the best setting per method in '
            '<a href="best.csv">best.csv</a>.</p>')
    return note + "\n" + sortable_table("leaderboard-table", head, rows)


def sortable_table(table_id, head, rows):
    """A table the page's script sorts (head: th cells, rows: lists of td cells), scrolling
    sideways on its own where it is wider than the page."""
    body = "\n".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return (f'<div class="wide"><table class="sortable" id="{table_id}">\n<thead><tr>{"".join(head)}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table></div>")


def is_missing(value):
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def text_cell(value):
    return f"<td>{esc(value)}</td>"


def value_cell(value):
    """A setting or a count: numbers sort as numbers."""
    if is_missing(value):
        return '<td data-sort="">–</td>'
    shown = format_value(value)
    if is_number(value):
        return f'<td class="number" data-sort="{esc(value)}">{esc(shown)}</td>'
    return f"<td>{esc(shown)}</td>"


def mean_cell(mean, sem):
    """'0.123 ± 0.01', sorted by the mean; '–' without a finished value."""
    if is_missing(mean):
        return '<td data-sort="">–</td>'
    text = f"{mean:.4g}" + ("" if is_missing(sem) else f" ± {sem:.2g}")
    return f'<td class="number" data-sort="{float(mean)!r}">{esc(text)}</td>'


# --- figures ---------------------------------------------------------------------------------------

def figure_kind(name):
    return next((title for prefix, title in FIGURE_KINDS if name.startswith(prefix)), OTHER_FIGURES)


def figures_section(content):
    if not content.figures:
        return "<p>No study figure: no finished run has a metric result to draw.</p>"
    kinds = {}
    for name, paths in content.figures.items():
        kinds.setdefault(figure_kind(name), []).append((name, paths))
    order = [title for _, title in FIGURE_KINDS] + [OTHER_FIGURES]
    parts = []
    for title in sorted(kinds, key=order.index):
        parts.append(f"<h3>{esc(title)}</h3>")
        parts += [figure(paths, f"{title}: {name}", name, content.out_dir) for name, paths in kinds[title]]
    return "\n".join(parts)


def figure(paths, alt, caption, out_dir):
    """The PNG (or GIF) of a figure, shown and linked, with links to its other formats."""
    shown = next(p for p in paths if Path(p).suffix in (".png", ".gif"))
    others = " ".join(f'<a href="{link(p, out_dir)}">{esc(Path(p).suffix[1:].upper())}</a>'
                      for p in paths if p != shown)
    return (f'<figure><a href="{link(shown, out_dir)}"><img src="{link(shown, out_dir)}" alt="{esc(alt)}" '
            f'loading="lazy"></a>\n<figcaption>{esc(caption)} {others}</figcaption></figure>')


def curves_section(content):
    if not content.curves:
        return "<p>No training curves: no setting has a finished run with a training log.</p>"
    return ("<p>Median and inter-quartile band over each setting's finished runs.</p>\n"
            + "\n".join(figure(paths, f"Training curves of {label}", label, content.out_dir)
                        for label, paths in content.curves.items()))


def representatives_section(content):
    if not content.representatives:
        return ("<p>No representative model: none is chosen without finished runs that have a MIG and a "
                "reconstruction value.</p>")
    parts = ['<p>Per setting, among its finished runs in the upper half of MIG, the one nearest (Mahalanobis) '
             'to their mean of (MIG, reconstruction): <a href="representatives.csv">representatives.csv</a>.</p>']
    for entry in content.representatives:
        parts.append(f"<h3>{esc(entry.label)}</h3>")
        # the column each value was taken from: reconstruction is recon_ll's, or the training loss term's
        values = [(name, esc(format_value(entry.values[key]))
                   + (f" ({esc(entry.values[f'{key}_column'])})" if entry.values.get(f"{key}_column") else ""))
                  for key, name in REPRESENTATIVE_VALUES if key in entry.values]
        parts.append(definition_table([("run", f"<code>{esc(entry.run_dir)}</code>"), *values]))
        if entry.problem:
            parts.append(f'<p class="problem">Pictures not drawn: {esc(entry.problem)}</p>')
        for name, caption in PICTURES:
            if name in entry.pictures:
                parts.append(figure(entry.pictures[name], f"{caption} of {entry.label}", caption, content.out_dir))
    return "\n".join(parts)


# --- runs that did not count -----------------------------------------------------------------------

def failures_section(report):
    runs = [*report.get("failed", []), *report.get("unfinished", [])]
    if not runs:
        return "<p>None: every run finished.</p>"
    head = [f"<th>{esc(name)}</th>" for name in RUN_FIELDS]
    rows = [[text_cell("" if run.get(name) is None else run[name]) for name in RUN_FIELDS] for run in runs]
    return ("<p>Counted in the leaderboard's num_failed and num_unfinished, left out of its statistics and "
            "figures.</p>\n" + sortable_table("failures-table", head, rows))


def left_out_section(content):
    report = content.report
    parts = []
    if report.get("left_out"):
        parts += ["<p>Files that could not be used:</p>", plain_list(report["left_out"])]
    if report.get("duplicates"):
        notes = (differ_note(d.get("results_differ"), d.get("results_not_counted") or ()) for d in report["duplicates"])
        parts += ["<p>Copies of runs counted once:</p>",
                  plain_list(f"{d['run_dir']} (same run as {d['same_as']}{note})"
                             for d, note in zip(report["duplicates"], notes))]
    if report.get("not_started"):
        parts += ["<p>Runs of the study without a run directory at their place (not started, moved, or without its "
                  "run.json):</p>",
                  plain_list(report["not_started"])]
    if report.get("not_in_study"):
        parts += ["<p>Runs counted that the study (study.json) does not list (another study's, or trained there by "
                  "hand?):</p>", plain_list(report["not_in_study"])]
    if report.get("unranked"):
        parts += ["<p>Methods without a value to rank by (no row in best.csv):</p>",
                  plain_list(f"{u['method']} on {u['dataset']}" for u in report["unranked"])]
    short = report.get("rank_by_short") or {}
    if short.get("settings_in_part") or short.get("settings_without"):
        parts += [f"<p>{esc(rank_short_note(report['rank_by'], short))}.</p>"]
    if content.problems:
        parts += ["<p>What this report could not draw:</p>", plain_list(content.problems)]
    return "\n".join(parts) or "<p>Nothing: every file was read and every figure drawn.</p>"


def files_section(content):
    names = content.report.get("files", [])
    items = "\n".join(f'<li><a href="{link(Path(content.out_dir) / name, content.out_dir)}">{esc(name)}</a></li>'
                      for name in names)
    return (f"<ul>\n{items}\n</ul>\n<p>The figures are in <code>figures/</code> as PNG and PDF; "
            "reports/README.md says what every column holds.</p>")


STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
nav { margin-bottom: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
table.sortable th { cursor: pointer; background: #f0f0f0; max-width: 16em; overflow-wrap: anywhere; }
.wide { overflow-x: auto; }
table.sortable th[aria-sort=ascending]::after { content: " ▲"; }
table.sortable th[aria-sort=descending]::after { content: " ▼"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.facts th { background: #f7f7f7; font-weight: normal; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre.gin { background: #f7f7f7; padding: 0.75em; overflow-x: auto; }
.problem { color: #a00; }
"""

# Our own few lines of script (no library, nothing fetched): a click on a header of a sortable
# table sorts its rows by that column, numbers (data-sort) as numbers, empty cells last; a second
# click reverses the order.
SCRIPT = """
function sortKey(row, column) {
  var cell = row.cells[column];
  var value = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
  var number = Number(value);
  var numeric = value !== "" && !isNaN(number);
  return {empty: value === "", number: numeric, value: numeric ? number : value};
}
function compareKeys(a, b) {
  if (a.empty || b.empty) { return a.empty === b.empty ? 0 : (a.empty ? 1 : -1); }
  if (a.number && b.number) { return a.value - b.value; }
  return String(a.value).localeCompare(String(b.value), undefined, {numeric: true});
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (header, column) {
    header.addEventListener("click", function () {
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var ka = sortKey(a, column), kb = sortKey(b, column);
        if (ka.empty || kb.empty) { return compareKeys(ka, kb); }
        return ascending ? compareKeys(ka, kb) : compareKeys(kb, ka);
      });
      rows.forEach(function (row) { body.appendChild(row); });
      Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    });
  });
});
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<nav>{nav}</nav>
{body}
<script>{script}</script>
</body>
</html>
"""
