"""The repository's files stay small enough to travel to a GPU machine: the device tool copies the
working tree there only up to 64 MiB (tracked and untracked files it does not ignore), and the
GPU checks carry a wheel or two beside it. Committed reports are where the size grows."""

import subprocess

from tests.commands import REPO

LIMIT_MIB = 48  # of the device's 64, leaving room for carried wheels and a session's new files
SKIPPED = {".git", "runs", "__pycache__", ".pytest_cache", ".whl"}


def repository_files():
    """The files a checkout holds: git's tracked and untracked-but-not-ignored files, or, outside a
    git checkout, every file but those of the folders runs and caches write into."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, check=True).stdout.decode().split("\0")
        return [REPO / name for name in listed if name and (REPO / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in REPO.rglob("*") if p.is_file() and not SKIPPED & set(p.relative_to(REPO).parts)]


def test_the_working_tree_fits_what_travels_to_a_gpu_machine():
    files = repository_files()
    total = sum(path.stat().st_size for path in files)
    largest = sorted(files, key=lambda p: p.stat().st_size)[-3:]
    assert total < LIMIT_MIB * 2**20, (f"{total / 2**20:.1f} MiB; the largest files: "
                                       + ", ".join(str(p.relative_to(REPO)) for p in largest))
