"""--only: a slice of a study's runs, chosen by glob patterns on their names.

A run's name is its directory under the runs root, e.g. beta_vae/beta=1.0/seed=3, the same for
dlb_study (before any run exists) and for dlb_aggregate and dlb_report (from the directories), so
one pattern picks the same slice at every stage. '*' also crosses '/': isa_vae/*beta=1.0/* matches
isa_vae/prior=lp_nested_isa,beta=1.0/seed=0. A pattern ending in '/' names a folder, as shell completion
writes one: the run of that name, or the runs below it (beta_vae/beta=1.0/ is beta_vae/beta=1.0/*).
"""

import argparse
from fnmatch import fnmatchcase

from dlbench.errors import UserError


def matching(names, patterns, where):
    """The names matching at least one of patterns (every name when patterns is empty or None), in
    their order. A pattern that matches none of them is refused: it is a typo or a slice of another
    study, and a slice silently missing a part would be reported as if whole. where says what the
    names are, for that message, e.g. "the study's 1280 runs"."""
    names = list(names)
    if not patterns:
        return names
    for pattern in patterns:
        if not any(_matches(name, pattern) for name in names):
            example = f", e.g. {names[0]}" if names else ""
            raise UserError(f"--only {pattern!r} matches none of {where}{example}; '*' stands for any text, "
                            f"including '/'")
    return picked(names, patterns)


def picked(names, patterns):
    """The names matching at least one of patterns (every name for none), in their order; a
    pattern matching nothing is no mistake here."""
    return [name for name in names if not patterns or any(_matches(name, pattern) for pattern in patterns)]


def _matches(name, pattern):
    if pattern.endswith("/"):  # a folder: a run's own, or one holding runs (a setting's seeds)
        return fnmatchcase(name, pattern[:-1]) or fnmatchcase(name, pattern + "*")
    return fnmatchcase(name, pattern)


def only_pattern(text):
    """An argparse type for an --only pattern. Shell completion may end a folder's name with several
    '/': one is kept, which says a folder is meant."""
    pattern = text.rstrip("/")
    if not pattern:
        raise argparse.ArgumentTypeError(f"{text!r} is no run name pattern; give one such as beta_vae/beta=1.0/*")
    return pattern + "/" if text.endswith("/") else pattern


def add_only_argument(parser):
    parser.add_argument("--only", action="append", type=only_pattern, metavar="PATTERN",
                        help="only the runs whose name (their directory under the runs root, e.g. "
                             "beta_vae/beta=1.0/seed=3) matches the glob PATTERN ('*' also crosses '/'; "
                             "a folder ending in '/' takes the runs below it); "
                             "repeat for several (a run matching any is taken)")
