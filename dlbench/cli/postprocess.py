"""dlb_postprocess: extract a run's representation function."""

from dlbench.cli.common import make_parser, path, run_main


def _body(argv):
    parser = make_parser("dlb_postprocess", "Save a trained run's representation (TorchScript) under "
                         "RUN_DIR/postprocessed/<mode>/.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=path, help="a run directory written by dlb_train (training finished)")
    parser.add_argument("--mode", default="mean", help="mean (encoder mean) or sampled (one draw from q(z|x))")
    parser.add_argument("--overwrite", action="store_true", help="write it again even if it exists")
    args = parser.parse_args(argv)

    from dlbench.postprocess import postprocess

    print(postprocess(args.run_dir, args.mode, args.overwrite))


def main(argv=None):
    return run_main("dlb_postprocess", _body, argv)
