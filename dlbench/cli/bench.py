"""dlb_bench: benchmarks that print figures (not pass/fail)."""

import json

from dlbench.cli.common import make_parser, run_main


def _body(argv):
    parser = make_parser("dlb_bench", "Benchmarks. train: training images/s per architecture, dlbench's loop "
                         "against a per-sample DataLoader loop at batch 64. metrics: seconds per metric.")
    parser.add_argument("what", choices=["train", "metrics"])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--steps", type=int, help="timed steps per round (default 20 on CPU, 300 on GPU; 3 alternating rounds)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from dlbench.bench import bench_metrics, bench_train
    from dlbench.train import resolve_device

    device = resolve_device(args.device)
    figures = bench_train(device, steps=args.steps) if args.what == "train" else bench_metrics(device)
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{key}: " + ", ".join(f"{k} {v:.2f}" for k, v in value.items()))
        else:
            print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")


def main(argv=None):
    return run_main("dlb_bench", _body, argv)
