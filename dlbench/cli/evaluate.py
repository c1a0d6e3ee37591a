"""dlb_evaluate: compute metrics of a trained run, or of any representation on a dataset."""

from dlbench.cli.common import make_parser, path, run_main
from dlbench.errors import UserError


def _body(argv):
    from dlbench.evaluation import DEFAULT_METRICS, needs_model
    from dlbench.metrics import available_metrics

    representation_default = [name for name in DEFAULT_METRICS if not needs_model(name)]

    parser = make_parser("dlb_evaluate", "Compute metrics of a trained run into RUN_DIR/metrics/<mode>/<metric>/ "
                         "(postprocessing it first when needed; complete results are not recomputed), or of any "
                         "representation: --representation FILE --dataset NAME --out DIR.")
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?", type=path,
                        help="a run directory written by dlb_train (training finished)")
    parser.add_argument("--metrics", action="append",
                        help=f"comma-separated metric names, repeatable (default {','.join(DEFAULT_METRICS)}; with "
                             f"--representation {','.join(representation_default)}); available: "
                             f"{', '.join(available_metrics())}")
    parser.add_argument("--mode", default="mean", help="representation: mean or sampled")
    parser.add_argument("--metric_param", action="append", default=[], metavar="METRIC.PARAM=VALUE",
                        help="override a metric parameter, e.g. factor_vae.num_train=1000 (repeatable); a result "
                             "of other parameters or --seed is computed beside the default one, in "
                             "metrics/<mode>/<metric>[num_train=1000]/")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the metrics (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="recompute results that exist")
    parser.add_argument("--representation", metavar="FILE_OR_CALLABLE",
                        help="evaluate this instead of a run: a TorchScript file or module.path:function mapping "
                             "float observations (n, C, H, W) in [0, 1] to codes (n, D); needs --dataset and --out")
    parser.add_argument("--dataset", metavar="NAME", help="with --representation: the dataset to evaluate it on")
    parser.add_argument("--out", metavar="DIR", type=path, help="with --representation: where metrics/mean/<metric>/ are written")
    parser.add_argument("--encoder", metavar="FILE_OR_CALLABLE",
                        help="with --representation: a module giving (mean, logvar), for mig_chen and total_correlation")
    args = parser.parse_args(argv)
    if args.metrics is None:
        names = list(representation_default if args.representation else DEFAULT_METRICS)
    else:  # a repeated --metrics adds to the list, as --metric_param does (repeats are computed once)
        names = [m.strip() for flag in args.metrics for m in flag.split(",") if m.strip()]
    if args.representation:
        return _evaluate_representation(args, names)
    if not args.run_dir:
        parser.error("give RUN_DIR, or --representation FILE --dataset NAME --out DIR")
    if args.dataset or args.out or args.encoder:
        parser.error("--dataset, --out and --encoder go with --representation, not with RUN_DIR")

    from dlbench import rundir

    rundir.check_not_held(args.run_dir)  # told at once, before the data loads, that another process writes there

    from dlbench.evaluation import evaluate_run, parse_metric_params
    from dlbench.train import resolve_device

    evaluate_run(args.run_dir, names, args.mode, resolve_device(args.device), args.seed,
                 parse_metric_params(args.metric_param), args.overwrite)


def _evaluate_representation(args, names):
    if args.run_dir:
        raise UserError("give either RUN_DIR or --representation, not both")
    if not args.dataset or not args.out:
        flags = (("--dataset", args.dataset, "the dataset to evaluate on"),
                 ("--out", args.out, "the folder for results"))
        missing = [f"{flag} ({what})" for flag, value, what in flags if not value]
        raise UserError(f"--representation needs {' and '.join(missing)}")
    if args.mode != "mean":
        raise UserError("--mode applies to runs; a --representation is evaluated as it is")

    from dlbench.evaluation import evaluate_representation, parse_metric_params
    from dlbench.train import resolve_device

    evaluate_representation(args.representation, args.dataset, args.out, names, resolve_device(args.device),
                            args.seed, parse_metric_params(args.metric_param), args.overwrite, args.encoder)


def main(argv=None):
    return run_main("dlb_evaluate", _body, argv)
