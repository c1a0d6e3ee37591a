"""index.html without a browser: every link and image of the page is a file the report wrote, text
from files is shown escaped, the leaderboard table holds leaderboard.csv's settings with the means
and standard errors computed by hand, failures and what could not be drawn are listed, and bad
input to dlb_report (and dlb_aggregate --report) is one line, exit 2, nothing written.

The study is fabricated (tests/fake_runs.py: run.json, metric results and a training log, no
weights), so the representatives' pictures cannot be drawn: that is one line on the page."""

import html
import json
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from dlbench import rundir
from dlbench.report.build import build_report, leaderboard_settings
from dlbench.train.run import LogWriter
from tests.commands import assert_one_line_error, run_command, run_in_process, tree
from tests.fake_runs import make_run, read_csv, run_aggregate

EVIL_METHOD = "<script>alert('method')</script>"
EVIL_ERROR = "diverged at <b>step 7</b> & stopped"
# (beta, seed, MIG, recon_ll) of beta_vae's finished runs
RUNS = [(1.0, 0, 0.1, -90.0), (1.0, 1, 0.2, -94.0), (8.0, 0, 0.3, -100.0), (8.0, 1, 0.5, -104.0)]


class PageParts(HTMLParser):
    """The links, images, ids, script elements and leaderboard rows of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.images, self.ids, self.scripts = [], [], set(), 0
        self.table_rows, self._table, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = attrs.get("id")
        if self._table == "leaderboard-table" and tag == "tr":
            self.table_rows.append([])  # the header's row stays empty: it has th cells
        if self._table == "leaderboard-table" and tag == "td":
            self._cell = {"text": "", "sort": attrs.get("data-sort")}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.table_rows[-1].append(self._cell)
            self._cell = None
        if tag == "table":
            self._table = None


def parse_page(path):
    parts = PageParts()
    parts.feed(Path(path).read_text(encoding="utf-8"))
    parts.table_rows = [row for row in parts.table_rows if row]
    return parts


def write_train_log(run_dir, final_loss):
    writer = LogWriter(rundir.train_log_path(run_dir))
    for step in (5, 10, 20):
        writer.write({"step": step, "images_per_second": 100.0, "loss": final_loss + 20 - step,
                      "reconstruction": final_loss - 5 + 20 - step, "kl": 5.0})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A report of fake runs: beta_vae at beta 1 and 8 (two seeds each, with training logs), one
    run of a method named like a script, and a failed run with a message holding markup."""
    base = tmp_path_factory.mktemp("report_page")
    root = base / "runs"
    for beta, seed, mig, recon_ll in RUNS:
        run_dir = make_run(root / f"beta={beta}" / f"seed={seed}", seed, mig=mig, recon_ll=recon_ll,
                           hyperparameters={"beta": beta})
        write_train_log(run_dir, 90.0 + seed)
    make_run(root / "evil" / "seed=0", 0, mig=0.4, recon_ll=-80.0, method=EVIL_METHOD)
    make_run(root / "beta=8.0" / "seed=2", 2, status="failed", error=EVIL_ERROR, hyperparameters={"beta": 8.0})
    lines = []
    report = build_report(root, base / "out", log=lines.append)
    return report, base / "out", lines


def test_every_link_and_image_of_the_page_is_a_file_the_report_wrote(built):
    report, out, _ = built
    page = parse_page(report.index)
    written = {Path(p).resolve() for p in [*report.aggregation.files, *report.figure_files]}
    targets = set()
    for url in page.links + [image["src"] for image in page.images]:
        parsed = urlparse(url)
        assert not parsed.scheme and not parsed.netloc and not url.startswith("/"), url  # relative only
        if url.startswith("#"):
            assert url[1:] in page.ids, url
            continue
        target = (out / unquote(parsed.path)).resolve()
        assert target.is_file(), url
        targets.add(target)
    # every file of the aggregation and every figure (PNG, PDF) is linked or shown
    assert targets == written
    assert len(report.figures) >= 4 and len(report.curves) == 2  # tradeoff, distributions, correlations, strength
    assert all(image.get("alt", "").strip() for image in page.images)
    shown = {(out / unquote(image["src"])).resolve() for image in page.images}
    assert shown == {p for p in written if p.suffix in (".png", ".gif")}


def test_text_from_files_is_shown_escaped(built):
    report, out, _ = built
    text = report.index.read_text(encoding="utf-8")
    assert EVIL_METHOD not in text and html.escape(EVIL_METHOD) in text
    assert "<b>step 7</b>" not in text and html.escape(EVIL_ERROR) in text
    assert parse_page(report.index).scripts == 1  # ours, the table sorter


def test_the_leaderboard_table_holds_leaderboard_csvs_settings_with_mean_and_standard_error(built):
    report, out, _ = built
    rows = parse_page(report.index).table_rows
    board = read_csv(out / "leaderboard.csv")
    # columns: dataset, method, hp.beta (the one setting that varies), the four counts, MIG, recon_ll
    assert [[cell["text"] for cell in row[:7]] for row in rows] == [
        [r["dataset"], r["method"], f"{float(r['hp.beta']):g}", r["num_runs"], r["num_done"], r["num_failed"],
         r["num_unfinished"]] for r in board]
    assert len(rows) == 3 and [row[1]["text"] for row in rows] == ["<script>alert('method')</script>", "beta_vae",
                                                                   "beta_vae"]
    # by hand: MIG 0.1, 0.2 -> mean 0.15, sd 0.0707, s.e. 0.05; 0.3, 0.5 -> 0.4 and 0.1 (the failed run
    # of beta 8 is counted, not averaged); recon_ll -90, -94 -> -92 and 2; -100, -104 -> -102 and 2
    cells = {row[2]["text"]: (row[7], row[8]) for row in rows[1:]}
    assert [cell["text"] for cell in cells["1"]] == ["0.15 ± 0.05", "-92 ± 2"]
    assert [cell["text"] for cell in cells["8"]] == ["0.4 ± 0.1", "-102 ± 2"]
    assert [float(cell["sort"]) for cell in cells["8"]] == [pytest.approx(0.4), pytest.approx(-102.0)]
    assert rows[0][7]["text"] == "0.4"  # one seed: no standard error


def test_the_sampled_representations_headline_is_a_column_of_the_leaderboard_table(tmp_path):
    # evaluated with --mode sampled, its MIG had been in leaderboard.csv and nowhere on the page
    from tests.fake_runs import write_metric

    root = tmp_path / "runs"
    for seed, mig, sampled in ((0, 0.1, 0.02), (1, 0.3, 0.04)):
        run_dir = make_run(root / f"seed={seed}", seed, mig=mig)
        write_metric(run_dir, "mig", {"discrete_mig": sampled}, mode="sampled", num_train=10000, num_bins=20)
    report = build_report(root, tmp_path / "out", log=lambda line: None)
    text = report.index.read_text(encoding="utf-8")
    table = text[text.index('id="leaderboard-table"'):]
    headers = [cell.partition(">")[2].partition("<")[0] for cell in table.split("<th")[1:]]
    assert headers[-2:] == ["MIG (mean ± s.e.)", "MIG, sampled representation (mean ± s.e.)"], headers
    [row] = parse_page(report.index).table_rows[:1]
    assert [cell["text"] for cell in row[-2:]] == ["0.2 ± 0.1", "0.03 ± 0.01"]  # by hand: s.e. = sd / sqrt(2)


def test_the_failed_run_is_listed_with_its_status_and_reason(built):
    report, _, _ = built
    text = report.index.read_text(encoding="utf-8")
    failures = text[text.index('id="failures"'):text.index('id="left-out"')]
    assert "beta=8.0/seed=2" in failures and "<td>failed</td>" in failures and html.escape(EVIL_ERROR) in failures


def test_what_cannot_be_drawn_is_one_line_in_the_log_and_the_page(built):
    report, _, lines = built
    [no_log] = [line for line in lines if line.startswith("training curves")]  # the one run without a log
    assert no_log.startswith(f"training curves of {EVIL_METHOD} not drawn: no training log")
    assert [entry.run_dir for entry in report.representatives] == ["evil/seed=0", "beta=1.0/seed=1",
                                                                   "beta=8.0/seed=1"]
    assert all(entry.problem and not entry.pictures for entry in report.representatives)
    missing = [line for line in lines if line.startswith("pictures of") and "not drawn" in line]
    assert len(missing) == 3 and all("model/checkpoint.pt' is missing" in line for line in missing)
    text = report.index.read_text(encoding="utf-8")
    assert all(html.escape(line) in text for line in [*missing, no_log])


def test_runs_left_out_of_the_training_curves_are_named_in_the_log_and_the_page(tmp_path):
    # a run without its log, and one whose log a killed writer cut inside its first row, had been
    # left out of their settings' curves without a word (the cut one cut its setting to step 5)
    root = tmp_path / "runs"
    for beta, seed, mig, recon_ll in RUNS:
        run_dir = make_run(root / f"beta={beta}" / f"seed={seed}", seed, mig=mig, recon_ll=recon_ll,
                           hyperparameters={"beta": beta})
        write_train_log(run_dir, 90.0 + seed)
    rundir.train_log_path(root / "beta=8.0" / "seed=0").unlink()
    cut = rundir.train_log_path(root / "beta=1.0" / "seed=0")
    cut.write_bytes(cut.read_bytes()[:len("step,images_per_second,loss,reconstruction,kl\r\n5,100.0,1")])
    result = run_in_process("dlb_report", root, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    curve_lines = [line for line in result.stdout.splitlines() if line.startswith("training curves")]
    assert curve_lines == [
        "training curves of beta_vae, beta=1: run beta=1.0/seed=0 left out: its model/train_log.csv does not read: "
        "it holds no row whose step and values are numbers (dropped: a last row cut short, as a writer stopped "
        "mid-row leaves it)",
        "training curves of beta_vae, beta=8: run beta=8.0/seed=0 left out: it has no model/train_log.csv"]
    assert "2 training curves" in result.stdout
    # each is counted in the summary with the representatives' pictures (no weights: 2 settings)
    assert "4 things not drawn, listed above and on the page" in result.stdout
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert all(html.escape(line) in text for line in curve_lines)


def test_the_study_file_is_shown_where_study_json_names_one(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "seed=0", 0, status="failed", error="out of memory")
    study_file = tmp_path / "my <study>.gin"
    study_file.write_text("study.sweep = {'beta_vae.beta': [1.0]}  # <not markup>\n")
    (root / "study.json").write_text(json.dumps({"name": "my_study", "file": str(study_file), "runs": [{"name": "seed=0"}, {"name": "seed=1"}],
                                                 "metrics": ["mig"], "metric_params": {}}))
    result = run_aggregate("runs", "--out", "out", "--report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "dlbench report: study my_study" in text
    assert html.escape("study.sweep = {'beta_vae.beta': [1.0]}  # <not markup>") in text
    assert html.escape(str(study_file)) in text
    # only failed runs: the report is still written, the leaderboard has the counts, the failure its reason
    assert "out of memory" in text and len(parse_page(tmp_path / "out" / "index.html").table_rows) == 1
    # and the run of the study that never started is named
    assert ("Runs of the study without a run directory at their place (not started, moved, or without its "
            "run.json):</p>\n<ul>\n<li>seed=1</li>") in text
    assert result.stdout.splitlines()[-1] == f"wrote {Path('out') / 'index.html'}: open it in a browser"


def test_a_study_json_of_wrong_types_is_left_out_of_the_page_in_one_line(tmp_path):
    # a file given as a number had ended dlb_report in a TypeError (shown_gin_path) after the tables
    root = tmp_path / "runs"
    make_run(root / "seed=0", 0, mig=0.2)
    (root / "study.json").write_text(json.dumps({"name": "s", "file": 5, "runs": [{"name": "seed=0"}]}))
    result = run_aggregate("runs", "--out", "out", "--report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = "study left out: 'runs/study.json' is unreadable (its file is 5, not a path)"
    assert any(printed.startswith(line) for printed in result.stdout.splitlines()), result.stdout
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert html.escape(line) in text and "none recorded (study.json left out as unreadable, see below)" in text


def test_a_run_named_in_bytes_that_are_not_utf8_is_drawn_and_named_with_escapes(tmp_path):
    # pyarrow had ended the report in a UnicodeEncodeError; the tables name it bad\\xffname, and the
    # report must still find its folder (its training log) from that name
    root = tmp_path / "runs"
    write_train_log(make_run(root / os.fsdecode(b"bad\xffname"), 0, mig=0.2, reconstruction=50.0), 90.0)
    lines = []
    report = build_report(root, tmp_path / "out", log=lines.append)
    assert report.aggregation.results["run_dir"].tolist() == ["bad\\xffname"]
    assert len(report.curves) == 1 and not [line for line in report.problems if "curves" in line], report.problems
    text = report.index.read_text(encoding="utf-8")
    assert "bad\\xffname" in text and not any("\udcff" in line for line in lines)


def test_settings_get_labels_and_file_names_that_tell_them_apart():
    # beta 0.1 and 0.1000000001 print alike; two datasets add the dataset to the label
    board = pd.DataFrame({"dataset": ["a", "a", "b"], "method": ["m", "m", "m"],
                          "hp.beta": [0.1, 0.1000000001, 1.0], "model.latent_dim": [4, 4, 4]})
    settings = leaderboard_settings(board)
    assert [s.label for s in settings] == ["m, beta=0.1 on a", "m, beta=0.1 on a-2", "m on b"]
    assert [s.name for s in settings] == ["a_m_beta=0.1", "a_m_beta=0.1-2", "b_m"]
    assert [s.key for s in settings] == [("a", "m", 0.1, 4), ("a", "m", 0.1000000001, 4), ("b", "m", 1.0, 4)]


# --- bad input: one line, exit 2, nothing written ---------------------------------------------------

def test_an_empty_runs_root_is_one_line_and_nothing_is_written(tmp_path):
    (tmp_path / "runs").mkdir()
    result = run_in_process("dlb_report", "runs", "--out", "out", cwd=tmp_path)
    assert_one_line_error(result, "dlb_report: error:", "no runs (run.json files) found under 'runs'")
    assert tree(tmp_path) == ["runs"]


def test_an_unknown_rank_by_is_one_line_and_nothing_is_written(built, tmp_path):
    report, _, _ = built
    root = Path(report.aggregation.report["runs_root"])
    result = run_aggregate(root, "--out", "out", "--report", "--rank_by", "no_such_metric", cwd=tmp_path)
    assert_one_line_error(result, "dlb_aggregate: error:", "unknown --rank_by 'no_such_metric'", "mig")
    assert tree(tmp_path) == []


def test_an_output_folder_that_is_a_file_is_one_line_and_nothing_is_written(built, tmp_path):
    report, _, _ = built
    root = Path(report.aggregation.report["runs_root"])
    (tmp_path / "out").write_text("not a folder")
    result = run_aggregate(root, "--out", "out", "--report", cwd=tmp_path)
    assert_one_line_error(result, "--out 'out' is a file, not a folder")
    assert tree(tmp_path) == ["out"] and (tmp_path / "out").read_text() == "not a folder"


def test_a_figures_path_that_is_a_file_is_refused_before_the_aggregation_writes(built, tmp_path):
    report, _, _ = built
    root = Path(report.aggregation.report["runs_root"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "figures").write_text("mine")
    result = run_aggregate(root, "--out", "out", "--report", cwd=tmp_path)
    assert_one_line_error(result, "'out/figures' is a file, where the report puts its figures folder")
    assert tree(tmp_path) == ["out", "out/figures"]


SETTING_PICTURES = "figures/representatives/dsprites_beta_vae_beta=1"


@pytest.mark.parametrize("place, obstacle, said", [
    ("figures/strength_dsprites_beta_vae.png", "folder", "is a folder, where the report writes its figure "
                                                         "strength_dsprites_beta_vae.png"),
    ("figures/curves_dsprites_beta_vae_beta=8.pdf", "folder", "is a folder, where the report writes its training "
                                                              "curves curves_dsprites_beta_vae_beta=8.pdf"),
    ("figures/drawn.json", "folder", "is a folder, where the report writes its list of the figures drawn"),
    ("figures/representatives", "file", "is a file, where the report puts its folder of the representative models' "
                                        "pictures"),
    (SETTING_PICTURES, "file", "is a file, where the report puts its folder of the pictures of beta_vae, beta=1"),
    (f"{SETTING_PICTURES}/traversals.gif", "folder", "is a folder, where the report writes its picture "
                                                     "traversals.gif of beta_vae, beta=1"),
])
def test_what_stands_where_a_figure_goes_is_refused_before_anything_is_written(built, tmp_path, place, obstacle,
                                                                                said):
    # a folder where a figure goes had stopped the report after the tables and 20 figures, without a page;
    # a file where the representatives' pictures go had left them out, "not drawn", with exit 0
    report, _, _ = built
    root = Path(report.aggregation.report["runs_root"])
    path = tmp_path / "out" / place
    if obstacle == "folder":
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True)
        path.write_text("mine")
    before = tree(tmp_path)
    result = run_aggregate(root, "--out", "out", "--report", cwd=tmp_path)
    assert_one_line_error(result, f"'{Path('out') / place}' {said}; move it away and run the command again")
    assert tree(tmp_path) == before


def test_a_folder_named_like_a_figure_the_report_does_not_draw_is_left_alone(built, tmp_path):
    report, _, _ = built
    root = Path(report.aggregation.report["runs_root"])
    (tmp_path / "out" / "figures" / "strength_mine.png").mkdir(parents=True)
    result = run_aggregate(root, "--out", "out", "--report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "figures" / "strength_mine.png").is_dir() and (tmp_path / "out" / "index.html").is_file()


def test_a_study_file_of_dlbenchs_checkout_is_shown_relative_to_it(tmp_path):
    from dlbench.config import gin_dir, shown_gin_path

    assert shown_gin_path(str(gin_dir() / "studies" / "quickstart.gin")) == "gin/studies/quickstart.gin"
    assert shown_gin_path(str(tmp_path / "mine.gin")) == str(tmp_path / "mine.gin")  # any other: as recorded
    beside = gin_dir().parent / "reports" / "reproductions" / "sikka_linear_gaussian" / "convergence.gin"
    assert shown_gin_path(str(beside)) == "reports/reproductions/sikka_linear_gaussian/convergence.gin"


def test_the_committed_quickstart_report_is_the_one_the_readmes_main_command_makes():
    from dlbench.aggregate import FILES
    from tests.commands import REPO

    main_command = next(line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("pip install"))
    assert "dlb_study quickstart --runs_root runs/quickstart && dlb_report runs/quickstart --out reports/quickstart" \
        in main_command
    out = REPO / "reports" / "quickstart"
    assert all((out / name).is_file() for name in FILES)  # every file the aggregation writes today
    report = json.loads((out / "report.json").read_text())
    assert (report["study"], report["runs_root"], report["counts"]["done"]) == ("quickstart", "runs/quickstart", 4)
    page = parse_page(out / "index.html")
    for url in page.links + [image["src"] for image in page.images]:
        if not url.startswith("#"):
            assert (out / unquote(urlparse(url).path)).is_file(), url
    assert len(pd.read_csv(out / "leaderboard.csv")) == 2  # beta 1 and 8


def test_a_full_disk_stops_the_report_in_one_line(built, tmp_path):
    # a figure that could not be written had been noted as "not drawn", and the command exited 0
    report, _, _ = built
    root = Path(report.aggregation.report["runs_root"])
    result = run_command("dlb_report", root, "--out", tmp_path / "out", fault=f"ENOSPC:{tmp_path}/out/figures/.curves_*")
    line = assert_one_line_error(result, "No space left on device", str(tmp_path / "out" / "figures" / "curves_"))
    assert "free some space" in line


def test_a_report_stopped_while_drawing_leaves_no_page_of_the_runs_before(built, tmp_path, monkeypatch):
    # the old page had stayed beside the new tables, showing other numbers than they hold
    from dlbench.report import build

    report, _, _ = built
    root, out = Path(report.aggregation.report["runs_root"]), tmp_path / "out"
    build_report(root, out, log=lambda *_: None)
    assert (out / "index.html").is_file()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "draw_curves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_report(root, out, only=["beta=1.0/*"], log=lambda *_: None)
    assert not (out / "index.html").exists()
    assert set(pd.read_csv(out / "results.csv")["run_dir"]) == {"beta=1.0/seed=0", "beta=1.0/seed=1"}


def test_a_representatives_values_name_the_columns_they_come_from(built):
    # "reconstruction" is recon_ll where the setting has it, else the training loss term: the page
    # had shown both under one name
    report, _, _ = built
    text = report.index.read_text(encoding="utf-8")
    section = text[text.index('id="representatives"'):]
    for entry in report.representatives:
        assert f"({entry.values['reconstruction_column']})" in section
        assert f"({entry.values['mig_column']})" in section


def test_a_report_removes_no_figure_it_did_not_draw(built, tmp_path):
    # a first report into a folder of the user's figures had removed them all as "an earlier
    # report's"; only what drawn.json lists is a report's
    report, _, _ = built
    root, out = Path(report.aggregation.report["runs_root"]), tmp_path / "out"
    mine = [out / "figures" / "my_plot.png", out / "figures" / "thesis.pdf",
            out / "figures" / "representatives" / "x" / "pic.gif"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    (out / "figures" / "empty").mkdir()
    lines = []
    first = build_report(root, out, log=lines.append)
    assert all(path.read_text() == "mine" for path in mine) and (out / "figures" / "empty").is_dir()
    assert not any("of an earlier report" in line for line in lines), lines
    listed = json.loads((out / "figures" / "drawn.json").read_text())["figures"]
    assert sorted(listed) == sorted(str(p.relative_to(out / "figures")) for p in first.figure_files)
    # a list edited to name the user's files, or files outside figures/, removes none of them
    outside = tmp_path / "outside.png"
    outside.write_text("mine")
    (out / "figures" / "drawn.json").write_text(json.dumps({"figures": [*listed, "../../outside.png", 3]}))
    build_report(root, out, only=["beta=1.0/*"], log=lines.append)
    assert outside.read_text() == "mine" and all(path.read_text() == "mine" for path in mine)
    (out / "figures" / "drawn.json").write_text("garbage")
    lines.clear()
    build_report(root, out, log=lines.append)
    assert all(path.read_text() == "mine" for path in mine)
    # said, not ignored: the earlier report's figures stay beside this one's
    assert any(f"'{out / 'figures' / 'drawn.json'}' is unreadable" in line and "left in place" in line
               for line in lines), lines


def test_a_report_stopped_while_drawing_lists_the_figures_it_drew(built, tmp_path, monkeypatch):
    # stopped inside a stage, its figures had been left off drawn.json: the next report kept them as the user's
    import dlbench.report.figures as figures

    report, _, _ = built
    root, out = Path(report.aggregation.report["runs_root"]), tmp_path / "out"
    draw = figures.study_figures

    def draw_then_stop(*args):
        draw(*args)
        raise KeyboardInterrupt  # Ctrl-C before the stage returned what it drew

    monkeypatch.setattr(figures, "study_figures", draw_then_stop)
    with pytest.raises(KeyboardInterrupt):
        build_report(root, out, log=lambda *_: None)
    drawn = {p.relative_to(out / "figures") for p in (out / "figures").rglob("*") if p.suffix in (".png", ".pdf")}
    assert drawn and not (out / "index.html").exists()
    assert {Path(name) for name in json.loads((out / "figures" / "drawn.json").read_text())["figures"]} == drawn


def test_a_report_into_an_earlier_ones_folder_keeps_none_of_its_figures_but_other_files(built, tmp_path):
    # figures of settings the new report does not have (here another --only slice) had stayed in
    # figures/, where they read as the new report's
    report, _, _ = built
    root, out = Path(report.aggregation.report["runs_root"]), tmp_path / "out"
    build_report(root, out, log=lambda *_: None)
    everything = {p.relative_to(out) for p in (out / "figures").rglob("*") if p.is_file()}
    assert any("beta=8" in str(p) for p in everything)
    notes = out / "figures" / "notes.txt"
    notes.write_text("mine")
    lines = []
    sliced = build_report(root, out, only=["beta=1.0/*"], log=lines.append)
    left = {p.relative_to(out) for p in (out / "figures").rglob("*") if p.is_file()}
    assert left == {p.relative_to(out) for p in sliced.figure_files} | {notes.relative_to(out),
                                                                         Path("figures/drawn.json")}
    assert not any("beta=8" in str(p) for p in left)
    assert notes.read_text() == "mine"
    assert any(line.startswith("removed ") and "of an earlier report" in line for line in lines), lines
    assert not [d for d in (out / "figures").rglob("*") if d.is_dir() and not any(d.iterdir())]


def test_the_printed_summary_counts_one_thing_in_the_singular(tmp_path, monkeypatch, capsys):
    # "1 training curves"
    from types import SimpleNamespace

    from dlbench.cli import report as report_cli

    report = SimpleNamespace(aggregation=None, figure_files=["a.png"], figures={}, curves={"beta=1": []},
                             representatives=[SimpleNamespace(pictures=["p.png"])], problems=["x"],
                             index=tmp_path / "index.html")
    monkeypatch.setattr("dlbench.report.build.build_report", lambda *args, **kwargs: report)
    monkeypatch.setattr(report_cli, "print_aggregation", lambda aggregation: None)
    report_cli.build_and_print(tmp_path, tmp_path, None)
    out = capsys.readouterr().out
    assert (f"wrote 1 figure file under {tmp_path / 'figures'}: 0 study figures, 1 training curve, pictures of 1 "
            "representative model (PNG and PDF)\n1 thing not drawn") in out, out


def test_the_page_says_what_only_a_duplicate_holds_and_names_every_count(built):
    # the duplicate's results not counted were in report.json only, and a count showed its raw key
    from types import SimpleNamespace

    from dlbench.report.page import COUNT_NAMES, configuration_section, left_out_section

    duplicate = {"run_dir": "b", "same_as": "a", "results_differ": [], "results_not_counted": ["sap.SAP_score"]}
    report = {"duplicates": [duplicate], "counts": {"results_with_values_left_out": 1}, "only": None}
    page = left_out_section(SimpleNamespace(report=report, problems=[]))
    assert "b (same run as a; only it holds sap.SAP_score, not counted)" in page, page
    section = configuration_section(SimpleNamespace(report=report, study=None))
    assert "results with a value left out (not a finite number)" in section
    counts = built[0].aggregation.report["counts"]
    assert set(counts) <= set(COUNT_NAMES), set(counts) - set(COUNT_NAMES)
