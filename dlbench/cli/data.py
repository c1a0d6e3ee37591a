"""dlb_data: list, make, verify, describe and download the ground-truth dataset files.

  dlb_data list                      every dataset and its file: real / synthetic / missing / corrupt
  dlb_data make NAME [--force] [--compress] [--keep FACTOR=INDICES ...] [--path FILE]
  dlb_data verify NAME [--path FILE]
  dlb_data info NAME [--path FILE]
  dlb_data download NAME [--path FILE]

Files live in $DLBENCH_DATA (default ~/.cache/dlbench).
"""

import time
from pathlib import Path

from dlbench.cli.common import make_parser, run_main
from dlbench.data import available_datasets, data_root, get_dataset_class
from dlbench.errors import UserError

PROG = "dlb_data"


def _parser():
    parser = make_parser(PROG, "List, generate, check and fetch dataset files "
                               f"(data root: $DLBENCH_DATA, now {data_root()}).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    commands.add_parser("list", help="every dataset and the state of its file")
    make = commands.add_parser("make", help="generate a synthetic dataset file (procedural datasets only)")
    make.add_argument("name", metavar="NAME")
    make.add_argument("--force", action="store_true", help="regenerate an existing synthetic file")
    make.add_argument("--compress", action="store_true",
                      help="deflate the file (small on disk, slower to load) instead of storing it")
    make.add_argument("--keep", action="append", default=[], metavar="FACTOR=INDICES",
                      help="write a reduced grid: keep only these class indices of FACTOR, "
                           "as a comma list (0,5,10) or a range start:stop[:step]; repeatable")
    for name, text in (("verify", "check a dataset file (format, and the md5 of a real file)"),
                       ("info", "factors, sizes, path and source of a dataset file"),
                       ("download", "fetch the real dataset file")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name", metavar="NAME")
    for name, sub in commands.choices.items():
        if name != "list":
            sub.add_argument("--path", type=Path, help="the dataset file (default: its place in the data root)")
    return parser


def parse_keep(items):
    """['scale=5', 'posX=0:32:4', 'shape=0,2'] -> {'scale': [5], 'posX': [0, 4, ...], 'shape': [0, 2]}."""
    result = {}
    for item in items:
        factor, sep, spec = item.partition("=")
        if not sep or not factor or not spec:
            raise UserError(f"bad --keep {item!r}: expected FACTOR=INDICES, e.g. scale=5 or posX=0:32:4")
        try:
            if ":" in spec:
                parts = [int(p) if p else None for p in spec.split(":")]
                if len(parts) > 3:
                    raise ValueError
                start, stop, step = (parts + [None, None])[:3]
                if stop is None:
                    raise ValueError
                indices = list(range(start or 0, stop, step or 1))
            else:
                indices = [int(p) for p in spec.split(",")]
        except ValueError:
            raise UserError(f"bad --keep {item!r}: indices must be integers, a comma list or start:stop[:step]") from None
        if factor in result:
            raise UserError(f"--keep given twice for factor {factor!r}")
        result[factor] = indices
    return result


def _needs(cls, method, command):
    if not hasattr(cls, method):
        raise UserError(f"dataset {cls.name!r} does not support `{PROG} {command}`")
    return getattr(cls, method)


def cmd_list(args):
    rows = []
    for name in available_datasets():
        cls = get_dataset_class(name)
        path = cls.default_path()
        rows.append((name, cls.file_status(path), str(path)))
    width = max(len(r[0]) for r in rows)
    print(f"data root: {data_root()}")
    for name, status, path in rows:
        print(f"{name:<{width}}  {status:<9}  {path}")
    return 0


def cmd_make(args):
    cls = get_dataset_class(args.name)
    make = _needs(cls, "make", "make")
    keep = parse_keep(args.keep)
    path = args.path or cls.default_path()
    start = time.time()
    try:
        written = make(path, class_indices=keep or None, force=args.force, progress=True, compress=args.compress)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or err}); set DLBENCH_DATA to a writable folder") from None
    info = cls.describe(written)
    print(f"wrote a SYNTHETIC {args.name} file ({info['num_images']} images, {info['grid']} grid, "
          f"{info['file_bytes'] / 1e6:.1f} MB) to {written} in {time.time() - start:.1f} s")
    return 0


def cmd_verify(args):
    cls = get_dataset_class(args.name)
    path = args.path or cls.default_path()
    report = _needs(cls, "verify_file", "verify")(path)
    status = report["status"]
    if status == "missing":
        print(f"{args.name}: missing at {path}; run `{PROG} download {args.name}` or `{PROG} make {args.name}`")
        return 1
    if status == "corrupt":
        for problem in report["problems"]:
            print(f"{args.name}: corrupt: {problem}")
        return 1
    detail = "md5 matches the published file" if status == "real" else (
        f"procedurally generated by dlbench; a sample of {report.get('checked_render_sample', 0)} images "
        f"matches the renderer")
    print(f"{args.name}: OK, {status} ({detail}); {path}")
    return 0


def cmd_info(args):
    cls = get_dataset_class(args.name)
    info = _needs(cls, "describe", "info")(args.path or cls.default_path())
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def cmd_download(args):
    cls = get_dataset_class(args.name)
    download = _needs(cls, "download", "download")
    path = args.path or cls.default_path()
    try:
        written = download(path)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or err}); set DLBENCH_DATA to a writable folder") from None
    print(f"{args.name}: real file in place at {written}")
    return 0


COMMANDS = {"list": cmd_list, "make": cmd_make, "verify": cmd_verify, "info": cmd_info, "download": cmd_download}


def _body(argv):
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


def main(argv=None):
    return run_main(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
