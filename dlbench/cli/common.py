"""What every command shares: the user-error convention and the argument parser."""

import argparse
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

from dlbench.errors import (STANDARD_OUTPUT, Interrupted, OutOfDeviceMemory, StopSignal, UserError, describe_os_error,
                            interrupt_signal)
from dlbench.signals import STOPS, after_imports, finished, handling

USER_ERROR_EXIT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit status 2."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._values_attached(args), namespace)

    def _values_attached(self, args):
        """args with `--shard -1/2` written `--shard=-1/2` (`--sha -1/2` `--sha=-1/2`): argparse reads a value that
        starts with '-' and is not a plain number as a flag, and says only 'expected one argument', where the
        option's own check names the mistake and its fix."""
        attached = []
        for index, arg in enumerate(args):
            if arg == "--":  # what follows is positional, whatever it looks like
                return attached + args[index:]
            if attached and self._takes_one_value(attached[-1]) and re.match(r"-\d", arg):
                attached[-1] = f"{attached[-1]}={arg}"
            else:
                attached.append(arg)
        return attached

    def _takes_one_value(self, arg):
        action = self._flag_action(arg)
        return action is not None and action.nargs is None

    def _flag_action(self, arg):
        """The action of flag arg, written whole or, as argparse takes it, as the start of one long
        flag alone (`--sha` of `--shard`); None for anything else (an ambiguous start is argparse's to refuse)."""
        if arg in self._option_string_actions:
            return self._option_string_actions[arg]
        if not (self.allow_abbrev and arg.startswith("--")):
            return None
        actions = {id(action): action for flag, action in self._option_string_actions.items() if flag.startswith(arg)}
        return next(iter(actions.values())) if len(actions) == 1 else None

    def _print_message(self, message, file=None):
        # argparse's own drops a failed write: --help into a full disk had exited 0 with nothing written
        if message:
            (file or sys.stderr).write(message)


def path(text):
    """An argparse type for a path: an empty one is a mistake (Path('') is the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a path (. for this folder)")
    return text


def check_scratch(command, scratch):
    """A --scratch folder must exist: benchmarks write and delete their files inside it."""
    if scratch is not None and not Path(scratch).is_dir():
        what = "a file" if Path(scratch).is_file() else "not an existing folder"
        raise UserError(f"{command}: --scratch '{scratch}' is {what}; give an existing folder or leave --scratch out "
                        f"(the system's temporary folder)")


def add_progress_flag(parser):
    parser.add_argument("--no_progress", action="store_true",
                        help="hide the progress bar (shown only where standard error is a terminal)")


def show_progress(args):
    """Whether to draw a progress bar: not with --no_progress, and not into a file or a pipe, where
    each redraw of the bar is one more line of a log."""
    return not args.no_progress and sys.stderr.isatty()


def make_parser(prog, description):
    return _Parser(prog=prog, description=description)


def run_main(prog, body, argv=None):
    """Run body(argv); a UserError becomes one line on stderr and exit status 2."""
    try:
        # Ctrl-C raises KeyboardInterrupt again (the bin scripts quit at once while they import)
        with _stopping_on_signals(), handling([signal.SIGINT], after_imports(signal.default_int_handler)), \
                _naming_standard_output():
            try:
                return _output_flushed(body, sys.argv[1:] if argv is None else argv)
            finally:
                finished()
    except (UserError, OutOfDeviceMemory) as err:
        print(f"{prog}: error: {_one_line(str(err))}", file=sys.stderr)
        return USER_ERROR_EXIT
    except BrokenPipeError:  # the reader of our output left (`| head`): nothing is wrong, stop quietly
        _discard_pending_output()
        return 128 + signal.SIGPIPE  # what a shell shows for a writer the closed pipe ended
    except OSError as err:  # a filesystem fault (full disk, read-only folder, a path under a file)
        print(f"{prog}: error: {_one_line(describe_os_error(err))}", file=sys.stderr)
        if err.filename == STANDARD_OUTPUT:
            _discard_pending_output()
        return USER_ERROR_EXIT
    except Interrupted as err:
        print(f"{prog}: {_one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not _host_out_of_memory(err):
            raise
        print(f"{prog}: error: out of this machine's memory ({_one_line(str(err)) or 'MemoryError'}); ask for less: "
              f"{_LESS_MEMORY.get(prog, _LESS_MEMORY[None])}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt as err:  # Ctrl-C, or a signal _stopping_on_signals turned into one
        signum = interrupt_signal(err)
        print(f"{prog}: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum


# what a command can ask less memory of: dlb_evaluate's had been named training's settings, none its own
_LESS_MEMORY = {
    "dlb_evaluate": "a metric's num_train, num_points, num_samples or num_bins, or its batch_size (each by "
                    "--metric_param METRIC.NAME=VALUE)",
    None: "train.batch_size, --stack, --workers, a smaller model (model.latent_dim, a method's network width), a "
          "metric's num_train or num_points",
}


def _output_flushed(body, args):
    """body(args) or 0, once what it printed has reached standard output: a full disk behind
    `> file` is said here, in one line, rather than at the exit or not at all."""
    try:
        code = body(args) or 0
    except SystemExit:  # argparse's --help: the text must reach the output too
        sys.stdout.flush()
        raise
    sys.stdout.flush()
    return code


class _NamedOutput:
    """sys.stdout whose write faults name it (an OSError from a print has no file name)."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def write(self, text):
        with _naming_faults():
            return self._stream.write(text)

    def flush(self):
        with _naming_faults():
            return self._stream.flush()


@contextlib.contextmanager
def _naming_faults():
    try:
        yield
    except BrokenPipeError:  # the reader left: run_main stops quietly
        raise
    except OSError as err:
        raise OSError(err.errno, err.strerror, STANDARD_OUTPUT) from None


@contextlib.contextmanager
def _naming_standard_output():
    stream = sys.stdout
    sys.stdout = _NamedOutput(stream)
    try:
        yield
    finally:
        sys.stdout = stream


def _discard_pending_output():
    """What standard output still holds would fail again at the exit's flush (Python then adds its
    own message and exits 120): it goes nowhere instead."""
    with contextlib.suppress(OSError, ValueError):  # (io.UnsupportedOperation, for a stream without a file, is both)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _host_out_of_memory(err):
    """torch's CPU allocator says so with a RuntimeError (numpy's is a MemoryError)."""
    return "DefaultCPUAllocator: can't allocate memory" in str(err)


def _stopping_on_signals():
    """While a command works, SIGTERM and SIGHUP stop it as Ctrl-C does (by default they would end
    the process at once, leaving its claims and temporary files behind). Training installs its own
    handlers over these: it stops at the end of the step, with a checkpoint."""
    def stop(signum, frame):
        for each in STOPS:  # one stop: a repeat (a scheduler signals again) must not cut the cleanup short
            signal.signal(each, signal.SIG_IGN)
        raise StopSignal(signum)

    return handling(STOPS, after_imports(stop))


def _one_line(text):
    """Messages are one line whatever they quote (a path or a library's message may hold newlines)."""
    return " ".join(text.split("\n")).strip()
