"""dlb_data's user mistakes and filesystem faults, through the installed command: one line on
stderr naming the problem and the fix, exit status 2, no traceback, and the disk as it was; a
successful `make` leaves its file and nothing else (no lock file)."""

import os
import subprocess
import sys
import threading
import time

import pytest

from dlbench.data import available_datasets, files
from dlbench.data import cars3d as C
from dlbench.data import dsprites as D
from dlbench.errors import UserError
from tests.commands import REPO, assert_one_line_error, run_command, tree
from tests.conftest import TINY_GRID

KEEP = [arg for factor, indices in TINY_GRID.items()
        for arg in ("--keep", f"{factor}={','.join(map(str, indices))}")]
COMMANDS = ("verify", "info", "make", "download")


def dlb_data(*args, data_root, fault=None):
    return run_command("dlb_data", *args, data_root=data_root, fault=fault)


def lock_of(path):
    """The lock file dSprites generation holds beside its file."""
    return path.parent / ("." + path.name + ".lock")


@pytest.fixture
def place(tmp_path):
    """A scratch folder holding an empty data root, a folder and a file; the tests compare its
    tree before and after each command."""
    (tmp_path / "root").mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path


# --- 1. --path that cannot be the dataset's file ---------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_path_at_a_folder_where_a_file_is_expected(place, command):
    before = tree(place)
    folder = place / "folder"
    line = assert_one_line_error(dlb_data(command, "dsprites", "--path", folder, data_root=place / "root"),
                                 str(folder), "--path is a folder", f"e.g. --path {folder / D.FILENAME}")
    assert "DLBENCH_DATA" not in line
    assert tree(place) == before


@pytest.mark.parametrize("command", ["make", "download"])
def test_a_path_with_a_trailing_slash_names_a_folder_not_a_file(place, command):
    """`--path new/` had made (or downloaded) the dataset into a file called 'new'."""
    before = tree(place)
    line = assert_one_line_error(dlb_data(command, "dsprites", "--path", f"{place / 'new'}/", data_root=place / "root"),
                                 str(place / "new"), "ends with a slash", f"e.g. --path {place / 'new' / D.FILENAME}")
    assert "DLBENCH_DATA" not in line
    assert tree(place) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_path_under_an_existing_file(place, command):
    before = tree(place)
    assert_one_line_error(dlb_data(command, "dsprites", "--path", place / "afile" / "x.npz", data_root=place / "root"),
                          str(place / "afile" / "x.npz"), f"goes through {place / 'afile'}, which is a file")
    assert tree(place) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_data_root_under_a_file_names_that_file(place, command):
    before = tree(place)
    root = place / "afile" / "root"
    line = assert_one_line_error(dlb_data(command, "dsprites", data_root=root),
                                 f"the data folder '{root}' (DLBENCH_DATA) is under a file, '{place / 'afile'}'",
                                 "set DLBENCH_DATA to a folder")
    assert f"at {root}" not in line  # the system's error names the path asked for, which is not at fault
    assert tree(place) == before


# (dataset, the command's arguments after it); fashion_mnist's folder is its path itself, and it has nothing to make
IN_THE_WAY = [(name, [command] + (["--from", "ARCHIVE"] if name == "cars3d" and command == "make" else []))
              for name in ("dsprites", "cars3d", "fashion_mnist") for command in COMMANDS
              if (name, command) != ("fashion_mnist", "make")]


@pytest.mark.parametrize("name, args", IN_THE_WAY, ids=[f"{args[0]}-{name}" for name, args in IN_THE_WAY])
def test_a_file_where_the_datasets_folder_goes_is_said_to_be_in_the_way(place, name, args):
    # verify and info had called the dataset missing and advised `dlb_data make` (or download), which
    # then failed on the file, advising to set DLBENCH_DATA to a writable folder
    blocker = place / "root" / name
    blocker.write_text("not a folder")
    before = tree(place)
    command, *more = args
    result = dlb_data(command, name, *[place / "afile" if arg == "ARCHIVE" else arg for arg in more],
                      data_root=place / "root")
    line = assert_one_line_error(result, f"{name}: {blocker} is a file where a folder goes", "move or remove it")
    assert "`dlb_data" not in line and "DLBENCH_DATA" not in line
    assert tree(place) == before


@pytest.mark.parametrize("command", ("make", "download"))
def test_writing_under_proc_names_the_path_and_asks_for_another(place, command):
    target = "/proc/dlbench_test/x.npz"
    keep = KEEP if command == "make" else []
    line = assert_one_line_error(dlb_data(command, "dsprites", "--path", target, *keep, data_root=place / "root"),
                                 f"cannot write {target}", "give a --path in a folder you can write to")
    assert "DLBENCH_DATA" not in line and not os.path.exists("/proc/dlbench_test")


def test_reading_under_proc_says_no_file_there_and_how_to_make_one_there(place):
    target = "/proc/dlbench_test/x.npz"
    assert_one_line_error(dlb_data("verify", "dsprites", "--path", target, data_root=place / "root"),
                          f"no file at {target}", f"`dlb_data make dsprites --path {target}`")
    result = dlb_data("info", "dsprites", "--path", target, data_root=place / "root")  # what is known without it
    fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert result.returncode == 0 and fields["status"] == "missing" and fields["path"] == target
    assert f"--path {target}" in fields["get it"]


def test_a_device_is_not_a_dataset_file(place):
    for command in COMMANDS:
        assert_one_line_error(dlb_data(command, "dsprites", "--path", "/dev/null", data_root=place / "root"),
                              "/dev/null", "not a regular file")


@pytest.mark.parametrize("command", ("make", "download"))
def test_writing_into_a_read_only_folder(place, command):
    """A --path in a read-only folder (new or existing subfolder): one line naming the --path
    given, never the advice to set DLBENCH_DATA, and nothing written."""
    before = tree(place)
    for target in (place / "folder" / "x.npz", place / "folder" / "sub" / "x.npz"):
        args = [command, "dsprites", "--path", target] + (KEEP if command == "make" else [])
        line = assert_one_line_error(dlb_data(*args, data_root=place / "root", fault=f"EROFS:{place / 'folder'}*"),
                                     f"cannot write {target}", "Read-only file system", "--path")
        assert "DLBENCH_DATA" not in line
    assert tree(place) == before


def test_a_read_only_data_root_without_path_says_set_dlbench_data(place):
    before = tree(place)
    root = place / "root"
    line = assert_one_line_error(dlb_data("make", "dsprites", *KEEP, data_root=root, fault=f"EROFS:{root}*"),
                                 "Read-only file system", f"set DLBENCH_DATA to a writable folder (now {root})")
    assert "--path" not in line
    assert tree(place) == before


def test_a_full_disk_during_make_leaves_nothing_not_even_the_folders_it_made(place):
    before = tree(place)
    target = place / "folder" / "new" / "deeper" / "x.npz"
    assert_one_line_error(dlb_data("make", "dsprites", "--path", target, *KEEP, data_root=place / "root",
                                   fault="ENOSPC:*.tmp"),
                          f"cannot write {target}", "No space left on device", "free some space")
    assert tree(place) == before
    line = assert_one_line_error(dlb_data("make", "dsprites", *KEEP, data_root=place / "root", fault="ENOSPC:*.tmp"),
                                 "No space left on device", "DLBENCH_DATA")
    assert "--path" not in line and tree(place) == before


# --- folders by design: cars3d, fashion_mnist, smallnorb ---------------------------------------


def test_folder_datasets_take_a_folder_and_refuse_a_file(place):
    assert_one_line_error(dlb_data("verify", "cars3d", "--path", place / "folder", data_root=place / "root"),
                          str(place / "folder"), "holds 0 .mat files")  # read as a folder, not refused as one
    for name in ("cars3d", "fashion_mnist", "smallnorb"):
        for command in ("verify", "info", "download"):
            assert_one_line_error(dlb_data(command, name, "--path", place / "afile", data_root=place / "root"),
                                  str(place / "afile"), f"--path is a file, but {name} is a folder of files")
    archive = place / "folder" / C.ARCHIVE
    archive.write_bytes(b"not checked: the --path is refused first")
    (place / "ro").mkdir()
    before = tree(place)
    assert_one_line_error(dlb_data("make", "cars3d", "--from", archive, "--path", place / "afile",
                                   data_root=place / "root"), "is a file, but cars3d is a folder of files")
    assert_one_line_error(dlb_data("make", "cars3d", "--from", archive, "--path", place / "ro" / "cars",
                                   data_root=place / "root", fault=f"EROFS:{place / 'ro'}*"),
                          f"cannot write {place / 'ro' / 'cars'}", "Read-only file system", "--path")
    assert tree(place) == before


def test_make_from_an_archive_into_a_folder_still_works(tmp_path, monkeypatch, capsys):
    from dlbench.cli.data import main
    from tests.test_data_cars3d import _archive

    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "root"))
    archive = _archive(tmp_path / C.ARCHIVE)
    monkeypatch.setattr(C, "ARCHIVE_MD5", files.file_checksum(archive))  # a miniature archive
    folder = tmp_path / "elsewhere" / "cars"
    assert main(["make", "cars3d", "--from", str(archive), "--path", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["car_001_mesh.mat", "car_002_mesh.mat", "list.txt"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["cars"]  # no temporary folder left
    assert main(["verify", "cars3d", "--path", str(folder)]) == 2  # 2 cars, not 183: read as a folder
    assert "holds 2 .mat files" in capsys.readouterr().err


# --- 2. make --path: the advice is about the --path given ---------------------------------------


def test_make_path_advice_is_about_the_path_not_dlbench_data(place):
    """Every way `make --path` can fail on the disk names the --path; none says DLBENCH_DATA."""
    cases = [(place / "folder", None), (place / "afile" / "x.npz", None), ("/proc/dlbench_test/x.npz", None),
             (place / "folder" / "x.npz", f"EROFS:{place / 'folder'}*"), (place / "folder" / "x.npz", "ENOSPC:*.tmp")]
    for target, fault in cases:
        line = assert_one_line_error(dlb_data("make", "dsprites", "--path", target, *KEEP, data_root=place / "root",
                                              fault=fault), str(target))
        assert "DLBENCH_DATA" not in line and "--path" in line, line


# --- 3. the lock file ---------------------------------------------------------------------------


def test_make_leaves_its_file_and_no_lock(place):
    target = place / "root" / "dsprites" / D.FILENAME
    result = dlb_data("make", "dsprites", *KEEP, data_root=place / "root")
    assert result.returncode == 0, result.stderr
    assert tree(place / "root") == ["dsprites", f"dsprites/{D.FILENAME}"]
    elsewhere = place / "folder" / "tiny.npz"
    assert dlb_data("make", "dsprites", "--path", elsewhere, *KEEP, data_root=place / "root").returncode == 0
    assert tree(place / "folder") == ["tiny.npz"]
    # a refused make (file there, no --force) leaves no lock either
    assert_one_line_error(dlb_data("make", "dsprites", *KEEP, data_root=place / "root"), "--force")
    assert not lock_of(target).exists()


def test_a_make_waits_for_a_generation_in_progress_then_finds_its_file(place):
    """Two generators at once: the second waits for the first's lock, then sees the file and
    writes nothing (without --force it refuses, as for any existing file)."""
    target = place / "root" / "dsprites" / D.FILENAME
    target.parent.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(REPO), "DLBENCH_DATA": str(place / "root")}
    with files.exclusive_lock(lock_of(target)):  # this test is the first generator
        second = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_data"), "make", "dsprites", *KEEP],
                                  env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert second.poll() is None and not target.exists()  # waiting, not writing
        D.generate_npz(target, class_indices=TINY_GRID)
        written = target.read_bytes()
    out, err = second.communicate(timeout=120)
    result = subprocess.CompletedProcess(second.args, second.returncode, out, err)
    assert_one_line_error(result, "a synthetic dSprites file already exists", "--force")
    assert target.read_bytes() == written
    assert tree(place / "root") == ["dsprites", f"dsprites/{D.FILENAME}"]


def test_the_lock_admits_one_holder_at_a_time_though_its_file_is_removed(tmp_path):
    """Each holder removes the lock file on leaving; one that waited on the removed file must not
    enter alongside a newcomer who made a new one (flock conflicts between threads' own opens)."""
    lock = tmp_path / "x.lock"
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def worker():
        try:
            for _ in range(30):
                with files.exclusive_lock(lock):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    time.sleep(0.0005)
                    with guard:
                        inside[0] -= 1
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most[0] == 1
    assert list(tmp_path.iterdir()) == []


def test_generation_on_first_use_leaves_no_lock_and_on_failure_nothing(tmp_path, monkeypatch):
    target = tmp_path / "root" / "dsprites" / D.FILENAME
    render = D.generate_npz
    monkeypatch.setattr(D, "generate_npz", lambda path, progress=False: render(path, class_indices=TINY_GRID))
    assert D.ensure_file(target, progress=False) == target
    assert tree(tmp_path / "root") == ["dsprites", f"dsprites/{D.FILENAME}"]

    def full_disk(path, progress=False):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(D, "generate_npz", full_disk)
    with pytest.raises(UserError, match="No space left on device"):
        D.ensure_file(tmp_path / "other" / "dsprites" / D.FILENAME, progress=False)
    assert not (tmp_path / "other").exists()


# --- 4. help for the positional arguments ---------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_name_has_a_help_text_listing_the_datasets(command):
    result = run_command("dlb_data", command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    text = " ".join(result.stdout.split())  # argparse wraps lines
    positional = text[text.index("positional arguments:"):text.index("options:")]
    assert "NAME the dataset" in positional, positional
    for name in available_datasets():
        assert name in positional, name
    assert "folder of files" in text  # --path says which datasets take a folder


# --- 5. other mistakes ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_dataset(place, command):
    before = tree(place)
    assert_one_line_error(dlb_data(command, "mnist3d", data_root=place / "root"),
                          "unknown dataset 'mnist3d'", "available: " + ", ".join(available_datasets()))
    assert tree(place) == before


@pytest.mark.parametrize("keep, needle", [
    ("size=1", "unknown dSprites factor 'size'"),
    ("posX=32", "class index out of range for dSprites factor 'posX': valid are 0..31"),
    ("scale=-1", "class index out of range"),
    ("posX=0:32:0", "step not 0"),  # was silently read as step 1
    ("posX=5:2", "bad --keep 'posX=5:2': the range keeps no index"),
    ("posX=1,,2", "bad --keep"),
    ("posX", "bad --keep"),
])
def test_bad_keep(place, keep, needle):
    before = tree(place)
    assert_one_line_error(dlb_data("make", "dsprites", "--keep", keep, data_root=place / "root"), needle)
    assert tree(place) == before


@pytest.mark.parametrize("name, needles", [
    ("shapes3d", ("shapes3d cannot be generated here", "dlb_data download shapes3d")),
    ("scream_dsprites", ("cannot be generated here", "dlb_data download scream_dsprites")),
    ("cars3d", ("cannot be generated here", "dlb_data download cars3d", "dlb_data make cars3d --from ARCHIVE")),
    ("pinwheel", ("generated in memory on use; there is no file to make",)),
    ("linear_gaussian", ("generated in memory",)),
])
def test_make_of_a_dataset_that_cannot_be_made(place, name, needles):
    before = tree(place)
    assert_one_line_error(dlb_data("make", name, *KEEP, data_root=place / "root"), *needles)
    assert tree(place) == before


@pytest.mark.parametrize("command", ("verify", "info"))
def test_path_for_a_dataset_generated_in_memory(place, command):
    """--path was silently ignored: there is no file to read."""
    assert_one_line_error(dlb_data(command, "pinwheel", "--path", place / "afile", data_root=place / "root"),
                          "pinwheel is generated in memory on use and has no file", "drop --path")


def test_flags_that_do_not_apply_to_an_archive(place):
    """--keep, --force and --compress were silently ignored by make --from."""
    archive = place / "folder" / C.ARCHIVE
    archive.write_bytes(b"never read")
    before = tree(place)
    assert_one_line_error(dlb_data("make", "cars3d", "--from", archive, "--keep", "scale=0", "--force",
                                   data_root=place / "root"), "--keep, --force apply to generating a file", "drop them")
    assert_one_line_error(dlb_data("make", "cars3d", "--from", archive, "--compress", data_root=place / "root"),
                          "--compress apply to generating a file", "drop it")
    assert tree(place) == before


def test_make_does_not_replace_a_file_that_is_not_dsprites_without_force(place):
    """make --path at some other file silently replaced it with a synthetic dSprites."""
    other = place / "afile"
    assert_one_line_error(dlb_data("make", "dsprites", "--path", other, *KEEP, data_root=place / "root"),
                          str(other), "not a usable dSprites file", "--force")
    assert other.read_text() == "not a folder"
    assert dlb_data("make", "dsprites", "--path", other, "--force", *KEEP, data_root=place / "root").returncode == 0
    assert D.DSpritesFile(other).synthetic and not lock_of(other).exists()


def test_a_dsprites_generated_on_first_use_says_a_file_is_in_its_way(place, monkeypatch):
    # what the dSprites variants meet (scream_dsprites' own file is its image): it had said "cannot write the
    # synthetic dSprites ... (File exists); set DLBENCH_DATA to a writable folder"
    monkeypatch.setenv("DLBENCH_DATA", str(place / "root"))
    (place / "root" / "dsprites").write_text("not a folder")
    with pytest.raises(UserError, match=f"dsprites: {place / 'root' / 'dsprites'} is a file where a folder goes"):
        D.ensure_file()


@pytest.mark.parametrize("name", ["shapes3d", "mpi3d_toy"])
def test_verifying_another_datasets_file_does_not_advise_deleting_it(tiny_data_root, name):
    # "delete it and run `dlb_data download shapes3d`" had been said of a good dSprites file, the
    # download without the --path that was checked
    dsprites_file = tiny_data_root / "dsprites" / D.FILENAME
    before = tree(tiny_data_root)
    line = assert_one_line_error(run_command("dlb_data", "verify", name, "--path", dsprites_file))
    assert f"check that --path names a {name} file (one of another dataset is unusable as one); if it does, " \
           f"it is damaged: delete it; run `dlb_data download {name} --path {dsprites_file}`" in line, line
    assert line.count("delete it") == 1, line
    assert tree(tiny_data_root) == before


def test_verifying_a_file_that_is_no_dsprites_file_gives_its_fix_once(tmp_path):
    # dSprites' own "delete PATH and run ..." had been kept before the --path advice, which gave the
    # same commands again
    junk = tmp_path / "junk.npz"
    junk.write_bytes(bytes(range(256)) * 20)
    line = assert_one_line_error(run_command("dlb_data", "verify", "dsprites", "--path", junk))
    assert "is corrupt (BadZipFile" in line and "check that --path names a dsprites file" in line, line
    assert line.count("dlb_data make dsprites") == 1 and line.count("delete") == 1, line


def test_a_failed_dsprites_download_advises_make_only_where_no_synthetic_file_is(tiny_data_root, tmp_path):
    # with a synthetic file in place it had advised `dlb_data make dsprites`, which refuses to make it again
    unreachable = "http://127.0.0.1:1/dsprites.npz"
    with pytest.raises(UserError, match=r"by hand \(the synthetic one there serves meanwhile\)$"):
        D.DSprites.download(tiny_data_root / "dsprites" / D.FILENAME, url=unreachable, progress=False)
    elsewhere = tmp_path / "my data" / D.FILENAME
    with pytest.raises(UserError) as refused:
        D.DSprites.download(elsewhere, url=unreachable, progress=False)
    assert str(refused.value).endswith(f"or run `dlb_data make dsprites --path '{elsewhere}'` to generate a "
                                       f"synthetic one"), refused.value
    assert not elsewhere.parent.exists()


def test_making_a_dataset_that_cannot_be_made_gives_the_download_for_the_path_given(tmp_path):
    line = assert_one_line_error(run_command("dlb_data", "make", "shapes3d", "--path", tmp_path / "z.h5",
                                             data_root=tmp_path))
    assert f"run `dlb_data download shapes3d --path {tmp_path / 'z.h5'}`" in line, line


def test_a_failed_download_says_how_to_get_every_file_by_hand(tmp_path):
    # Fashion-MNIST's line had named one file of four; Cars3D's had left out make --from, which checks the archive
    from dlbench.data import fashion_mnist

    unreachable = "http://127.0.0.1:1/"
    with pytest.raises(UserError) as refused:
        fashion_mnist.download(tmp_path / "f", url=unreachable, progress=False)
    assert all(f"{name}.gz" in str(refused.value) for name, _ in fashion_mnist.FILES.values()), refused.value
    with pytest.raises(UserError) as refused:
        C.download(tmp_path / "c", url=unreachable + "cars.tgz", progress=False)
    assert f"run `dlb_data make cars3d --from ARCHIVE --path {tmp_path / 'c'}`" in str(refused.value), refused.value


def test_dlb_data_list_shows_a_dataset_blocked_by_a_file_as_such(place):
    # it had been listed "missing", the status whose fix (make or download) the file stops too
    blocker = place / "root" / "shapes3d"
    blocker.write_text("not a folder")
    result = dlb_data("list", data_root=place / "root")
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("shapes3d ")]
    assert row.split()[1] == "blocked" and f"({blocker} is a file in the way: move or remove it)" in row, row
    [other] = [line for line in result.stdout.splitlines() if line.startswith("mpi3d_toy ")]
    assert other.split()[1] == "missing", other


def test_a_broken_link_where_a_dataset_goes_is_said_to_be_one(place):
    # a link to a disk not mounted had been listed "missing", verify said "no file at", and a run
    # directory behind such a link was "a file where a folder goes"
    gone = place / "unmounted" / "dsprites.npz"
    (place / "root" / "dsprites").mkdir()
    link = place / "root" / "dsprites" / D.FILENAME
    link.symlink_to(gone)
    result = dlb_data("list", data_root=place / "root")
    [row] = [line for line in result.stdout.splitlines() if line.startswith("dsprites ")]
    assert row.split()[1:3] == ["broken", "link"] and f"(a link to {gone}, which does not exist)" in row, row
    said = (f"'{link}' is a symbolic link to '{gone}', which does not exist; make it exist (mount it?), or remove "
            f"the link")
    run_dir = place / "run"
    run_dir.symlink_to(place / "unmounted" / "run")
    before = tree(place)
    for command in (("verify", "dsprites"), ("make", "dsprites", "--keep", "scale=0")):
        line = assert_one_line_error(dlb_data(*command, data_root=place / "root"))
        assert line == f"dlb_data: error: dsprites: {said}", line
    line = assert_one_line_error(run_command("dlb_train", "--gin", REPO / "gin" / "linear_gaussian_beta_vae.gin",
                                             "--run_dir", run_dir))
    assert f"'{run_dir}' is a symbolic link to '{place / 'unmounted' / 'run'}', which does not exist" in line, line
    assert tree(place) == before
