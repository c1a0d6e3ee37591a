"""The run-directory contract: every path of a run directory, run.json and its status, claims and
the run's lifecycle. Stages and executors use it; nobody else builds a run path.

    files      atomic writes and JSON (the bottom layer: nothing there knows of runs)
    layout     every path of a run directory, one function each (the layout diagram is there)
    record     run.json: read, merge, Status, require_finished_run
    claims     one writer per run: an exclusive, leased, heartbeated claim (hold_run)
    lifecycle  prepare (Prepare.FRESH / RESTART / RESUME / SKIP) and the marks of running,
               checkpoint, interrupted, failed and done

Everything is re-exported here (`from dlbench import rundir; rundir.weights_path(run_dir)`).
A test that monkeypatches a module-level name must patch the submodule that reads it
(dlbench.rundir.claims.LEASE_SECONDS), not this package.
"""

from dlbench.rundir.claims import HELD, LEASE_SECONDS, Claim, ClaimLost, RunHeld, check_not_held, held_by, hold_run
from dlbench.rundir.files import (FILE_MODE, atomic_path, atomic_write_bytes, atomic_write_text,
                                  make_folders, obstacle_to_folder, read_json, remove_empty_folders, write_json)
from dlbench.rundir.layout import (CLAIM_JSON, RUN_JSON, is_claim_file, checkpoint_path, checkpoint_paths,
                                   checkpoints_dir, claim_path, config_gin_path, default_run_dir, metric_results,
                                   metric_results_path, model_dir, postprocess_results_path, postprocessed_dir,
                                   representation_path, run_json_path, samples_dir, study_run_dir, train_log_path,
                                   train_results_path, weights_path)
from dlbench.rundir.lifecycle import (BOOKKEEPING_TRAIN_SETTINGS, TRAIN_DEFAULTS_LEFT_OUT, ConfigMismatch, Prepare,
                                      clear, config_differences, flat_settings, holds_only_a_starts_drafts,
                                      identity_key, mark_checkpoint,
                                      mark_done, mark_failed, mark_interrupted, mark_running, mark_session_started,
                                      mark_stopped,
                                      new_session, prepare, records_config, same_setting)
from dlbench.rundir.record import (Status, enclosing_run, first_run_under, git_revision, is_run, missing_training_file,
                                   not_a_run_problem, read_run, read_train_results, require_finished_run,
                                   resume_command, retrain_command, retrain_fix, update_run)

__all__ = [
    # files
    "FILE_MODE", "atomic_path", "atomic_write_bytes", "atomic_write_text", "make_folders", "obstacle_to_folder",
    "read_json",
    "remove_empty_folders", "write_json",
    # layout
    "CLAIM_JSON", "RUN_JSON", "is_claim_file", "checkpoint_path", "checkpoint_paths", "checkpoints_dir",
    "claim_path", "config_gin_path", "default_run_dir", "metric_results", "metric_results_path", "model_dir",
    "postprocess_results_path", "postprocessed_dir", "representation_path", "run_json_path", "samples_dir",
    "study_run_dir",
    "train_log_path", "train_results_path", "weights_path",
    # record
    "Status", "enclosing_run", "first_run_under", "git_revision", "is_run", "missing_training_file",
    "not_a_run_problem", "read_run", "read_train_results",
    "require_finished_run", "resume_command", "retrain_command", "retrain_fix", "update_run",
    # claims
    "HELD", "LEASE_SECONDS", "Claim", "ClaimLost", "RunHeld", "check_not_held", "held_by", "hold_run",
    # lifecycle
    "BOOKKEEPING_TRAIN_SETTINGS", "TRAIN_DEFAULTS_LEFT_OUT", "ConfigMismatch", "Prepare", "clear",
    "config_differences", "mark_checkpoint", "mark_done",
    "mark_failed", "mark_interrupted", "mark_running", "mark_session_started", "mark_stopped", "new_session", "prepare",
    "same_setting", "flat_settings",
    "records_config", "identity_key", "holds_only_a_starts_drafts",
]
