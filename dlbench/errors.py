"""Exceptions shared by every layer.

A UserError is a mistake the user can fix (bad flag, missing file, unknown name). The
command-line front ends print its message as one line and exit with status 2, without a
traceback. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem in the user's input; the message names the problem and the fix."""
