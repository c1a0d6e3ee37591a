"""dlb_data: list, make, verify, describe and download the ground-truth dataset files.

  dlb_data list                      every dataset: its file's state (real / synthetic / missing / corrupt,
                                     or generated in memory), observations, factors, where it looks
  dlb_data make NAME [--force] [--compress] [--keep FACTOR=INDICES ...] [--path FILE] [--no_progress]
  dlb_data make NAME --from ARCHIVE [--path FOLDER]   lay out a hand-downloaded archive (cars3d)
  dlb_data verify NAME [--path FILE]  exit code 2 with one line for a missing or unusable file
  dlb_data info NAME [--path FILE]
  dlb_data download NAME [--path FILE] [--no_progress]

Files live in $DLBENCH_DATA (default ~/.cache/dlbench); --path names a dataset's file, or its
folder of files for the datasets published as several (cars3d, fashion_mnist, smallnorb). A --path
that cannot be that (a folder for a file, a path through a file, a place that cannot be written)
gets one line before any work starts.
"""

import errno
import os
import time
from pathlib import Path

from dlbench.cli.common import add_progress_flag, make_parser, path, run_main, show_progress
from dlbench.data import (available_datasets, check_data_root, data_root, files, get_dataset_class,
                          refuse_a_file_in_its_place)
from dlbench.errors import UserError, broken_link, file_above, file_in_the_way, shell_word

PROG = "dlb_data"


def _parser():
    names = ", ".join(available_datasets())
    folders = ", ".join(n for n in available_datasets() if _path_is_folder(get_dataset_class(n)))
    parser = make_parser(PROG, "List, generate, check and fetch dataset files "
                               f"(data root: $DLBENCH_DATA, now {data_root()}).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    commands.add_parser("list", help="every dataset and the state of its file")
    make = commands.add_parser("make", help="generate a synthetic dataset file (procedural datasets), or with "
                                            "--from lay out a downloaded archive (cars3d)")
    make.add_argument("name", metavar="NAME", help="the dataset to generate (dsprites and its variants) or, with "
                                                   f"--from, to lay out (cars3d); one of: {names}")
    make.add_argument("--from", dest="archive", type=Path, metavar="ARCHIVE",
                      help="a hand-downloaded archive to check (md5) and extract into the expected layout")
    make.add_argument("--force", action="store_true", help="regenerate an existing synthetic file (or replace "
                                                           "an unusable one)")
    make.add_argument("--compress", action="store_true",
                      help="deflate the file (small on disk, slower to load) instead of storing it")
    make.add_argument("--keep", action="append", default=[], metavar="FACTOR=INDICES",
                      help="write a reduced grid: keep only these class indices of FACTOR, "
                           "as a comma list (0,5,10) or a range start:stop[:step]; repeatable")
    add_progress_flag(make)
    for name, text, what in (("verify", "check a dataset file (format, and the md5 of a real file)", "to check"),
                             ("info", "factors, sizes, path and source of a dataset file", "to describe"),
                             ("download", "fetch the real dataset file", "to fetch")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name", metavar="NAME", help=f"the dataset {what}; one of: {names}")
        if name == "download":
            add_progress_flag(sub)
    for name, sub in commands.choices.items():
        if name != "list":
            sub.add_argument("--path", type=path,
                             help=f"the dataset's file, or for {folders} its folder of files (default: its "
                                  f"place in the data root)")
    return parser


def _path_is_folder(cls):
    """Whether a dataset's path names a folder of files (cars3d, ...) rather than one file."""
    return getattr(cls, "path_is_folder", False)


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
                if stop is None or step == 0:
                    raise ValueError
                span = range(start or 0, stop, 1 if step is None else step)
                _check_count(item, span)
                indices = list(span)
                if not indices:  # a reversed range, whose "no class indices kept" had not said why
                    low, high = sorted((span.start, stop))
                    raise UserError(f"bad --keep {item!r}: the range keeps no index (start:stop[:step] runs from "
                                    f"start towards stop, without it); e.g. {factor}={low}:{high + 1}")
            else:
                indices = [int(p) for p in spec.split(",")]
                _check_count(item, indices)
                repeated = sorted({index for index in indices if indices.count(index) > 1})
                if repeated:  # merged without a word, a typo (0,0,1 for 0,1,2?) had gone unnoticed
                    raise UserError(f"bad --keep {item!r}: {', '.join(map(str, repeated))} given more than once; "
                                    f"give each index once")
        except ValueError:
            raise UserError(f"bad --keep {item!r}: indices must be integers, a comma list or start:stop[:step] "
                            f"(step not 0)") from None
        if factor in result:
            raise UserError(f"--keep given twice for factor {factor!r}")
        result[factor] = indices
    return result


# far more classes than a factor has (dSprites' largest has 40): a range beyond it is a mistake,
# which would take minutes and gigabytes to list before the dataset refused it
MOST_INDICES = 100_000


def _check_count(item, indices):
    """Refuse a list or range with more indices, or larger ones, than any factor has classes."""
    count = indices.stop - indices.start if isinstance(indices, range) else len(indices)  # len() overflows
    largest = max(abs(indices.start), abs(indices.stop)) if isinstance(indices, range) else \
        max(map(abs, indices), default=0)
    if abs(count) > MOST_INDICES or largest > MOST_INDICES:
        raise UserError(f"bad --keep {item!r}: indices far beyond any factor's classes (a factor has at most a "
                        f"few dozen; `{PROG} info NAME` lists them)")


def _method(cls, name):
    """The dataset class's dlb_data method `name`, or None when it has none."""
    return getattr(cls, name, None)


def _needs(cls, method, command):
    found = _method(cls, method)
    if found is None:
        raise UserError(f"dataset {cls.name!r} does not support `{PROG} {command}`{_how_to_get(cls)}")
    return found


def _how_to_get(cls, path=None):
    """'; run `dlb_data ...`' for a dataset's file: make where it can be generated, else download;
    for the --path the user gave, if any."""
    name = cls.name
    where = f" --path {shell_word(path)}" if path is not None else ""
    if _method(cls, "make") is not None and _method(cls, "download") is not None:
        return f"; run `{PROG} make {name}{where}` (synthetic) or `{PROG} download {name}{where}`"
    if _method(cls, "make") is not None:
        return f"; run `{PROG} make {name}{where}`"
    if _method(cls, "download") is not None:
        return f"; run `{PROG} download {name}{where}`"
    return ""


def _checked_path(cls, args, writing=False):
    """args.path (None when --path was not given), checked up front so that a wrong one gets one
    line before any work: it must be able to name this dataset's file (or folder of files) and,
    for writing, lie where files can be written. Without it, the dataset's place in the data root
    must not be taken by a file."""
    path = args.path
    if path is None:
        refuse_a_file_in_its_place(cls)
        return None
    if cls.default_path() is None:
        raise UserError(f"{cls.name} is generated in memory on use and has no file; drop --path {shell_word(path)}")
    problem = _path_shape_problem(cls, path, args.path_names_folder)
    if problem is not None:
        raise problem
    if writing:
        try:
            files.check_can_write(path)
        except OSError as err:
            raise _write_error(err, path, path_given=True) from None
    return path


def _path_shape_problem(cls, path, names_folder=False):
    """The UserError for a --path that cannot be this dataset's file (or folder of files), else None;
    names_folder: the path was given with a trailing slash (which Path drops)."""
    through = file_above(path)
    if through is not None:
        return files.file_problem(path, f"--path goes through {through}, which is a file, not a folder",
                                  "give a path inside a folder")
    default_name = cls.default_path().name
    if _path_is_folder(cls):
        if path.exists() and not path.is_dir():
            return files.file_problem(path, f"--path is a file, but {cls.name} is a folder of files",
                                      f"give the folder that holds them (or is to hold them), e.g. "
                                      f"--path {shell_word(path.parent / default_name)}")
    elif path.is_dir() or names_folder:
        return files.file_problem(path, "--path is a folder" if path.is_dir() else "--path ends with a slash, a folder's",
                                  f"give the {cls.name} file itself, e.g. --path {shell_word(path / default_name)}")
    elif path.exists() and not path.is_file():
        return files.file_problem(path, "--path is not a regular file", f"give the {cls.name} file itself")
    return None


def _write_error(err, path, path_given):
    """The UserError for a filesystem fault while writing a dataset's file at path: what failed,
    and a fix the user controls: the --path they gave, else $DLBENCH_DATA."""
    full = err.errno in (errno.ENOSPC, errno.EDQUOT)
    if path_given:
        fix = ("free some space, or give a --path on another disk" if full
               else "give a --path in a folder you can write to")
    else:
        fix = ("free some space, or set DLBENCH_DATA to a folder on another disk" if full
               else "set DLBENCH_DATA to a writable folder") + f" (now {data_root()})"
    blocker = file_in_the_way(err)
    if blocker:
        at = f": {blocker} is a file, not a folder"
    else:
        at = f" at {err.filename}" if err.filename and Path(err.filename) != Path(path) else ""
    return UserError(f"cannot write {path} ({err.strerror or files.one_line(err)}{at}); {fix}")


def _file_of(cls, path_arg=None):
    """(path, status) of a dataset's file; path is None for datasets generated in memory."""
    path = path_arg or cls.default_path()
    return path, cls.file_status(path)


def _describe_quietly(cls, path):
    """describe()'s dict, or {} when it needs a file that is missing or unusable."""
    try:
        return cls.describe(path)
    except UserError:
        return {}


def _factors_text(cls, info):
    """'shape 3, scale 6, ...' from a describe() dict (the file's own grid), else from the
    class (the published grid, marked so), else the factor names alone."""
    if "factors" in info:  # e.g. continuous sources
        return str(info["factors"])
    names = info.get("factor_names") or list(getattr(cls, "factor_names", []))
    sizes, note = info.get("factors_num_values"), ""
    if sizes is None and isinstance(getattr(cls, "factors_num_values", None), (list, tuple)):
        sizes, note = cls.factors_num_values or None, " (published)"
    if sizes is None or len(sizes) != len(names):
        return ", ".join(names) + " (counts need the file)"
    return ", ".join(f"{n} {k}" for n, k in zip(names, sizes)) + note


def cmd_list(args):
    check_data_root(writing=False)  # a file there had shown every dataset missing, and not why
    rows = []
    for name in available_datasets():
        cls = get_dataset_class(name)
        path, status = _file_of(cls)
        info = _describe_quietly(cls, path) if status not in ("missing", "corrupt") else {}
        where = str(path) if path is not None else "(no file: generated in memory)"
        blocker = file_above(path) if status == "missing" and path is not None else None
        link = broken_link(path) if status == "missing" and path is not None else None
        if blocker:  # "missing" had sent the user to make or download it, which the file stops too
            status, where = "blocked", f"{where} ({blocker} is a file in the way: move or remove it)"
        elif link:
            linked = "a link" if link[0] == path else f"{link[0]} is a link"
            status, where = "broken link", f"{where} ({linked} to {link[1]}, which does not exist)"
        rows.append((name, status, f"{info['num_images']:,}" if "num_images" in info else "-",
                     _factors_text(cls, info), where))
    widths = [max(len(r[i]) for r in rows + [("NAME", "STATUS", "OBSERVATIONS", "FACTORS", "")])
              for i in range(4)]
    print(f"data root: {data_root()} ($DLBENCH_DATA); disentanglement_lib's layout is also read from "
          f"${files.DISENTANGLEMENT_LIB_ENV} ({os.environ.get(files.DISENTANGLEMENT_LIB_ENV) or 'not set'})")
    for row in [("NAME", "STATUS", "OBSERVATIONS", "FACTORS", "WHERE IT LOOKS")] + rows:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


def cmd_make(args):
    cls = get_dataset_class(args.name)
    if cls.default_path() is None:
        raise UserError(f"{args.name} is generated in memory on use; there is no file to make")
    if args.archive is not None:
        return _make_from_archive(cls, args)
    make = _method(cls, "make")
    if make is None:
        from_archive = (f", or `{PROG} make {args.name} --from ARCHIVE` for a hand-downloaded archive"
                        if _method(cls, "convert") is not None else "")
        raise UserError(f"{args.name} cannot be generated here{_how_to_get(cls, args.path)}{from_archive}")
    keep = parse_keep(args.keep)
    path = _checked_path(cls, args, writing=True) or cls.default_path()
    start = time.time()
    try:
        written = make(path, class_indices=keep or None, force=args.force, progress=show_progress(args),
                       compress=args.compress)
    except OSError as err:
        raise _write_error(err, path, path_given=args.path is not None) from None
    info = cls.describe(written)
    print(f"wrote a SYNTHETIC {args.name} file ({info['num_images']} images, {info['grid']} grid, "
          f"{info['file_bytes'] / 1e6:.1f} MB) to {written} in {time.time() - start:.1f} s")
    return 0


def _make_from_archive(cls, args):
    convert = _method(cls, "convert")
    if convert is None:
        raise UserError(f"{args.name} has no archive to convert: its published files are read as they are; "
                        f"place them where `{PROG} info {args.name}` says{_how_to_get(cls)}")
    ignored = [flag for flag, given in (("--keep", args.keep), ("--force", args.force),
                                        ("--compress", args.compress)) if given]
    if ignored:  # they shape a generated file; an archive is extracted as published
        raise UserError(f"{', '.join(ignored)} apply to generating a file, not to extracting --from {args.archive}; "
                        f"drop {'them' if len(ignored) > 1 else 'it'}")
    path = _checked_path(cls, args, writing=True)
    try:
        written = convert(args.archive, path)
    except OSError as err:
        raise _write_error(err, path or cls.default_path(), path_given=path is not None) from None
    print(f"extracted {args.archive} into {written}; `{PROG} verify {args.name}` checks every file")
    return 0


def cmd_verify(args):
    """Prints one OK line, or raises one UserError line (exit code 2) for a missing or bad file."""
    cls = get_dataset_class(args.name)
    path, _ = _file_of(cls, _checked_path(cls, args))
    if path is None:
        print(f"{args.name}: OK, generated in memory on use (no file to check)")
        return 0
    report = _needs(cls, "verify_file", "verify")(path)
    status = report["status"]
    if status == "missing":
        raise UserError(f"{args.name}: no file at {path}{_how_to_get(cls, args.path) or '; place the file there'}")
    if status == "corrupt":
        problems = "; ".join(" ".join(p.split()) for p in report["problems"]) or "unusable"
        where = "" if str(path) in problems else f"{path}: "
        get = _how_to_get(cls, args.path) or ", and place a good copy there"
        if args.path is not None and report.get("source") != "synthetic":
            # a file given by hand may be another dataset's, good as that: "delete it" had been said of a
            # dSprites file verified as shapes3d, and the way to get the file had left out its --path. One that
            # dlbench made is known to be this dataset's: its own line gives the command that makes it again
            what = problems.split("; delete ")[0]  # the dataset's own fix ("delete it and ...", "delete PATH and ...")
            raise UserError(f"{args.name}: {where}{what}; check that --path names a {args.name} file (one of another "
                            f"dataset is unusable as one); if it does, it is damaged: delete it{get}")
        # the checks of the file's contents say what is wrong, not what to do (those of its format do)
        fix = "" if "`" in problems else f"; delete it{get}"
        raise UserError(f"{args.name}: {where}{problems}{fix}")
    if status == "synthetic":
        detail = (f"procedurally generated by dlbench; a sample of {report.get('checked_render_sample', 0)} "
                  f"images matches the renderer")
    elif "checksum" in report:
        detail = report["checksum"]
    elif "md5" in report:  # dsprites: a real file is only 'real' when its md5 is the published one
        detail = f"md5 {report['md5']} matches the published file"
    else:
        detail = "no published checksum to compare with"
    print(f"{args.name}: OK, {status} ({detail}); {path}")
    return 0


def cmd_info(args):
    """describe()'s fields; for a missing or unusable file, what is known without it. An unusable
    file (not a missing one, which info describes as not there yet) then exits 2 with its one line,
    as verify does: a script that asks info had taken a corrupt file for a good one."""
    cls = get_dataset_class(args.name)
    path, status = _file_of(cls, _checked_path(cls, args))
    describe = _needs(cls, "describe", "info")
    try:
        info, unusable = describe(path), None
    except UserError as err:
        info, unusable = _info_without_the_file(cls, args, path, status, err), err
    for key, value in info.items():
        print(f"{key}: {value}")
    if unusable is not None and status != "missing":
        raise UserError(f"{args.name}: {unusable}")
    return 0


def _info_without_the_file(cls, args, path, status, err):
    """What info can say of a dataset whose file describe() could not read: for a missing file the
    problem and how to get it; an unusable one's problem is the command's error line instead."""
    info = {"name": args.name, "status": status, "path": str(path), "factors": _factors_text(cls, {})}
    if status == "missing":
        info["problem"] = str(err)
        how = _how_to_get(cls, args.path)
        if how:
            info["get it"] = how[len("; "):]
    return info


def cmd_download(args):
    cls = get_dataset_class(args.name)
    if cls.default_path() is None:
        raise UserError(f"{args.name} is generated in memory on use; there is nothing to download")
    download = _needs(cls, "download", "download")
    path = _checked_path(cls, args, writing=True)
    try:
        # path None: the dataset's own place (it may keep a copy found elsewhere)
        written = download(path, progress=show_progress(args))
    except OSError as err:
        raise _write_error(err, path or cls.default_path(), path_given=path is not None) from None
    print(f"{args.name}: real file in place at {written}")
    return 0


COMMANDS = {"list": cmd_list, "make": cmd_make, "verify": cmd_verify, "info": cmd_info, "download": cmd_download}


def _body(argv):
    args = _parser().parse_args(argv)
    text = getattr(args, "path", None)
    args.path = None if text is None else Path(text)
    args.path_names_folder = text is not None and text.endswith(("/", os.sep))
    return COMMANDS[args.command](args)


def main(argv=None):
    return run_main(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
