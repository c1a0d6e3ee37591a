"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT licence): the published idx files and the dataset.

Four files (https://github.com/zalandoresearch/fashion-mnist), gzip-compressed as published or
decompressed (the same name without .gz); both are read:
  train-images-idx3-ubyte  60,000 images    t10k-images-idx3-ubyte  10,000 images
  train-labels-idx1-ubyte  60,000 labels    t10k-labels-idx1-ubyte  10,000 labels
idx format (big-endian): a 4-byte magic 0x00000803 for the uint8 images (3 dimensions) or
0x00000801 for the uint8 labels (1 dimension), then each dimension as a uint32 (N, 28, 28 or
N), then the values, row 0 of an image at the top.

As in Mathieu et al. (2019, Appendix: 70,000 greyscale images resized to 32x32), training and
test sets are used together (training first) and every image is resized to 32x32 the way the
authors' code does it: torchvision's Resize((32, 32)) on the PIL image, i.e. PIL's bilinear
resampling; so the pixels are those the authors trained on. Held once as uint8 (70000, 1, 32, 32).
The class (10 values) is the only known factor; with 7,000 images per class it is not a full grid,
so an observation for a class is one of that class's images drawn with the caller's random_state.

Files: $DLBENCH_DATA/fashion_mnist/ (disentanglement_lib has no Fashion-MNIST).
"""

import gzip
from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.ground_truth import GroundTruthData
from dlbench.errors import UserError

NAME = "fashion_mnist"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
REPOSITORY = "https://github.com/zalandoresearch/fashion-mnist"
# md5 of the published .gz files (the zalando README; torchvision's FashionMNIST resources)
FILES = {  # role: (file name without .gz, md5 of the .gz)
    "train_images": ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train_labels": ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe"),
    "test_images": ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79"),
    "test_labels": ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310"),
}
SPLITS = ("train", "test")
NUM_IMAGES = (60_000, 10_000)
IMAGES_MAGIC = 0x00000803  # uint8 (0x08), 3 dimensions
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension
SOURCE_SIZE = 28
SIZE = 32
NUM_CLASSES = 10
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
READ_IMAGES = 10_000  # images per read while loading


def _fix(folder):
    names = ", ".join(name + ".gz" for name, _ in FILES.values())
    return (f"run `dlb_data download {NAME}` (fetches {URL}), or place {names} (from {REPOSITORY}) "
            f"in {folder}")


def _check_counts(num_images):
    """The images per split the files must hold: the published ones, or (test files only) fewer."""
    return files.reduced_sizes("fashion_mnist num_images (train, test)", num_images, NUM_IMAGES)


def find_file(folder, role):
    """The file for a role in folder: the decompressed one when present, else the published .gz."""
    return files.raw_or_gz(Path(folder) / FILES[role][0])


def _has_files(folder):
    return any(find_file(folder, role).exists() for role in FILES)


def resize_images(images):
    """uint8 (n, 28, 28) -> uint8 (n, 32, 32) by PIL's bilinear resampling (torchvision's Resize)."""
    from PIL import Image

    out = np.empty((len(images), SIZE, SIZE), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((SIZE, SIZE), Image.BILINEAR))
    return out


class IdxFile(files.RowsFile):
    """One idx file whose header is checked (magic, dimensions). Raises UserError if unusable."""

    dtype = np.dtype(np.uint8)

    def __init__(self, path, magic, dims, what):
        self.path = Path(path)
        self.what = what
        self.row_noun = what + "s"
        self.shape = tuple(dims)
        if not self.path.exists():
            raise files.file_problem(self.path, f"Fashion-MNIST {what} file not found", _fix(self.path.parent))
        header = self._read(0, 4 + 4 * len(dims))
        got_magic = int.from_bytes(header[:4], "big")
        if got_magic != magic:
            raise self.problem(f"magic number 0x{got_magic:08X} is not 0x{magic:08X} (idx {what} file)")
        got_dims = tuple(int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(len(dims)))
        if got_dims != self.shape:
            raise self.problem(f"dimensions {got_dims} are not the expected {self.shape}")
        self.header_bytes = len(header)

    def problem(self, what):
        return files.file_problem(self.path, f"Fashion-MNIST {self.what} file is unusable: {what}",
                                  f"delete it and {_fix(self.path.parent)}")

    def _read(self, start, count):
        """count bytes from offset start of the (decompressed) content, or a clear error."""
        try:
            with files.open_raw_or_gz(self.path) as f:
                f.seek(start)
                data = f.read(count)
        except files.GZIP_ERRORS as err:
            raise self.cannot_read(err) from None
        if len(data) != count:
            raise self.problem(f"ends after {start + len(data)} bytes, expected at least {start + count}")
        return data


class FashionMnistFiles:
    """The four idx files of a folder, headers checked. num_images: (train, test) counts, None for
    the published (60000, 10000); miniature test files pass fewer."""

    def __init__(self, folder, num_images=None):
        self.folder = Path(folder)
        self.counts = _check_counts(num_images)
        self.images_files, self.labels_files = [], []
        for split, count in zip(SPLITS, self.counts):
            self.images_files.append(IdxFile(find_file(self.folder, f"{split}_images"), IMAGES_MAGIC,
                                             (count, SOURCE_SIZE, SOURCE_SIZE), "image"))
            self.labels_files.append(IdxFile(find_file(self.folder, f"{split}_labels"), LABELS_MAGIC,
                                             (count,), "label"))
        self.num_images = sum(self.counts)

    def load_labels(self):
        """Class labels (N,) int64, training then test; every class must be present, none above 9."""
        labels = np.concatenate([f.read_all() for f in self.labels_files]).astype(np.int64)
        for f, part in zip(self.labels_files, np.split(labels, [self.counts[0]])):
            if part.max() >= NUM_CLASSES:
                row = int(np.argmax(part))
                raise f.problem(f"label {int(part[row])} at row {row} is not a class 0..{NUM_CLASSES - 1}")
        missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(labels).tolist()))
        if missing:
            raise self.labels_files[0].problem(f"no image of class {missing[0]} in the training or test labels")
        return labels

    def load_images(self):
        """All images resized to 32x32, uint8 (N, 1, 32, 32), training then test, block by block."""
        out = np.empty((self.num_images, 1, SIZE, SIZE), dtype=np.uint8)
        offset = 0
        for f in self.images_files:
            for start, block in f.iter_blocks(READ_IMAGES):
                out[offset + start:offset + start + len(block), 0] = resize_images(block)
            offset += f.shape[0]
        return out


def write_files(folder, train_images, train_labels, test_images, test_labels, compress=True):
    """Write the four idx files (gzip-compressed as published, or raw) into folder. For miniature
    test files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    content = {"train_images": train_images, "train_labels": train_labels, "test_images": test_images,
               "test_labels": test_labels}
    for role, array in content.items():
        array = np.ascontiguousarray(array, dtype=np.uint8)
        magic = IMAGES_MAGIC if role.endswith("images") else LABELS_MAGIC
        data = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()
        name = FILES[role][0] + (".gz" if compress else "")
        (folder / name).write_bytes(gzip.compress(data) if compress else data)
    return folder


# ---------------------------------------------------------------------------------------------
# What dlb_data uses (path: the folder holding the four files)


def default_path():
    return files.dataset_folder(NAME)


def file_status(path=None, num_images=None):
    """'real', 'missing' (no file there) or 'corrupt' (headers checked; verify_file checks all)."""
    folder = Path(path) if path is not None else default_path()
    return files.status_of(_has_files(folder), lambda: FashionMnistFiles(folder, num_images))


def verify_file(path=None, num_images=None):
    """Full check: headers, the published md5 of each .gz file, every byte of every file, labels
    0..9 with every class present. Returns {'path', 'status', 'problems', 'checksum'}."""
    folder = Path(path) if path is not None else default_path()

    def check(report):
        handle = FashionMnistFiles(folder, num_images)
        checked = []
        for role, (name, md5) in FILES.items():
            path = find_file(folder, role)
            if path.suffix == ".gz" and handle.counts == NUM_IMAGES:
                problem = files.checksum_problem(path, {"md5": md5})
                if problem:
                    raise files.file_problem(path, f"Fashion-MNIST file is not the published one: {problem}",
                                             f"delete it and {_fix(folder)}")
                checked.append(path.name)
        report["checksum"] = (f"md5 of {', '.join(checked)} match the published files" if checked else
                              "not checked: published md5s are for the .gz files" if handle.counts == NUM_IMAGES
                              else "not checked: a miniature test file")
        handle.load_labels()
        for f in handle.images_files:
            for _ in f.iter_blocks(READ_IMAGES):
                pass

    return files.verification(folder, _has_files(folder), check)


def describe(path=None, num_images=None):
    """What the files hold (headers checked, images not read)."""
    folder = Path(path) if path is not None else default_path()
    handle = FashionMnistFiles(folder, num_images)
    return files.description(NAME, folder, "not a grid: class is the only known factor", handle.num_images,
                             (1, SIZE, SIZE), {"class": NUM_CLASSES},
                             sum(find_file(folder, role).stat().st_size for role in FILES), URL,
                             {FILES[role][0] + ".gz": FILES[role][1] for role in FILES})


def download(path=None, url=URL, timeout=60, progress=True):
    """Fetch the four .gz files (resumable, md5-checked) into path (default $DLBENCH_DATA/fashion_mnist/)."""
    folder = Path(path) if path is not None else default_path()
    names = ", ".join(f"{name}.gz" for name, _ in FILES.values())
    for name, md5 in FILES.values():
        # all four named: one named at a time, a user fetching by hand failed again at the next
        by_hand = f"download the four files ({names}) from {REPOSITORY} and place them in {folder}"
        files.fetch(url + name + ".gz", folder / (name + ".gz"), md5, by_hand, timeout, progress)
    return folder


class FashionMnist(files.ReadFromFiles, GroundTruthData):
    """Fashion-MNIST as ground-truth data: 70,000 greyscale images held as uint8 (N, 1, 32, 32),
    one factor, the class (10 values); not a full grid.

    path: the folder with the four idx files (default $DLBENCH_DATA/fashion_mnist/). num_images:
    for miniature test files only, the (train, test) counts they hold.
    """

    name = NAME
    path_is_folder = True  # dlb_data's --path names the folder of the four idx files
    factor_names = ["class"]
    factors_num_values = [NUM_CLASSES]
    observation_shape = (1, SIZE, SIZE)
    pixel_scale = 1.0 / 255.0
    full_grid = False

    def __init__(self, path=None, num_images=None):
        self.path = Path(path) if path is not None else default_path()
        self.files = FashionMnistFiles(self.path, num_images)
        self.labels = self.files.load_labels()
        # rows of each class, one after the other: class c's rows are _by_class[_start[c]:_start[c + 1]]
        self._by_class = np.argsort(self.labels, kind="stable")
        self._start = np.concatenate([[0], np.cumsum(np.bincount(self.labels, minlength=NUM_CLASSES))])

    def _read_images(self):
        """All observations, uint8 (N, 1, 32, 32), read and resized."""
        return self.files.load_images()

    def __len__(self):
        return len(self.labels)

    def rows_for_classes(self, classes, random_state):
        """For each class, the row of one of its images drawn uniformly with random_state."""
        classes = np.asarray(classes, dtype=np.int64).reshape(len(classes), -1)[:, 0]
        if classes.size and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
            raise UserError(f"fashion_mnist classes are 0..{NUM_CLASSES - 1}, got {classes.min()}..{classes.max()}")
        low, high = self._start[classes], self._start[classes + 1]
        return self._by_class[low + random_state.randint(0, high - low)] if classes.size else classes

    def sample_observations_from_factors(self, factors, random_state):
        """Float observations (n, 1, 32, 32): for each row's class, one of its images at random."""
        rows = self.rows_for_classes(factors, random_state)
        return self.images[rows].astype(np.float32) * np.float32(self.pixel_scale)

    default_path = staticmethod(default_path)
    file_status = staticmethod(file_status)
    verify_file = staticmethod(verify_file)
    describe = staticmethod(describe)
    download = staticmethod(download)
