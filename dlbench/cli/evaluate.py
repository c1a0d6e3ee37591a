"""dlb_evaluate: compute metrics of a trained run."""

from dlbench.cli.common import make_parser, run_main


def _body(argv):
    from dlbench.evaluation import DEFAULT_METRICS
    from dlbench.metrics import available_metrics

    parser = make_parser("dlb_evaluate", "Compute metrics of a trained run into RUN_DIR/metrics/<mode>/<metric>/. "
                         "Postprocesses the run first when needed; complete results are not recomputed.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by dlb_train (training finished)")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                        help=f"comma-separated metric names (default {','.join(DEFAULT_METRICS)}); available: "
                             f"{', '.join(available_metrics())}")
    parser.add_argument("--mode", default="mean", help="representation: mean or sampled")
    parser.add_argument("--metric_param", action="append", default=[], metavar="METRIC.PARAM=VALUE",
                        help="override a metric parameter, e.g. factor_vae.num_train=1000 (repeatable); a result "
                             "of other parameters or --seed is computed beside the default one, in "
                             "metrics/<mode>/<metric>[num_train=1000]/")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the metrics (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="recompute results that exist")
    args = parser.parse_args(argv)
    from dlbench import rundir

    rundir.check_not_held(args.run_dir)  # told at once, before torch loads, that another process writes there

    from dlbench.evaluation import evaluate_run, parse_metric_params
    from dlbench.train import resolve_device

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    evaluate_run(args.run_dir, names, args.mode, resolve_device(args.device), args.seed,
                 parse_metric_params(args.metric_param), args.overwrite)


def main(argv=None):
    return run_main("dlb_evaluate", _body, argv)
