"""dlb_study: run a whole study."""

from pathlib import Path

from dlbench.cli.common import make_parser, run_main
from dlbench.errors import UserError, describe_os_error


def _known_studies():
    from dlbench.config import gin_dir

    return ", ".join(sorted(p.stem for p in (gin_dir() / "studies").glob("*.gin"))) or "none"


def _body(argv):
    parser = make_parser("dlb_study", "Train, postprocess and evaluate every run of a study under --runs_root. "
                         "Every run's config and every metric are checked before the first run starts; "
                         "finished stages are skipped, so running it again continues where it stopped.")
    parser.add_argument("study", metavar="NAME_OR_GIN",
                        help=f"a study in dlbench's gin/studies/ ({_known_studies()}) or the path of a study .gin file")
    parser.add_argument("--runs_root", metavar="DIR", help="folder for the run directories (default runs/<study name>)")
    parser.add_argument("--executor", default="local", choices=["local"],
                        help="local: one run after another in this process")
    parser.add_argument("--shard", metavar="I/N", help="run only shard I of N (0-based), e.g. 0/4")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--dry_run", action="store_true", help="check the study and list its runs and bindings; run nothing")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)

    from dlbench.study import load_study, shard, validate_study
    from dlbench.study.local import run_local
    from dlbench.train import resolve_device

    study = load_study(args.study)
    runs = shard(study.runs, args.shard) if args.shard else study.runs
    device = resolve_device(args.device)
    runs_root = Path(args.runs_root) if args.runs_root else Path("runs") / study.name
    if runs_root.exists() and not runs_root.is_dir():
        raise UserError(f"--runs_root '{runs_root}' is a file, not a folder; choose a folder for the run directories")
    validate_study(study, runs)
    if args.dry_run:
        for spec in runs:
            print(f"{runs_root / spec.name}: --gin {' --gin '.join(spec.gin_files)} " +
                  " ".join(f"--gin_param '{p}'" for p in spec.gin_params))
        return 0
    try:
        runs_root.mkdir(parents=True, exist_ok=True)  # an unwritable place is found now, before the first run
    except OSError as err:
        raise UserError(f"--runs_root '{runs_root}' cannot be made: {describe_os_error(err)}") from None
    statuses = run_local(study, runs, runs_root, device, progress=not args.no_progress)
    failed = [name for name, status in statuses.items() if status == "failed"]
    print(f"study {study.name}: {len(statuses) - len(failed)} runs finished, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


def main(argv=None):
    return run_main("dlb_study", _body, argv)
