"""Driving the installed commands as a user does: each in its own process, optionally with a
filesystem fault injected (tests/faults.py), and the checks every mistake must pass."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child_environment(**settings):
    """os.environ with this checkout first on PYTHONPATH (what was there kept after it: on the GPU
    machine bin/dlb_gpu_check puts gin-config there) and the given variables set."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **settings}


def run_command(name, *args, data_root=None, fault=None, cwd=None, timeout=300, env=None, terminal=False):
    """Run bin/<name> with args in a fresh Python; returns the CompletedProcess (text output).
    `fault` is a spec for tests/faults.py, e.g. 'ENOSPC:*/checkpoints/*'. `terminal`: its standard
    error is a terminal (a pseudo-terminal), where progress bars are drawn, rather than a pipe."""
    command = [sys.executable]
    if fault:
        command += [str(REPO / "tests" / "faults.py"), fault]
    command += [str(REPO / "bin" / name), *map(str, args)]
    environment = child_environment(OMP_NUM_THREADS="1", **(env or {}))
    if data_root is not None:
        environment["DLBENCH_DATA"] = str(data_root)
    if terminal:
        return _with_stderr_on_a_terminal(command, cwd=cwd, env=environment, timeout=timeout)
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _with_stderr_on_a_terminal(command, **options):
    import fcntl
    import pty
    import struct
    import termios
    import threading

    reader, writer = pty.openpty()
    # a terminal of no size gets tqdm's bar-less line: give it an ordinary one
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    chunks = []

    def read():  # as it comes: a full pseudo-terminal would block the command
        while True:
            try:
                chunk = os.read(reader, 1 << 16)
            except OSError:  # EIO: every writer closed it
                return
            if not chunk:
                return
            chunks.append(chunk)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=writer, text=True,
                                stdin=subprocess.DEVNULL, **options)
    finally:
        os.close(writer)
        thread.join(timeout=10)
        os.close(reader)
    # the terminal writes each newline as \r\n
    result.stderr = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return result


def run_in_process(name, *args, data_root=None, cwd=None):
    """run_command's result for a command refused before it does any work (a mistake said in one
    line): its main() called in this process, which spares the seconds a fresh Python spends
    importing torch. The process-level parts (the bin script, signals, faults) need run_command."""
    import contextlib
    import importlib
    import io

    main = importlib.import_module(f"dlbench.cli.{name.removeprefix('dlb_')}").main
    stdout, stderr = io.StringIO(), io.StringIO()
    previous_root, previous_cwd = os.environ.get("DLBENCH_DATA"), os.getcwd()
    try:
        if data_root is not None:
            os.environ["DLBENCH_DATA"] = str(data_root)
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main([str(arg) for arg in args])
            except SystemExit as ended:  # argparse's own refusals
                code = ended.code
    finally:
        os.chdir(previous_cwd)
        if previous_root is None:
            os.environ.pop("DLBENCH_DATA", None)
        else:
            os.environ["DLBENCH_DATA"] = previous_root
    return subprocess.CompletedProcess([name, *map(str, args)], code, stdout.getvalue(), stderr.getvalue())


def run_reproduction(folder, out, data_root=None, cwd=None):
    """`run.sh --smoke OUT` of a reproduction (reports/reproductions/<name>/), with this checkout's
    commands first on PATH; the completed process, its return code checked."""
    env = child_environment(PATH=f"{REPO / 'bin'}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    if data_root is not None:
        env["DLBENCH_DATA"] = str(data_root)
    result = subprocess.run(["bash", str(Path(folder) / "run.sh"), "--smoke", str(out)], capture_output=True,
                            text=True, env=env, cwd=cwd, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def assert_one_line_error(result, *needles, code=2):
    """Exit `code`, exactly one non-empty line on stderr, no traceback, each needle in that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tree(path):
    """Every file and folder under path, relative, sorted: the disk state before and after."""
    path = Path(path)
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else None
