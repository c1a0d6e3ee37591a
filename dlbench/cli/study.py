"""dlb_study: run a whole study."""

import shlex
from pathlib import Path

from dlbench.cli.common import add_progress_flag, make_parser, path, run_main, show_progress
from dlbench.errors import UserError, describe_os_error
from dlbench.selection import add_only_argument


def _known_studies():
    from dlbench.config import gin_dir

    return ", ".join(sorted(p.stem for p in (gin_dir() / "studies").glob("*.gin"))) or "none"


def _body(argv):
    parser = make_parser("dlb_study", "Train, postprocess and evaluate every run of a study under --runs_root. "
                         "Every run's config and every metric are checked before the first run starts; "
                         "finished stages are skipped and runs another process holds are left to it, so running "
                         "it again (or twice at once) continues where it stopped and trains no run twice.")
    parser.add_argument("study", metavar="NAME_OR_GIN",
                        help=f"a study in dlbench's gin/studies/ ({_known_studies()}) or the path of a study .gin file")
    parser.add_argument("--runs_root", metavar="DIR", type=path,
                        help="folder for the run directories (default runs/<study name>)")
    parser.add_argument("--executor", default="local", choices=["local", "ray", "slurm"],
                        help="local: the runs in this process, or in a pool of --workers processes; ray: long-lived "
                             "workers on a Ray cluster (needs pip install -e '.[ray]'); slurm: one submitit job per "
                             "run (needs pip install -e '.[slurm]'; without Slurm, submitit's local executor)")
    parser.add_argument("--workers", type=int,
                        help="local: worker processes (default: one per GPU on CUDA, one per core on a CPU; each "
                             "gets cores / workers torch threads; 1 runs them in this process); ray: "
                             "worker actors (default: one per CPU, or per --gpus_per_worker of the cluster's GPUs)")
    parser.add_argument("--stack", metavar="K",
                        help="train up to K runs that differ only in seed and method hyperparameters as one model "
                             "(each run's results as if trained alone; on Ray and Slurm each stack is one task); "
                             "auto (default): 1 on a CPU, on CUDA the most that fit the GPU's memory; "
                             "on Slurm or Ray from a machine without a GPU give K")
    parser.add_argument("--ray_address", help="ray: the cluster's address (default: start a local Ray instance)")
    parser.add_argument("--gpus_per_worker", type=float, default=0.0,
                        help="ray: GPUs per worker actor, fractional to share a GPU (e.g. 0.25)")
    parser.add_argument("--slurm_partition", help="slurm: the partition")
    parser.add_argument("--slurm_time", type=int, metavar="MINUTES",
                        help="slurm: time limit of each job, in minutes (needed on Slurm; a job that reaches it is "
                             "requeued and its run resumes from a checkpoint written at Slurm's warning)")
    parser.add_argument("--array_parallelism", type=int, metavar="N", help="slurm: jobs of the array running at once")
    parser.add_argument("--slurm_option", action="append", default=[], metavar="KEY=VALUE",
                        help="slurm: any other submitit Slurm parameter, e.g. gpus_per_node=1 (repeatable)")
    parser.add_argument("--shard", metavar="I/N", help="run only shard I of N (0-based), e.g. 0/4")
    add_only_argument(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--dry_run", action="store_true",
                        help="check the study and print each run's directory and a dlb_train command for it (with the "
                             "bindings that run reads); run nothing")
    parser.add_argument("--status", action="store_true",
                        help="print how many runs are done, running, interrupted, failed (with reasons) or not started")
    parser.add_argument("--retry_failed", action="store_true",
                        help="train the runs that failed again from step 0 (those whose run.json is damaged too)")
    add_progress_flag(parser)
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if (args.ray_address or args.gpus_per_worker) and args.executor != "ray":
        parser.error("--ray_address and --gpus_per_worker go with --executor ray")
    if args.gpus_per_worker < 0:
        parser.error(f"--gpus_per_worker must be positive, got {args.gpus_per_worker}")
    if args.gpus_per_worker > 1 and not args.gpus_per_worker.is_integer():  # Ray's rule, said after it started
        parser.error(f"--gpus_per_worker above 1 must be a whole number of GPUs (Ray shares out only a "
                     f"fraction of one), got {args.gpus_per_worker}")
    if args.executor == "ray" and args.device == "cuda" and not args.gpus_per_worker:
        # Ray hides the GPUs from an actor that asked for none: every run would fail on it
        parser.error("--device cuda on Ray needs --gpus_per_worker (1 for a GPU each, 0.25 for four workers a GPU)")
    for flag, value in (("--slurm_time", args.slurm_time), ("--array_parallelism", args.array_parallelism)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    slurm_flags = (args.slurm_partition, args.slurm_time, args.array_parallelism, args.slurm_option or None)
    if any(flag is not None for flag in slurm_flags) and args.executor != "slurm":
        parser.error("the --slurm_* options and --array_parallelism go with --executor slurm")
    if args.status and args.dry_run:
        parser.error("--status and --dry_run are two different questions; give one")
    if args.retry_failed and (args.status or args.dry_run):  # it had been let through, doing nothing
        parser.error(f"--retry_failed trains, which {'--status' if args.status else '--dry_run'} does not; "
                     f"leave one out")
    if args.executor == "slurm" and args.workers is not None:
        parser.error("--workers is for --executor local; Slurm runs one job per run (see --array_parallelism)")

    from dlbench.study import check_runs_root, keep_earlier_names, load_study, only, shard
    from dlbench.study.stacks import stack_size
    from dlbench.train.device import check_device_name

    # also for --dry_run and --status, which need no device: a command that passes its dry run runs
    check_device_name(args.device)
    stack_size(args.stack, args.device)
    if args.executor == "local" and args.workers is not None:
        from dlbench.study.local import check_workers
        from dlbench.train import resolve_device

        check_workers(args.workers, resolve_device(args.device))
    study = load_study(args.study)  # every run resolved and checked, every metric too
    runs_root = Path(args.runs_root) if args.runs_root else Path("runs") / study.name
    if runs_root.exists() and not runs_root.is_dir():
        raise UserError(f"--runs_root '{runs_root}' is a file, not a folder; choose a folder for the run directories")
    keep_earlier_names(study, runs_root)  # before --only and --shard, which select by name
    runs = only(study.runs, args.only)
    runs = shard(runs, args.shard) if args.shard else runs
    check_runs_root(study, runs, runs_root)
    if args.status:
        if not runs_root.exists():  # a mistyped root had read as a study not started
            print(f"--runs_root '{runs_root}' does not exist: no run of this study has started there")
        return _print_status(study, runs, runs_root)
    from dlbench.data import check_data_root

    check_data_root()
    if args.dry_run:
        from dlbench.study.stacks import stack_size

        # the stack's size checked as the study would (the device is the one the commands run on)
        stack_size(args.stack, _stack_device(args, log=None) if _on_other_machines(args) else "cpu")
        from dlbench.rundir import study_run_dir

        # the commands may be for other machines (a GPU cluster's nodes): the device is theirs to have
        device = [] if args.device == "auto" else ["--device", args.device]
        for spec in runs:
            # without the fixed bindings this run does not read: the same run, and dlb_train had
            # noted them as unused ("check the name") though nothing was misspelt
            params = [p for p in spec.gin_params if p not in study.unread[spec.name]]
            command = ["dlb_train", *[a for f in spec.gin_files for a in ("--gin", f)],
                       *[a for p in params for a in ("--gin_param", p)], *device,
                       "--run_dir", str(study_run_dir(runs_root, spec.name))]
            print(f"{study_run_dir(runs_root, spec.name)}: {shlex.join(command)}")
        return 0
    return _run(args, study, runs, runs_root)


def _run(args, study, runs, runs_root):
    from dlbench.study import record_study
    from dlbench.study.local import run_local
    from dlbench.study.unit import DONE, FAILED, HELD, STOPPED
    from dlbench.train import resolve_device

    # Slurm's jobs and Ray's workers resolve the device where they run: a login node or a driver
    # without a GPU sends work to GPU nodes
    device = args.device if args.executor in ("slurm", "ray") else resolve_device(args.device)
    from dlbench.study.stacks import stack_size

    stack = stack_size(args.stack, _stack_device(args))  # a bad --stack is refused before anything is written
    specs = {spec.name: spec for spec in runs}
    # a finished run is not sent: on Slurm each had been a job, an allocation queued to do nothing;
    # nor, without --retry_failed, one whose training failed, which its unit would leave alone (a
    # rerun had listed each as work, "[1/2] RUN", and done nothing)
    finished_before = [spec.name for spec in runs if _done_and_let_go(study, spec, runs_root)]
    failed_before = [] if args.retry_failed else [spec.name for spec in runs if _failed_and_let_go(spec, runs_root)]
    runs = [spec for spec in runs if spec.name not in finished_before and spec.name not in failed_before]
    # the engine is reached, and its options checked, before anything is written
    if runs and args.executor == "ray":
        from dlbench.study.ray_executor import check_cluster

        check_cluster(args.ray_address, args.workers, args.gpus_per_worker)
    elif runs and args.executor == "slurm":
        from dlbench.study.slurm import check_options
        from dlbench.study.stacks import work_items
        from dlbench.study.unit import units_of

        jobs = work_items(units_of(study, runs, runs_root), stack, lambda *_: None, device)  # a job a stack
        check_options(_slurm_options(args), len(jobs))
    try:
        runs_root.mkdir(parents=True, exist_ok=True)  # an unwritable place is found now, before the first run
    except OSError as err:
        raise UserError(f"--runs_root '{runs_root}' cannot be made: {describe_os_error(err)}") from None
    record_study(study, runs_root)
    if not runs:
        statuses = {}
    elif args.executor == "slurm":
        from dlbench.study.slurm import run_slurm

        statuses = run_slurm(study, runs, runs_root, device, _slurm_options(args), args.retry_failed, stack=stack)
    elif args.executor == "ray":
        from dlbench.study.ray_executor import run_ray

        statuses = run_ray(study, runs, runs_root, device, args.workers, args.ray_address, args.gpus_per_worker,
                           args.retry_failed, progress=show_progress(args), stack=stack)
    else:
        from dlbench.study.local import default_workers

        statuses = run_local(study, runs, runs_root, device, workers=args.workers or default_workers(device),
                             stack=stack,
                             retry_failed=args.retry_failed, progress=show_progress(args))
    statuses.update({name: DONE for name in finished_before})
    statuses.update({name: FAILED for name in failed_before})
    failed = [name for name, status in statuses.items() if status == FAILED]
    held = [name for name, status in statuses.items() if status == HELD]
    # a run another process held may have been finished by it meanwhile (two dlb_study on one root)
    elsewhere = [name for name in held if _done_and_let_go(study, specs[name], runs_root)]
    # and one may have been let go unfinished (a dlb_evaluate by hand, a study stopped) or its holder
    # have died (a study killed, its claim left behind): "still running there" had been said of runs
    # nobody was working on
    let_go = [name for name in held if name not in elsewhere and _holder_gone(runs_root, name)]
    still_held = [name for name in held if name not in elsewhere and name not in let_go]
    done = sum(status == DONE for status in statuses.values())
    stopped = sum(status == STOPPED for status in statuses.values())
    finished = done + len(elsewhere)
    print(f"study {study.name}: {finished} run{'' if finished == 1 else 's'} finished"
          + (f" ({len(elsewhere)} by other processes)" if elsewhere else "") + f", {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else "")
          + (f", {_stopped_with_jobs(stopped)}" if stopped else "")
          + (f", {len(still_held)} held by other processes, still running there" if still_held else "")
          + (f", {len(let_go)} held by other processes that let go of them unfinished or died (the same command "
             f"goes on with them)" if let_go else ""))
    _print_why(study, specs, runs_root, failed, still_held)
    if not args.retry_failed:  # retried already, they failed again: the same again would too
        _print_retry_advice(runs_root, failed, "this command")
    return 0 if finished == len(statuses) else 1


def _stopped_with_jobs(count):
    if count == 1:
        return "1 stopped with its job (the same command resumes it)"
    return f"{count} stopped with their jobs (the same command resumes them)"


def _print_retry_advice(runs_root, failed, command):
    """The study's way to train its failed runs again, once (the runs' own reasons may name
    dlb_train's --overwrite, which is for a run alone), for those whose training failed or whose
    trained files are damaged; a failed evaluation is tried again by the same command as it is."""
    from dlbench import rundir
    from dlbench.study.unit import recorded_status

    again = [name for name in failed if recorded_status(rundir.study_run_dir(runs_root, name)) == rundir.Status.FAILED]
    if again:
        print(f"  {command} with --retry_failed trains again from step 0 the {len(again)} "
              f"run{'s' if len(again) > 1 else ''} whose training failed")


def _print_why(study, specs, runs_root, failed, held):
    """A line for each run that failed (its reason, as --status gives it) or is held by another
    process (by whom): a pool's workers keep their lines to themselves."""
    from dlbench import rundir
    from dlbench.study import FAILED, run_state

    for name in failed:
        state, reason = run_state(study, specs[name], runs_root)
        if state == FAILED and reason:
            print(f"  failed: {name}: {reason}")
    for name in held:
        holder = rundir.held_by(rundir.study_run_dir(runs_root, name))
        if holder:
            print(f"  held: {name}: {holder}")


def _done_and_let_go(study, spec, runs_root):
    """Whether a run is done as --status says it (trained, every metric of the study stored) and let
    go: one finished before this command (not sent again), or one another process held and finished."""
    from dlbench.study import DONE, run_state

    return run_state(study, spec, runs_root)[0] == DONE and _unheld(runs_root, spec.name)


def _failed_and_let_go(spec, runs_root):
    """Whether a run's training failed (its run.json, whole, says so) and nobody holds it: only
    --retry_failed trains it again. A damaged run.json or training file is left to the run's unit,
    which marks the run failed with the reason (a failed evaluation is tried again)."""
    from dlbench import rundir
    from dlbench.errors import UserError

    run_dir = rundir.study_run_dir(runs_root, spec.name)
    try:
        record = rundir.read_run(run_dir) if rundir.is_run(run_dir) else {}
    except UserError:
        return False
    return (record.get("status") == rundir.Status.FAILED and rundir.records_config(record)
            and _unheld(runs_root, spec.name))


def _unheld(runs_root, name):
    """Whether no process holds the study's run `name` (its folder has no claim)."""
    from dlbench import rundir

    return not rundir.claim_path(rundir.study_run_dir(runs_root, name)).exists()


def _holder_gone(runs_root, name):
    """Whether no live process holds the study's run `name`: its claim released, or its holder dead
    (on this host, at once; elsewhere once its lease has run out)."""
    from dlbench import rundir

    return rundir.held_by(rundir.study_run_dir(runs_root, name)) is None


def _on_other_machines(args):
    """Whether the study's jobs or workers run on other machines than this one: on Slurm, or on a Ray
    cluster given by --ray_address (not the local pool, a local Ray instance or submitit's local
    executor)."""
    if args.executor == "slurm":
        from dlbench.study.slurm import on_slurm

        return on_slurm()
    return args.executor == "ray" and args.ray_address is not None


def _stack_device(args, log=print):
    """The device --stack auto sizes stacks for: this machine's where the work runs here; on other
    machines --device as they will resolve it, where --stack auto needs this machine to have the
    GPU it measures: refused where asked for (or implied by --device cuda), and said where it is the
    default (each task trains one run; it had been so without a word). log None: no line."""
    import torch

    from dlbench.study.stacks import AUTO
    from dlbench.train import resolve_device

    if not _on_other_machines(args):
        return resolve_device(args.device)
    if args.device == "cpu" or args.stack not in (None, AUTO) or torch.cuda.is_available():
        return args.device
    if args.device == "cuda" or args.stack == AUTO:
        raise UserError("--stack auto measures the GPU's memory on this machine, which has none; give the "
                        f"{args.executor} stacks a size, e.g. --stack 16 (dlb_bench study --stack on a GPU node "
                        "helps choose), or --device cpu where the nodes have no GPU (one run a task)")
    if log:
        log(f"each {args.executor} task trains one run: --stack auto measures the GPU's memory on this machine, "
            f"which has none; --stack K trains K runs as one model on the nodes' GPUs")
    return args.device


# the Slurm parameters that have a flag of their own
_OWN_FLAGS = {"partition": "--slurm_partition", "time": "--slurm_time", "timeout_min": "--slurm_time",
              "array_parallelism": "--array_parallelism"}


def _slurm_options(args):
    import ast

    options = {key: value for key, value in (("partition", args.slurm_partition), ("time", args.slurm_time),
                                             ("array_parallelism", args.array_parallelism)) if value is not None}
    for item in args.slurm_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad --slurm_option {item!r}; write KEY=VALUE, e.g. gpus_per_node=1")
        if key.strip() in _OWN_FLAGS:  # two places for one value: which one wins would be a guess
            raise UserError(f"--slurm_option {item!r}: give it as {_OWN_FLAGS[key.strip()]}")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return options


def _print_status(study, runs, runs_root):
    from dlbench.study import DONE, FAILED, REEVALUATE, study_status

    states = study_status(study, runs, runs_root)
    print(f"study {study.name} in {runs_root}: {len(runs)} run{'s' if len(runs) != 1 else ''}: "
          + ", ".join(f"{len(names)} {state}" for state, names in sorted(states.items())))
    for name, reason in states.get(FAILED, []):
        print(f"  failed: {name}: {reason}")
    _print_retry_advice(runs_root, [name for name, _ in states.get(FAILED, [])], "the study's command")
    for name, reason in states.get(REEVALUATE, []):
        print(f"  to evaluate again: {name}: {reason}")
    return 0 if len(states.get(DONE, [])) == len(runs) else 1


def main(argv=None):
    return run_main("dlb_study", _body, argv)
