"""dlb_study: run a whole study."""

from dlbench.cli.common import make_parser, run_main


def _body(argv):
    parser = make_parser("dlb_study", "Train, postprocess and evaluate every run of a study "
                         "(a name from gin/studies/ or a study .gin file) under --runs_root.")
    parser.add_argument("study", metavar="NAME_OR_GIN")
    parser.add_argument("--runs_root", required=True, metavar="DIR", help="folder for the run directories")
    parser.add_argument("--executor", default="local", choices=["local"],
                        help="local: one run after another in this process")
    parser.add_argument("--shard", metavar="I/N", help="run only shard I of N (0-based), e.g. 0/4")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--dry_run", action="store_true", help="list the runs and their bindings, run nothing")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)

    from dlbench.study import load_study, shard
    from dlbench.study.local import run_local
    from dlbench.train import resolve_device

    study = load_study(args.study)
    runs = shard(study.runs, args.shard) if args.shard else study.runs
    device = resolve_device(args.device)
    if args.dry_run:
        for spec in runs:
            print(f"{spec.name}: --gin {' --gin '.join(spec.gin_files)} " +
                  " ".join(f"--gin_param '{p}'" for p in spec.gin_params))
        return 0
    statuses = run_local(study, runs, args.runs_root, device, progress=not args.no_progress)
    failed = [name for name, status in statuses.items() if status == "failed"]
    print(f"study {study.name}: {len(statuses) - len(failed)} runs finished, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


def main(argv=None):
    return run_main("dlb_study", _body, argv)
