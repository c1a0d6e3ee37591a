"""dlb_bench: benchmarks that print figures (not pass/fail)."""

import json

from dlbench.cli.common import check_scratch, make_parser, path, run_main
from dlbench.errors import UserError


def parser():
    """dlb_bench's argument parser (bin/dlb_gpu_check's commands are checked against it)."""
    parser = make_parser("dlb_bench", "Benchmarks. train: training images/s per architecture, dlbench's loop "
                         "against a per-sample DataLoader loop at batch 64. metrics: seconds per metric with an "
                         "untrained conv model on the dataset, and on a lookup representation (codes a fixed "
                         "linear map of the factors) against straightforward per-vote baselines. memory: peak resident "
                         "memory of loading each full-size dataset (the real file when present, else a full-size "
                         "file in the published format written to --scratch and deleted after). study: a fixed slice of "
                         "study_v1_cpu run by the local executor one run at a time and with a pool of workers (runs "
                         "per hour, the ratio), and the projected time of study_v1_cpu and study_v1 on this device. aggregate: "
                         "dlb_aggregate timed on a synthetic 1280-run root. layers: a stack's training step of the dlib conv beta-VAE "
                         "at batch 64 computed with vmap (what stacks use) and with batched layers (grouped "
                         "convolutions, baddbmm), images per second each way for each K of --stack. encoding: the dataset encoded for the "
                         "evaluation of a stack's K runs (untrained conv encoders), one run after another against all K "
                         "at once, seconds per run each way.")
    parser.add_argument("what", choices=["train", "metrics", "memory", "study", "aggregate", "layers", "encoding"])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--steps", type=int, help="train: timed steps per round (default 20 on CPU, 300 on GPU; "
                        "3 alternating rounds); study --stack: timed steps per run (default 20 on CPU, 200 on GPU); layers: timed "
                        "steps per round (default 5 on CPU, 50 on GPU; 3 alternating rounds)")
    parser.add_argument("--metrics", help="metrics: comma-separated names (default: every metric that needs only "
                        "a representation, and recon_ll with the conv model; dci's default gradient-boosted trees take minutes "
                        "on a CPU, the conv model's encoding too)")
    parser.add_argument("--per-run", action="store_true",
                        help="metrics: instead, one run's evaluation both ways (metrics drawing and encoding their "
                             "own observations, and the dataset encoded once) for dlb_evaluate's default set and "
                             "disentanglement_lib's set without DCI, with the conv model (minutes on a CPU)")
    parser.add_argument("--lookup-only", action="store_true",
                        help="metrics: skip the conv model, time only the lookup representation and the baselines")
    parser.add_argument("--metric_param", action="append", default=[], metavar="METRIC.PARAM=VALUE",
                        help="metrics: a metric setting for both the metric and its baseline, e.g. "
                        "factor_vae.num_train=1000 (repeatable)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="metrics: best of this many alternating runs of each metric and its baseline (default 1)")
    parser.add_argument("--dataset", default="dsprites", help="metrics, encoding: the dataset (default dsprites)")
    parser.add_argument("--images", type=int, help="encoding: time the first IMAGES images and scale to the whole "
                        "dataset (default 2048 on CPU, 65536 on GPU)")
    parser.add_argument("--datasets", help="memory: comma-separated names (default: "
                        "dsprites,shapes3d,mpi3d,cars3d,smallnorb,fashion_mnist; mpi3d needs 13 GB of disk and 26 GB "
                        "of memory while writing then loading, shapes3d 6 GB of memory)")
    parser.add_argument("--scratch", type=path, help="memory: folder for the full-size files; study without --stack: for the runs (default: the system's temp folder)")
    parser.add_argument("--workers", help="study without --stack: comma-separated worker counts to time (default 1,2)")
    parser.add_argument("--stack", help="study: instead, the training throughput of K runs stacked against one run "
                        "at a time, for each K of a comma-separated list, e.g. 1,4,16,64, with runs per hour, peak "
                        "memory, each study's projected training time and its compute floor (its matrix products' FLOPs "
                        "at the device's measured peak); layers: the stack sizes (default 1,2,4 on CPU, "
                        "1,4,16,32,64 on GPU); encoding: the stack sizes (default 1,2,4 on CPU, 1,4,16,32 on GPU)")
    parser.add_argument("--study", help="study --stack: the named studies whose protocols are measured, comma-separated "
                        "(default: study_v1_cpu on a CPU; study_v1,dlib_unsupervised_v1 on a GPU)")
    parser.add_argument("--runs", type=int, help="study without --stack: time only the first RUNS runs of the slice (default all 8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


# the benchmarks that read each option: any other would silently ignore it
OPTION_READERS = {
    "device": ("train", "metrics", "study", "layers", "encoding"),
    "steps": ("train", "study", "layers"),
    "metrics": ("metrics",), "per_run": ("metrics",), "lookup_only": ("metrics",), "metric_param": ("metrics",),
    "repeats": ("metrics",),
    "dataset": ("metrics", "encoding"),
    "datasets": ("memory",),
    "scratch": ("memory", "study", "aggregate"),
    "workers": ("study",), "study": ("study",), "runs": ("study", "aggregate"),
    "stack": ("study", "layers", "encoding"),
    "images": ("encoding",),
}


# Options that switch a benchmark's mode: (benchmark, switch, options read only with it, options read
# only without it). study: executors timed on a slice, or (--stack) stacks timed at named studies'
# protocols. metrics: --per-run evaluates fixed metric sets at their default protocols, and
# --lookup-only times only NumPy work on the lookup representation, never on the device.
MODE_SWITCHES = [
    ("study", "stack", ("study", "steps"), ("workers", "runs", "scratch")),
    ("metrics", "per_run", (), ("metrics", "lookup_only", "metric_param", "repeats")),
    ("metrics", "lookup_only", (), ("device",)),
]


def refuse_options_of_other_benchmarks(args, parser):
    """One line naming an option given to a benchmark that does not read it."""
    spelled = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    given = [name for name in OPTION_READERS if getattr(args, name) != parser.get_default(name)]
    for name in given:
        readers = OPTION_READERS[name]
        if args.what not in readers:
            raise UserError(f"dlb_bench {args.what}: {spelled[name]} is for {', '.join(readers)} only; leave it out")
    for what, switch, with_it, without_it in MODE_SWITCHES:
        if args.what != what:
            continue
        # an empty --stack '' still chooses stacks: _counts then refuses it
        refused, where = (without_it, "without") if switch in given else (with_it, "with")
        for name in given:
            if name in refused:
                raise UserError(f"dlb_bench {what}: {spelled[name]} is used only {where} {spelled[switch]}; "
                                "leave it out")


def _body(argv):
    bench_parser = parser()
    args = bench_parser.parse_args(argv)
    refuse_options_of_other_benchmarks(args, bench_parser)
    _at_least_one(args.steps, "--steps", args.what)  # 0 would mean the default, below 0 nonsense
    _at_least_one(args.repeats, "--repeats", "metrics")  # the only reader (refused above for the others)
    if args.what == "study":
        return _study(args)
    if args.what == "aggregate":
        from dlbench.aggregate.benchmark import main as bench_aggregate
        check_scratch("dlb_bench aggregate", args.scratch)
        return bench_aggregate(args)

    from dlbench.bench import bench_metrics, bench_per_run, bench_train
    from dlbench.evaluation import parse_metric_params
    from dlbench.train import resolve_device

    if args.what == "memory":
        return _memory(args)
    if args.what == "layers":
        return _layers(args)
    if args.what == "encoding":
        return _encoding(args)
    device = resolve_device(args.device)
    if args.what == "metrics" and not args.lookup_only:
        _check_conv_dataset(args.dataset, "metrics", "; --lookup-only times the metrics alone, on any dataset")
    if args.what == "train":
        figures = bench_train(device, steps=args.steps)
    elif args.per_run:
        figures = bench_per_run(device, dataset=args.dataset, log=(lambda *_: None) if args.json else print)
    else:
        names = (_items(args.metrics, "--metrics", "metric names", "mig,factor_vae", "metrics")
                 if args.metrics is not None else None)
        figures = bench_metrics(device, names=names, dataset=args.dataset, lookup_only=args.lookup_only,
                                params=parse_metric_params(args.metric_param), repeats=args.repeats)
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        if key == "lookup":
            _print_lookup(value)
        elif isinstance(value, dict):
            print(f"{key}: " + ", ".join(_figure(k, v) for k, v in value.items()))
        else:
            print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")


def _figure(key, value):
    if isinstance(value, dict):
        return f"{key} (" + ", ".join(_figure(k, v) for k, v in value.items()) + ")"
    return f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"


def _memory(args):
    from dlbench.data import memory_benchmark

    names = (_items(args.datasets, "--datasets", "dataset names", "dsprites,shapes3d", "memory")
             if args.datasets is not None else memory_benchmark.DATASETS)
    unknown = sorted(set(names) - set(memory_benchmark.DATASETS))
    if unknown:
        raise UserError(f"dlb_bench memory: unknown dataset {', '.join(unknown)}; choose from "
                        f"{', '.join(memory_benchmark.DATASETS)}")
    check_scratch("dlb_bench memory", args.scratch)
    rows = []
    for name in names:
        rows.append(memory_benchmark.measure(name, scratch=args.scratch))
        if not args.json:
            print(memory_benchmark.format_row(rows[-1]), flush=True)
    if args.json:
        print(json.dumps(rows))


def _items(text, option, what, example, command):
    """The items of a comma-separated option; one line naming it when it or an item is empty
    (skipping them would fall back to the default, or time something else than asked)."""
    items = [part.strip() for part in text.split(",")]
    if not all(items):
        problem = "empty" if not text.strip() else "an empty item"
        raise UserError(f"dlb_bench {command}: bad {option} {text!r} ({problem}); give comma-separated {what}, "
                        f"e.g. {example}")
    return items


def _counts(text, option, what, example, command="study"):
    """The comma-separated positive integers of an option; one line naming it otherwise."""
    try:
        counts = [int(part) for part in _items(text, option, f"{what} of at least 1", example, command)]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"dlb_bench {command}: bad {option} {text!r}; give {what} of at least 1, e.g. {example}")
    return counts


def _study(args):
    if args.stack is not None:
        return _stacking(args)
    workers = _counts(args.workers, "--workers", "worker counts", "1,2") if args.workers is not None else None
    _at_least_one(args.runs, "--runs", "study")
    check_scratch("dlb_bench study", args.scratch)
    from dlbench.study.benchmark import bench_study
    from dlbench.study.local import check_workers
    from dlbench.train import resolve_device

    device = resolve_device(args.device)
    for count in workers or ():
        check_workers(count, device, "dlb_bench study: --workers")
    figures = bench_study(device, workers, args.runs, args.scratch,
                          log=(lambda *_: None) if args.json else print)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"device: {figures['device']}; slice: {figures['slice']}")
    for name, row in figures["executors"].items():
        print(f"  {name:<10} {row['seconds']:8.0f} s  {row['runs_per_hour']:8.1f} runs/hour")
    for name, ratio in figures.get("speedup_over_sequential", {}).items():
        print(f"  {name} / workers=1: {ratio:.2f}x runs per hour")
    for name, row in figures.get("projected_hours", {}).items():
        print(f"projected {name} ({row['runs']} runs): {row['hours']:.1f} hours ({row['what']})")


def _stacking(args):
    stacks = _counts(args.stack, "--stack", "stack sizes", "1,4,16")
    from dlbench.study.benchmark import bench_stacking
    from dlbench.train import resolve_device

    studies = _items(args.study, "--study", "study names", "study_v1_cpu", "study") if args.study is not None else None
    figures = bench_stacking(resolve_device(args.device), stacks, args.steps, studies,
                             log=(lambda *_: None) if args.json else print)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"device: {figures['device']}; {figures['steps']} timed steps per measurement; matrix-product peak "
          + ", ".join(f"{name} {peak:.1f} TFLOP/s" for name, peak in figures["matmul_peak_tflops"].items()))
    for name, study in figures["studies"].items():
        protocol = study["protocol"]
        print(f"{name} ({protocol['architecture']}, batch {protocol['batch_size']}, {protocol['steps']} steps a run), "
              f"stacks of {protocol.get('method', 'beta_vae')}:")  # figures written before 'method' were beta-VAE's
        print("  (alone: a run trained by itself, as dlb_study --stack 1 trains; K = 1: one run in the stack's "
              "batched kernels, as a run whose stack resumes it by itself)")
        print(f"  {'K':>4} {'img/s stacked':>14} {'img/s alone':>12} {'ratio':>6} {'runs/h stacked':>15} "
              f"{'runs/h alone':>13} {'peak GiB':>9}")
        for k, row in study["stacks"].items():
            if row.get("out_of_memory"):
                print(f"  {k[2:]:>4} out of the GPU's memory")
                continue
            peak = f"{row['peak_memory_gib']:9.2f}" if "peak_memory_gib" in row else f"{'-':>9}"
            print(f"  {k[2:]:>4} {row['stacked_images_per_second']:14.0f} {row['alone_images_per_second']:12.0f} "
                  f"{row['ratio']:6.2f} {row['stacked_runs_per_hour']:15.1f} {row['alone_runs_per_hour']:13.1f} {peak}")
        print(f"  projected training of all {name}: "
              + ", ".join(f"{_duration(hours)} in {precision}"
                          for precision, hours in study["projected_training_hours_by_precision"].items())
              + f" at K={study['best_k']} (each method at its measured rate; evaluation not included)")
        print(f"  its matrix products: {_flop(study['training_pflop'])}, a floor of "
              + ", ".join(f"{_duration(hours)} at the {dtype} peak"
                          for dtype, hours in study["compute_floor_hours"].items())
              + "; TFLOP/s achieved: "
              + ", ".join(f"{method} {tflops:.2f}" for method, tflops in study["method_tflops"].items()))


def _duration(hours):
    """'2.41 h', or in minutes or seconds where hours would print as 0.00."""
    if hours >= 0.1:
        return f"{hours:.2f} h"
    return f"{hours * 60:.1f} min" if hours * 60 >= 1 else f"{hours * 3600:.2g} s"


def _flop(pflop):
    """'3.20 PFLOP', or in TFLOP or GFLOP where PFLOP would print as 0.00."""
    for unit, scale in (("PFLOP", 1), ("TFLOP", 1e3), ("GFLOP", 1e6)):
        if pflop * scale >= 1:
            return f"{pflop * scale:.2f} {unit}"
    return f"{pflop * 1e6:.2g} GFLOP"


def _at_least_one(value, option, command):
    if value is not None and value < 1:
        raise UserError(f"dlb_bench {command}: {option} must be at least 1, got {value}")


def _stack_sizes(args, command):
    """--stack's sizes, or None for the benchmark's default."""
    return _counts(args.stack, "--stack", "stack sizes", "1,4,16", command) if args.stack is not None else None


def _layers(args):
    from dlbench.stack_benchmark import bench_layers
    from dlbench.train import resolve_device

    figures = bench_layers(resolve_device(args.device), _stack_sizes(args, "layers"), args.steps)
    if args.json:
        print(json.dumps(figures))
        return
    _print_stack_table(f"device: {figures['device']}; {figures['architecture']} beta-VAE at batch "
                       f"{figures['batch_size']}, best of {figures['rounds']} rounds of {figures['steps_per_round']} "
                       f"step{'s' if figures['steps_per_round'] != 1 else ''}", figures["stacks"],
                       [("img/s vmap", "vmap_images_per_second", ".0f"),
                        ("img/s batched", "batched_images_per_second", ".0f"),
                        ("batched/vmap", "batched_over_vmap", ".2f")])


def _check_conv_dataset(name, command, hint="", fixed_images=False):
    """These benchmarks encode a dataset's images with disentanglement_lib's conv encoder, which
    dlb_bench cannot swap: a dataset of other observations, or (encoding) without a fixed array of
    them, is refused naming the datasets that fit, not with the advice a training would get."""
    import dlbench.data
    from dlbench.nn.architectures import check_fits

    cls = dlbench.data.get_dataset_class(name)  # an unknown name is one line here
    try:
        check_fits("conv", cls.observation_shape)
        fits = not (fixed_images and getattr(cls, "randomness", ""))
    except UserError:
        fits = False
    if not fits:
        what = "a fixed array of 64x64 images" if fixed_images else "64x64 images"
        raise UserError(f"dlb_bench {command} times disentanglement_lib's conv encoder on {what}, which {name} "
                        f"has not; give --dataset dsprites (the default), shapes3d, mpi3d_toy or cars3d{hint}")


def _encoding(args):
    import dlbench.data
    from dlbench.stack_benchmark import bench_encoding
    from dlbench.train import resolve_device

    from dlbench.stack_benchmark import MIN_ENCODING_IMAGES

    if args.images is not None and args.images < MIN_ENCODING_IMAGES:
        raise UserError(f"dlb_bench encoding: --images must be at least {MIN_ENCODING_IMAGES}, got {args.images}: "
                        f"fewer time mostly a call's fixed cost, which scaling to the whole dataset multiplies")
    stacks = _stack_sizes(args, "encoding")  # checked before the dataset loads
    _check_conv_dataset(args.dataset, "encoding", fixed_images=True)
    figures = bench_encoding(resolve_device(args.device), dlbench.data.get_dataset(args.dataset), stacks, args.images)
    if args.json:
        print(json.dumps(figures))
        return
    capped = args.images is not None and args.images > figures["timed_images"]
    _print_stack_table(f"device: {figures['device']}; {args.dataset}: {figures['timed_images']} of "
                       f"{figures['dataset_images']} images timed" + (f" (all it has, of --images {args.images})"
                                                                      if capped else "")
                       + ", seconds per run scaled to all of them",
                       figures["stacks"],
                       [("s/run alone", "alone_seconds_per_run", ".2f"),
                        ("s/run stacked", "stacked_seconds_per_run", ".2f"),
                        ("alone/stacked", "alone_over_stacked", ".2f"),
                        ("max code diff", "max_code_difference", ".1e")])


def _print_stack_table(headline, stacks, columns):
    """The headline, then a row per K of `stacks` ({'K=k': row}) with the (header, key, format)
    columns."""
    print(headline)
    print(f"  {'K':>4}" + "".join(f" {header:>{len(header)}}" for header, _, _ in columns))
    for k, row in stacks.items():
        print(f"  {k[2:]:>4}" + "".join(f" {row[key]:>{len(header)}{form}}" for header, key, form in columns))


def _print_lookup(rows):
    print("lookup representation (the metric's own cost):")
    print(f"  {'metric':<26}{'seconds':>10}{'baseline_s':>12}{'speedup':>9}  same_result")
    for name, row in rows.items():
        if "baseline_seconds" in row:
            print(f"  {name:<26}{row['seconds']:>10.3f}{row['baseline_seconds']:>12.3f}{row['speedup']:>8.1f}x  "
                  f"{row['same_result']}")
        else:
            print(f"  {name:<26}{row['seconds']:>10.3f}{'-':>12}{'-':>9}  (no baseline)")


def main(argv=None):
    return run_main("dlb_bench", _body, argv)
