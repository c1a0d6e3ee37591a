"""What every reproduction in reports/reproductions/ shares: a run.sh the README's commands can
call, which refuses what it does not know with its usage line, a README, and a row in the main
README's table."""

import subprocess

import pytest

from tests.commands import REPO

ROOT = REPO / "reports" / "reproductions"
REPRODUCTIONS = sorted(path.parent.name for path in ROOT.glob("*/run.sh"))


def test_every_reproduction_folder_has_its_command_and_readme():
    folders = sorted(path.name for path in ROOT.iterdir() if path.is_dir())
    assert folders == REPRODUCTIONS and len(REPRODUCTIONS) >= 3
    for name in REPRODUCTIONS:
        assert (ROOT / name / "run.sh").stat().st_mode & 0o111, name  # executable, as the READMEs call it
        assert (ROOT / name / "README.md").is_file(), name


@pytest.mark.parametrize("name", REPRODUCTIONS)
@pytest.mark.parametrize("args", [["--full"], ["--smoke", "a", "b"], ["--cpu", "--smoke"]])
def test_run_sh_refuses_unknown_arguments_with_its_usage(name, args, tmp_path):
    result = subprocess.run(["bash", str(ROOT / name / "run.sh"), *args], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (2, "usage: run.sh [--cpu | --smoke] [OUT]\n", "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", REPRODUCTIONS)
@pytest.mark.parametrize("scale", ["--cpu", "--smoke"])
def test_an_out_folder_that_cannot_be_written_is_refused_before_any_training(name, scale, tmp_path):
    (tmp_path / "a_file").write_text("")
    result = subprocess.run(["bash", str(ROOT / name / "run.sh"), scale, str(tmp_path / "a_file" / "out")],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"run.sh: cannot write to '{tmp_path / 'a_file' / 'out'}'; give an OUT folder you may write to\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("name", ["mathieu_rotation", "stuehmer_isa_vae_beta1"])
def test_a_study_that_is_refused_stops_run_sh_with_its_status_and_no_report(name, tmp_path):
    # the report of whatever the runs root held had been drawn after the refusal, with a second error
    import os

    (tmp_path / "a_file").write_text("")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{REPO / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "DLBENCH_DATA": str(tmp_path / "a_file" / "data")}  # under a file: dlb_study refuses it
    result = subprocess.run(["bash", str(ROOT / name / "run.sh"), "--smoke", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("dlb_study: error:"), result.stderr
    assert not (tmp_path / "out" / "report").exists() and "report in" not in result.stdout


def test_the_readme_table_has_a_row_per_reproduction():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Reproductions"):].split("\n## ", 1)[0]
    table = section[section.index("| finding |"):].split("\n\n", 1)[0]  # a blank line ends a table
    rows = [line for line in table.splitlines() if not line.startswith("| ---")][1:]
    named = sorted(name for name in REPRODUCTIONS for row in rows if f"`{name}`" in row)
    assert named == REPRODUCTIONS
