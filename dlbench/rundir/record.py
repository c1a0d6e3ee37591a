"""run.json: a run's identity and status, read and merged atomically."""

import os
from pathlib import Path

from dlbench.errors import UserError, shell_word
from dlbench.rundir.claims import check_not_held
from dlbench.rundir.files import read_json, write_json
from dlbench.rundir.layout import RUN_JSON, run_json_path, train_results_path, weights_path


class Status:
    """The values of run.json's `status` (plain strings: they are written to JSON and compared
    with what was read back)."""

    RUNNING = "running"          # being trained, or its trainer died (then the claim has expired)
    INTERRUPTED = "interrupted"  # stopped with a checkpoint written; training resumes from it
    DONE = "done"                # trained: weights, config, results and samples are complete
    FAILED = "failed"            # training cannot succeed (the loss diverged, a bug): left alone
    ENDED = (DONE, FAILED)       # training does not continue; --overwrite trains again
    ALL = (RUNNING, INTERRUPTED, DONE, FAILED)


def is_run(run_dir):
    return run_json_path(run_dir).is_file()


def enclosing_run(path):
    """The run directory path is, or lies in (the nearest), or None: a folder whose files are its
    stages', where other outputs would pass for the run's."""
    path = Path(path).absolute()
    return next((folder for folder in (path, *path.parents) if is_run(folder)), None)


def first_run_under(folder, depth=3):
    """A run directory in folder or below it, at most `depth` folders down (a home folder given by
    mistake is not searched whole), the first found in sorted order; or None, also where folder
    does not exist."""
    top = len(Path(folder).parts)
    for parent, subfolders, files in os.walk(folder):
        if RUN_JSON in files:
            return Path(parent)
        subfolders[:] = sorted(subfolders) if len(Path(parent).parts) - top < depth else []
    return None


def not_a_run_problem(run_dir):
    """What `run_dir` (no run directory) is, and which to give instead: the run it lies in, or one
    it holds."""
    what = "a folder" if Path(run_dir).is_dir() else "a file"
    # named as given where it can be (runs/lg, not /home/.../runs/lg)
    outer = next((folder for folder in Path(run_dir).parents if is_run(folder)), None) or \
        enclosing_run(Path(run_dir).absolute().parent)
    if outer is not None:
        return f"'{run_dir}' is {what} inside the run directory '{outer}'; give that run directory"
    inner = first_run_under(run_dir)  # searched only where no run encloses it
    if inner is not None:
        return (f"'{run_dir}' is a folder of runs, not a run directory (no run.json); give one run directory, "
                f"e.g. '{inner}'")
    return f"'{run_dir}' is {what}, not a run directory (no run.json); give the RUN_DIR that dlb_train wrote"


def resume_command(run_dir):
    """The command that trains a run on from its checkpoint with its own config, to be copied."""
    return f"dlb_train --run_dir {shell_word(run_dir)}"


def retrain_command(run_dir):
    """The command that trains a run again from step 0, to be copied."""
    return f"{resume_command(run_dir)} --overwrite"


def retrain_fix(run_dir):
    """What to do about a damaged file of a run that only training writes."""
    return f"restore it from a copy, or train the run again with {retrain_command(run_dir)}"


def read_run(run_dir):
    """run.json; a CorruptFile when it cannot be read or records no status or one no dlbench writes
    (the study had taken such a finished run for an interrupted one, and trained it again from 0)."""
    path, fix = run_json_path(run_dir), f"{retrain_fix(run_dir)} (its other files cannot be trusted without it)"
    record = read_json(path, fix=fix)
    if record.get("status") not in Status.ALL:  # dlb_train writes it first of all: without it, it was damaged
        from dlbench.errors import CorruptFile

        problem = (f"its status is {record['status']!r}, not one of {', '.join(Status.ALL)}" if "status" in record
                   else "it has no status")
        raise CorruptFile(path, problem, fix)
    return record


def missing_training_file(run_dir):
    """A line naming the first of a finished run's model/results.json and final weights that is
    missing, and the fix; None where both are there."""
    for path in (train_results_path(run_dir), weights_path(run_dir)):
        if not path.is_file():
            return f"'{path}' is missing, though run.json says the training finished; {retrain_fix(run_dir)}"
    return None


def read_train_results(run_dir):
    """model/results.json, the final training scalars ({} where training has not written it); a
    CorruptFile when it cannot be read. Written just before status 'done', a damaged one casts
    doubt on the whole run: dlb_aggregate leaves such a run out, and a study counts it failed."""
    path = train_results_path(run_dir)
    return read_json(path, fix=retrain_fix(run_dir)) if path.is_file() else {}


def update_run(run_dir, **fields):
    """Merge fields into run.json (atomically)."""
    path = run_json_path(run_dir)
    record = read_json(path) if path.is_file() else {}
    record.update(fields)
    write_json(path, record)
    return record


def require_finished_run(run_dir):
    """run.json of a run whose training finished; a UserError naming the problem otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run directory '{run_dir}' does not exist; give the RUN_DIR that dlb_train wrote")
    if not is_run(run_dir):
        raise UserError(not_a_run_problem(run_dir))
    record = read_run(run_dir)
    if record.get("status") == Status.FAILED:
        raise UserError(f"training of '{run_dir}' failed ({record.get('error')}); there is no model to use: train it "
                        f"again from step 0 with `{retrain_command(run_dir)}`")
    if record.get("status") != Status.DONE:
        check_not_held(run_dir)  # still training: name the process, whose run a dlb_train would be refused
        raise UserError(f"training of '{run_dir}' has not finished (status: {record.get('status')}); finish it "
                        f"with `{resume_command(run_dir)}` first (it resumes from the run's own "
                        f"config)")
    return record


def git_revision():
    """The git commit of the dlbench checkout, or None when it is not a checkout."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
