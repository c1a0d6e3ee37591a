"""--only: a slice of a study's runs, chosen by glob patterns on their names.

A run's name is its directory under the runs root, e.g. beta_vae/beta=1.0/seed=3, the same for
dlb_study (before any run exists) and for dlb_aggregate and dlb_report (from the directories), so
one pattern picks the same slice at every stage. '*' also crosses '/': isa_vae/*beta=1.0/* matches
isa_vae/prior=lp_nested_isa,beta=1.0/seed=0.
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
        if not any(fnmatchcase(name, pattern) for name in names):
            example = f", e.g. {names[0]}" if names else ""
            raise UserError(f"--only {pattern!r} matches none of {where}{example}; '*' stands for any text, "
                            f"including '/'")
    return picked(names, patterns)


def picked(names, patterns):
    """The names matching at least one of patterns (every name for none), in their order; a
    pattern matching nothing is no mistake here."""
    return [name for name in names if not patterns or any(fnmatchcase(name, pattern) for pattern in patterns)]


def only_pattern(text):
    """An argparse type for an --only pattern. A run's name has no trailing '/', which shell
    completion of its directory adds: it is dropped rather than making the pattern match nothing."""
    pattern = text.rstrip("/")
    if not pattern:
        raise argparse.ArgumentTypeError(f"{text!r} is no run name pattern; give one such as beta_vae/beta=1.0/*")
    return pattern


def add_only_argument(parser):
    parser.add_argument("--only", action="append", type=only_pattern, metavar="PATTERN",
                        help="only the runs whose name (their directory under the runs root, e.g. "
                             "beta_vae/beta=1.0/seed=3) matches the glob PATTERN ('*' also crosses '/'); "
                             "repeat for several (a run matching any is taken)")
