"""The report in a real browser: headless Chromium (Debian's chromium and chromium-driver packages,
driven by selenium) opens index.html of a tiny trained study from disk. Every image loads, the
console stays free of errors, every link leads to a file of the report, nothing is fetched from
elsewhere, the leaderboard has one row per setting and sorts by the column clicked. A screenshot
is kept under pytest's temporary folder (its path is printed).

The study: two tiny runs (beta 1 and 8, TINY_PARAMS) trained and evaluated with mig and recon_ll
(so each setting has a representative model with pictures), plus a failed run of a third setting
(its run.json only), trained once for the module. A missing browser, driver or selenium fails every
test here with the line saying how to install them: a skipped browser check would hide a broken page.
"""

import json
import shutil
import time
from urllib.parse import unquote, urlparse

import pytest

from dlbench.cli import study as study_cli
from dlbench.report.build import build_report
from tests.conftest import TINY_PARAMS
from tests.fake_runs import read_csv

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

INSTALL = ("install the browser and its driver: apt-get install chromium chromium-driver "
           "(as root), and selenium: pip install selenium")
FAILED_ERROR = "the loss diverged at step 12 (made by the test)"
LOAD_SECONDS = 30


def write_tiny_study(path):
    fixed = ", ".join(f"'{p.split('=')[0].strip()}': {p.split('=', 1)[1].strip()}"
                      for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae.beta")))
    path.write_text("\n".join([
        "study.base_gin = ['beta_vae.gin']",
        f"study.fixed = {{{fixed}}}",
        "study.sweep = {'beta_vae.beta': [1.0, 8.0], 'train.seed': [0]}",
        "study.metrics = ['mig', 'recon_ll']",
        "study.metric_params = {'mig': {'num_train': 200}, 'recon_ll': {'num_points': 100}}",
    ]))
    return path


def add_failed_run(runs, like, beta):
    """A run of another setting that failed: the run.json of `like` with beta and status changed."""
    record = json.loads((like / "run.json").read_text())
    record.update(status="failed", error=FAILED_ERROR, hyperparameters={**record["hyperparameters"], "beta": beta})
    run_dir = runs / "beta_vae" / f"beta={beta}" / "seed=0"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def report(tiny_data_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("report_browser")
    runs = base / "runs"
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: the monkeypatch fixture is per test
        patch.setenv("DLBENCH_DATA", str(tiny_data_root))
        study = write_tiny_study(base / "tiny_report.gin")
        assert study_cli.main([str(study), "--runs_root", str(runs), "--device", "cpu", "--workers", "1",
                               "--no_progress"]) == 0
        add_failed_run(runs, runs / "beta_vae" / "beta=1.0" / "seed=0", 4.0)
        return build_report(runs, base / "out", log=lambda line: None)


def start_browser():
    """A headless Chromium under selenium, or the line saying what is missing and how to install it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, f"selenium is not installed; {INSTALL}"
    if not chromium or not driver:
        missing = " and ".join(name for name, found in (("chromium", chromium), ("chromedriver", driver)) if not found)
        return None, f"{missing} not found on PATH; {INSTALL}"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1300,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver's path is given, so selenium does not look for one over the network
    return webdriver.Chrome(service=Service(driver), options=options), None


@pytest.fixture(scope="module")
def browser(report):
    """(driver with index.html loaded, None), or (None, the line saying what to install)."""
    driver, problem = start_browser()
    if driver is None:
        yield None, problem
        return
    try:
        driver.get(report.index.resolve().as_uri())
        # load every image now, lazy ones too, and wait until each has finished (loaded or failed)
        driver.execute_script("document.querySelectorAll('img').forEach(function (i) { i.loading = 'eager'; });")
        deadline = time.monotonic() + LOAD_SECONDS
        all_complete = "return Array.from(document.images).every(function (i) { return i.complete; });"
        while not driver.execute_script(all_complete):
            assert time.monotonic() < deadline, "the page's images did not finish loading"
            time.sleep(0.05)
        yield driver, None
    finally:
        driver.quit()


def loaded(browser):
    driver, problem = browser
    if driver is None:
        pytest.fail(problem, pytrace=False)
    return driver


def test_every_image_loads_and_the_console_has_no_error(browser, report, tmp_path_factory):
    driver = loaded(browser)
    images = driver.execute_script("return Array.from(document.images)"
                                   ".map(function (i) { return [i.getAttribute('src'), i.naturalWidth, i.alt]; });")
    # per setting: the study figures, 2 training curves, and per representative 4 pictures
    assert len(images) == len(report.figures) + 2 + 2 * 4
    assert [src for src, width, _ in images if not width > 0] == []
    assert [src for src, _, alt in images if not alt.strip()] == []
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1300, min(height + 50, 8000))
    screenshot = tmp_path_factory.mktemp("report_screenshot") / "index.png"
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
    print(f"screenshot of the report: {screenshot}")


def test_every_link_is_relative_and_leads_to_a_file_of_the_report(browser, report):
    driver = loaded(browser)
    urls = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href], img[src]'))"
        ".map(function (e) { return e.getAttribute('href') || e.getAttribute('src'); });")
    out = report.index.parent.resolve()
    for url in urls:
        parsed = urlparse(url)
        assert not parsed.scheme and not parsed.netloc and not url.startswith("/"), url
        if url.startswith("#"):
            assert driver.execute_script("return document.getElementById(arguments[0]) !== null;", url[1:]), url
        else:
            assert (out / unquote(parsed.path)).resolve().is_file(), url
    # nothing to fetch from elsewhere: no external script, style sheet or frame, and whatever the
    # browser fetched (its resource timing) was a file of the report
    external = driver.execute_script(
        "return document.querySelectorAll('script[src], link[href], iframe, object, embed, source').length;")
    assert external == 0
    fetched = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert all(url.startswith(out.as_uri() + "/") for url in fetched), fetched


def leaderboard_column(driver, column):
    return driver.execute_script(
        "var column = arguments[0];"
        "return Array.from(document.querySelectorAll('#leaderboard-table tbody tr'))"
        ".map(function (r) { return r.cells[column].textContent; });", column)


def header_index(driver, starts_with):
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard-table thead th'))"
        ".map(function (h) { return h.textContent; });")
    [index] = [i for i, text in enumerate(headers) if text.startswith(starts_with)]
    return index


def click_header(driver, index):
    driver.execute_script("document.querySelectorAll('#leaderboard-table thead th')[arguments[0]].click();", index)


def test_the_leaderboard_has_one_row_per_setting_and_sorts_by_the_clicked_column(browser, report):
    driver = loaded(browser)
    board = read_csv(report.index.parent / "leaderboard.csv")
    beta = header_index(driver, "hp.beta")
    assert leaderboard_column(driver, beta) == [f"{float(row['hp.beta']):g}" for row in board] == ["1", "4", "8"]
    failed = header_index(driver, "num_failed")
    assert leaderboard_column(driver, failed) == ["0", "1", "0"]

    click_header(driver, beta)  # ascending, then descending
    assert leaderboard_column(driver, beta) == ["1", "4", "8"]
    click_header(driver, beta)
    assert leaderboard_column(driver, beta) == ["8", "4", "1"]

    # by MIG: the finished settings by their mean (from leaderboard.csv), the failed one without a mean last
    mig = header_index(driver, "MIG")
    means = {f"{float(row['hp.beta']):g}": float(row["mig[num_train=200].discrete_mig.mean"])
             for row in board if row["mig[num_train=200].discrete_mig.mean"]}
    click_header(driver, mig)
    assert leaderboard_column(driver, beta) == sorted(means, key=means.get) + ["4"]
    click_header(driver, mig)
    assert leaderboard_column(driver, beta) == sorted(means, key=means.get, reverse=True) + ["4"]
    assert leaderboard_column(driver, mig)[-1] == "–"


def test_the_failed_run_is_listed_with_its_reason(browser):
    driver = loaded(browser)
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#failures-table tbody tr'))"
        ".map(function (r) { return Array.from(r.cells).map(function (c) { return c.textContent; }); });")
    assert rows == [["beta_vae/beta=4.0/seed=0", "dsprites", "beta_vae", "0", "failed", "20", FAILED_ERROR]]
