"""The commands a message tells the user to run work when copied into a shell, whatever the path:
a folder with a space had split into two arguments, and a name that is not UTF-8 had printed as
characters no shell gives back."""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from dlbench import rundir
from dlbench.errors import shell_word
from tests.commands import assert_one_line_error, run_command


@pytest.mark.parametrize("path", ["/runs/plain", "/my runs/beta=4.0", "/it's/here", "/a$b/`c`", "/runs/ünïcode",
                                  os.fsdecode(b"/runs/latin1-\xe9t\xe9")])
def test_a_path_given_to_bash_as_its_shell_word_comes_back_byte_for_byte(path):
    echoed = subprocess.run(["bash", "-c", f"printf %s {shell_word(path)}"], capture_output=True, check=True).stdout
    assert echoed == os.fsencode(path)


def test_a_plain_path_is_left_as_it_is():  # messages stay as readable as they were
    assert shell_word("runs/study/beta_vae/beta=4.0/seed=0") == "runs/study/beta_vae/beta=4.0/seed=0"


def test_the_retraining_command_of_a_run_in_a_folder_with_a_space_gives_back_its_folder(trained_run, tmp_path):
    run_dir = tmp_path / "my runs" / "run"
    shutil.copytree(trained_run, run_dir)
    rundir.weights_path(run_dir).unlink()
    line = assert_one_line_error(run_command("dlb_evaluate", run_dir, "--metrics", "mig"))
    command = re.search(r"`(dlb_train [^`]*)`", line).group(1)
    assert shlex.split(command) == ["dlb_train", "--run_dir", str(run_dir), "--overwrite"], line
