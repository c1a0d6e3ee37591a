"""dlb_train: train one model from gin config into a run directory."""

from dlbench.cli.common import add_progress_flag, make_parser, path, run_main, show_progress


def _body(argv):
    parser = make_parser("dlb_train", "Train one model from gin config into a run directory. "
                         "Running it again on an unfinished RUN_DIR resumes from its last checkpoint "
                         "(`dlb_train --run_dir RUN_DIR` alone resumes with the run's own config). "
                         "SIGINT, SIGTERM or SIGHUP end the current step, write a checkpoint, mark the run "
                         "interrupted and exit with 128 + the signal number.")
    parser.add_argument("--gin", action="append", default=[], metavar="FILE",
                        help="gin config file (repeatable; a path, or a name in dlbench's gin/ folder)")
    parser.add_argument("--gin_param", action="append", default=[], metavar="BINDING",
                        help="one gin binding, e.g. 'beta_vae.beta = 8.0' (repeatable; applied after the files)")
    parser.add_argument("--run_dir", type=path, help="output run directory (default runs/<method>_<dataset>_seed<seed>_<hash>); "
                                          "alone, without --gin, resumes the run there with its own config")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in RUN_DIR")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    add_progress_flag(parser)
    args = parser.parse_args(argv)
    from dlbench import rundir

    if args.run_dir:
        rundir.check_not_held(args.run_dir)  # a second writer is told at once, before torch loads

    from dlbench.config import check_each_binding_once
    from dlbench.train.run import train_from_gin

    check_each_binding_once(args.gin_param)

    run_dir, status = train_from_gin(args.gin, args.gin_param, args.run_dir, args.device, args.overwrite,
                                     progress=show_progress(args), note_unused=True)
    print(f"{run_dir}: {status}")
    return 1 if status == rundir.Status.FAILED else 0


def main(argv=None):
    return run_main("dlb_train", _body, argv)
