"""dSprites: the procedural renderer, the file format, and the dataset class.

The real dataset is DeepMind's `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` (Matthey et al.,
2017, Apache-2.0). When that file is not in `$DLBENCH_DATA/dsprites/`, dlbench renders a synthetic
one in the same format from the geometry fitted to the real pixels (shared/data/real_reference/
DSPRITES_GEOMETRY.md): point sampling at pixel centres, a pixel is lit iff its centre is strictly
inside the shape; square |u|,|v| < 9.598, ellipse (u/12.766)^2 + (v/7.213)^2 < 1, heart a
4000-vertex polygon of the parametric heart curve; all scaled by s and rotated by theta about the
sprite centre (16 + 32*posX, 16 + 32*posY).

File format (the real one):
  imgs             uint8  (N, 64, 64), values 0/1
  latents_classes  int64  (N, 6)  (color, shape, scale, orientation, posX, posY), posY fastest
  latents_values   float64 (N, 6)
  metadata         a pickled dict: date, description, version, latents_names,
                   latents_possible_values, latents_sizes, author, title
A reduced grid (a subset of class indices per factor) is written in the same format: its
latents_sizes and latents_possible_values describe the subset and its latents_classes index into
them. dlbench's synthetic files carry metadata['dlbench'] (with 'synthetic': True, the class indices
kept and whether the images are compressed) and say so in their description and title; their
metadata is the first member, stored, so that a file that lost its tail still says how to make it
again (files made before read as they are, their metadata last).
"""

import contextlib
import datetime
import struct
import sys
import queue
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.ground_truth import GroundTruthData
from dlbench.errors import UserError, shell_word
from dlbench.rundir import atomic_path

NAME = "dsprites"
FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = "https://github.com/deepmind/dsprites-dataset/raw/master/" + FILENAME
MD5 = "7da33b31b13a06f4b04a70402ce90c2e"  # the DeepMind file (DSPRITES_GEOMETRY.md, section 2)

LATENTS_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
LATENTS_SIZES = (1, 3, 6, 40, 32, 32)
IMAGE_SIZE = 64
POSSIBLE_VALUES = {
    "color": np.array([1.0]),
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "posX": np.linspace(0.0, 1.0, 32),
    "posY": np.linspace(0.0, 1.0, 32),
}
SHAPE_NAMES = ("square", "ellipse", "heart")

# Fitted geometry (DSPRITES_GEOMETRY.md, sections 1 and 3), in pixels at scale 1.
SQUARE_HALF_SIDE = 9.598
ELLIPSE_A, ELLIPSE_B = 12.766, 7.213
HEART_VERTICES = 4000
HEART_U_FACTOR = 0.59967 * 16
HEART_V_FACTOR = 0.6622
HEART_V_OFFSET = 1.4371


# ---------------------------------------------------------------------------------------------
# The renderer


def heart_polygon(num_vertices=HEART_VERTICES):
    """Vertices (u, v) of the heart polygon in the shape's own frame (v points down)."""
    t = 2 * np.pi * np.arange(num_vertices) / num_vertices
    u = HEART_U_FACTOR * np.sin(t) ** 3
    v = -HEART_V_FACTOR * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) - HEART_V_OFFSET
    return u, v


class _HeartChains:
    """The heart polygon as four chains, each monotone in v, for an exact vectorised test.

    Vertex 0 is the notch (u = 0) and vertex N/2 the tip. Each half (right: vertices 0..N/2,
    left: N/2..N) splits at its topmost vertex into an inner chain (notch to lobe top) and an
    outer chain (lobe top to tip), both strictly monotone in v. A horizontal line at height v
    therefore meets the right half's boundary at u_outer(v) and, above the notch, also at
    u_inner(v); since the chains are straight segments between vertices, linear interpolation in v
    gives the boundary exactly. The left half is handled the same way with u negated, its tables
    shifted by _SHIFT in v so that one np.interp call serves both halves.
    """

    _SHIFT = 64.0

    def __init__(self):
        u, v = heart_polygon()
        n = len(u)
        half = n // 2
        right = (u[: half + 1], v[: half + 1])                                  # notch -> tip
        left = (-u[np.r_[half:n, 0]][::-1], v[np.r_[half:n, 0]][::-1])          # notch -> tip, mirrored
        outer_v, outer_u, inner_v, inner_u = [], [], [], []
        self.top, self.tip = [], []
        for side, (su, sv) in enumerate((right, left)):
            k_top = int(np.argmin(sv))
            iv, iu = sv[: k_top + 1][::-1], su[: k_top + 1][::-1]               # top -> notch
            ov, ou = sv[k_top:], su[k_top:]                                     # top -> tip
            if not (np.all(np.diff(iv) > 0) and np.all(np.diff(ov) > 0)):
                raise AssertionError("heart polygon chains are not monotone in v")
            shift = side * self._SHIFT
            inner_v.append(iv + shift), inner_u.append(iu)
            outer_v.append(ov + shift), outer_u.append(ou)
            self.top.append(sv[k_top])
            self.tip.append(sv[-1])
        self.notch = v[0]
        self.inner_v, self.inner_u = np.concatenate(inner_v), np.concatenate(inner_u)
        self.outer_v, self.outer_u = np.concatenate(outer_v), np.concatenate(outer_u)
        self.max_abs_u = float(np.abs(u).max())
        self.radius = float(np.hypot(u, v).max())

    def inside(self, u, v):
        """Boolean array: (u, v) strictly inside the polygon (points on the boundary are outside)."""
        left = u < 0
        au = np.abs(u)
        q = v + left * self._SHIFT
        top = np.where(left, self.top[1], self.top[0])
        tip = np.where(left, self.tip[1], self.tip[0])
        inside = (v > top) & (v < tip) & (au < self.max_abs_u)
        inside &= au < np.interp(q, self.outer_v, self.outer_u)
        inside &= (v > self.notch) | (au > np.interp(q, self.inner_v, self.inner_u))
        return inside


_HEART = _HeartChains()


def heart_inside(u, v):
    """Exact point-in-polygon test for the heart in its own frame (strict inside)."""
    return _HEART.inside(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))


# Largest distance of any shape point from the rotation centre, at scale 1. A sprite centre is
# at least 16 px from the border, so the render window (half-width floor(radius)+1) always fits.
_SHAPE_RADIUS = (SQUARE_HALF_SIDE * np.sqrt(2.0), ELLIPSE_A, _HEART.radius)
assert max(_SHAPE_RADIUS) < 15


def _inside(shape, u, v):
    if shape == 0:
        return (np.abs(u) < SQUARE_HALF_SIDE) & (np.abs(v) < SQUARE_HALF_SIDE)
    if shape == 1:
        a, b = u / ELLIPSE_A, v / ELLIPSE_B
        return a * a + b * b < 1.0
    return _HEART.inside(u, v)


def _render_group(shape, scale_index, classes, out, rows, chunk=2048):
    """Render images of one shape and scale into out[rows] (only a window around each centre)."""
    s = POSSIBLE_VALUES["scale"][scale_index]
    h = int(np.floor(_SHAPE_RADIUS[shape] * s)) + 1  # every pixel centre outside the window is >= h away
    w = 2 * h
    k = np.arange(w)
    for start in range(0, len(rows), chunk):
        c = classes[start:start + chunk]
        r = rows[start:start + chunk]
        theta = POSSIBLE_VALUES["orientation"][c[:, 3]]
        cx = 16.0 + 32.0 * POSSIBLE_VALUES["posX"][c[:, 4]]
        cy = 16.0 + 32.0 * POSSIBLE_VALUES["posY"][c[:, 5]]
        x0 = np.floor(cx + 0.5).astype(np.int64) - h
        y0 = np.floor(cy + 0.5).astype(np.int64) - h
        dx = (x0[:, None] + k + 0.5) - cx[:, None]          # (n, w): column centres minus cx
        dy = (y0[:, None] + k + 0.5) - cy[:, None]          # (n, w): row centres minus cy
        cos_s = (np.cos(theta) / s)[:, None]
        sin_s = (np.sin(theta) / s)[:, None]
        # u = (dx cos - dy sin)/s, v = (dx sin + dy cos)/s, laid out (n, row, col)
        u = (dx * cos_s)[:, None, :] - (dy * sin_s)[:, :, None]
        v = (dx * sin_s)[:, None, :] + (dy * cos_s)[:, :, None]
        lit = _inside(shape, u, v).view(np.uint8)
        out[r[:, None, None], y0[:, None, None] + k[None, :, None], x0[:, None, None] + k[None, None, :]] = lit


def render(latents_classes):
    """Render dSprites images.

    latents_classes: (n, 6) integer class indices in the file's factor order
    (color, shape, scale, orientation, posX, posY); a single row of 6 is also accepted.
    Returns a uint8 array (n, 64, 64) of 0/1.
    """
    classes = np.asarray(latents_classes)
    if classes.ndim == 1:
        classes = classes[None]
    if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"latents_classes must be an integer array of shape (n, 6), got {classes.dtype} {classes.shape}")
    classes = classes.astype(np.int64, copy=False)
    if len(classes) and (np.any(classes < 0) or np.any(classes >= np.array(LATENTS_SIZES))):
        raise ValueError(f"latents_classes out of range: sizes are {LATENTS_SIZES}")
    out = np.zeros((len(classes), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    key = classes[:, 1] * LATENTS_SIZES[2] + classes[:, 2]
    for group in np.unique(key):
        rows = np.flatnonzero(key == group)
        _render_group(int(group // LATENTS_SIZES[2]), int(group % LATENTS_SIZES[2]), classes[rows], out, rows)
    return out


def latents_values_of(latents_classes):
    """float64 (n, 6) latent values of full-grid class indices."""
    classes = np.asarray(latents_classes, dtype=np.int64)
    return np.stack([POSSIBLE_VALUES[n][classes[:, i]] for i, n in enumerate(LATENTS_NAMES)], axis=1)


# ---------------------------------------------------------------------------------------------
# Grids


def normalize_class_indices(class_indices=None):
    """Per factor, the sorted unique class indices to keep (all of them by default).

    class_indices: None, a dict {factor name: indices} (factors left out keep every index), or a
    sequence of 6 entries (None or indices) in the file's factor order.
    """
    result = []
    for name, size, entry in zip(LATENTS_NAMES, LATENTS_SIZES, _entries(class_indices)):
        if entry is None:
            result.append(np.arange(size))
            continue
        idx = np.unique(np.asarray(entry, dtype=np.int64).ravel())
        if idx.size == 0:
            raise UserError(f"no class indices kept for dSprites factor {name!r}; keep at least one")
        if idx[0] < 0 or idx[-1] >= size:
            raise UserError(f"class index out of range for dSprites factor {name!r}: valid are 0..{size - 1}")
        result.append(idx)
    return result


def _entries(class_indices):
    """class_indices (as normalize_class_indices takes it) as one entry per factor, in the file's
    order: the indices given, or None for every index."""
    if class_indices is None:
        class_indices = {}
    if isinstance(class_indices, dict):
        unknown = set(class_indices) - set(LATENTS_NAMES)
        if unknown:
            raise UserError(f"unknown dSprites factor {sorted(unknown)[0]!r}; factors are {', '.join(LATENTS_NAMES)}")
        return [class_indices.get(n) for n in LATENTS_NAMES]
    entries = list(class_indices)
    if len(entries) != len(LATENTS_NAMES):
        raise UserError(f"class_indices needs {len(LATENTS_NAMES)} entries, one per factor {LATENTS_NAMES}")
    return entries


def refuse_the_full_grid(class_indices, kept):
    """A UserError when class_indices names factors to reduce but kept (its normalized form) keeps
    every value of every factor: asked for a reduced grid, make would write the full one (3 GB
    stored, minutes of rendering) without a word."""
    if any(len(k) < size for k, size in zip(kept, LATENTS_SIZES)):
        return
    named = [f"{name} (its {size} value{'s' if size != 1 else ''})"
             for name, size, entry in zip(LATENTS_NAMES, LATENTS_SIZES, _entries(class_indices)) if entry is not None]
    if named:
        raise UserError(f"--keep keeps every value of {' and '.join(named)}, so the file would hold the full grid "
                        f"of {int(np.prod(LATENTS_SIZES)):,} images (about 3 GB), not a reduced one; keep fewer "
                        f"values of some factor (e.g. --keep posX=0:32:8), or leave out --keep for the full grid")


def keep_flags(kept):
    """' --keep scale=5 --keep posX=0:32:8' for the factors that kept (normalize_class_indices'
    form) reduces: the flags that make the same grid again, as dlb_data make --keep reads them."""
    return "".join(f" --keep {shell_word(f'{name}={_indices_text(indices, size)}')}"
                   for name, size, indices in zip(LATENTS_NAMES, LATENTS_SIZES, kept) if len(indices) < size)


def _indices_text(indices, size):
    """'5', '0,13', or a range 'start:stop[:step]' for three or more evenly spaced indices."""
    indices = [int(i) for i in indices]
    steps = {b - a for a, b in zip(indices, indices[1:])}
    if len(indices) < 3 or len(steps) != 1:
        return ",".join(map(str, indices))
    step = steps.pop()
    stop = min(indices[-1] + step, size)  # the round stop (0:32:8), within the factor
    return f"{indices[0]}:{stop}" if step == 1 else f"{indices[0]}:{stop}:{step}"


def remake_command(path, kept, compress=False):
    """The dlb_data command that makes the synthetic file at path again with the grid kept."""
    return f"dlb_data make dsprites --force{_path_flag(path)}{keep_flags(kept)}{' --compress' if compress else ''}"


def grid_classes(class_indices=None):
    """(n, 6) full-grid class indices of every cell of the (reduced) grid, in file order (posY fastest)."""
    kept = normalize_class_indices(class_indices)
    mesh = np.meshgrid(*kept, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Writing the file


def _metadata(kept, synthetic=True, compress=False):
    sizes = np.array([len(k) for k in kept], dtype=np.int64)
    full = all(len(k) == n for k, n in zip(kept, LATENTS_SIZES))
    grid = "the full grid" if full else "a REDUCED grid of " + " x ".join(
        f"{n}={len(k)}" for n, k in zip(LATENTS_NAMES, kept))
    return {
        "date": datetime.date.today().isoformat(),
        "description": (
            "SYNTHETIC dSprites, procedurally generated by dlbench; NOT the DeepMind file. "
            "Rendered from the geometry fitted to the real images (point sampling at pixel centres, "
            f"square/ellipse/heart, see dlbench.data.dsprites), {grid}. Same layout as "
            "Disentanglement test Sprites dataset: 6 latents (color, shape, scale, orientation, posX, "
            "posY), ordering along dimension 1 fixed (posY fastest); latents_classes index "
            "latents_possible_values."),
        "version": 1,
        "latents_names": LATENTS_NAMES,
        "latents_possible_values": {n: POSSIBLE_VALUES[n][k] for n, k in zip(LATENTS_NAMES, kept)},
        "latents_sizes": sizes,
        "author": "dlbench (procedural renderer after Matthey, Higgins, Hassabis, Lerchner 2017)",
        "title": "dSprites dataset (synthetic, dlbench)",
        "dlbench": {
            "synthetic": synthetic,
            "generator": "dlbench.data.dsprites.generate_npz",
            "class_indices": {n: k.tolist() for n, k in zip(LATENTS_NAMES, kept)},
            "compressed": bool(compress),
        },
    }


def _npy_header(dtype, shape):
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(  # the version numpy (and the real file) use
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _write_member(zf, name, array, stored=False):
    """array as the zip's member name.npy; stored: uncompressed, whatever the zip's own setting."""
    info = zipfile.ZipInfo(name + ".npy", date_time=datetime.datetime.now().timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if stored else zf.compression
    with zf.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, array, allow_pickle=True)


def generate_npz(path, class_indices=None, compress=False, progress=False, chunk=8192):
    """Render dSprites and write it to path in the real file format, atomically.

    class_indices: optional subset of class indices per factor (see normalize_class_indices);
    the default is the full 737,280-image grid. compress: deflate the zip members (as
    np.savez_compressed does, at level 1: 53 MB for the full grid, 3-7 s to load) or, by default,
    store them (3.1 GB for the full grid, opened in about 0.1 s as a memory map that concurrent
    runs share through the page cache).
    The images are rendered in chunks and streamed into the file (a second thread compresses
    while the next chunk renders), so memory stays small. Returns the path.
    """
    path = Path(path)
    kept = normalize_class_indices(class_indices)
    classes = grid_classes(kept)
    n = len(classes)
    # classes in the file index the (reduced) possible values: position within each kept list
    file_classes = np.stack([np.searchsorted(k, classes[:, i]) for i, k in enumerate(kept)], axis=1).astype(np.int64)
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=mode, allowZip64=True, compresslevel=1 if compress else None) as zf:
        # first and stored: a file that loses its tail (and with it the zip's directory) still says
        # from its start how it was made, so that the advice to make it again keeps its --keep
        _write_member(zf, "metadata", np.array(_metadata(kept, compress=compress), dtype=object), stored=True)
        with zf.open("imgs.npy", "w", force_zip64=True) as f:
            f.write(_npy_header(np.uint8, (n, IMAGE_SIZE, IMAGE_SIZE)))
            _stream_images(f, classes, chunk, progress)
        _write_member(zf, "latents_classes", file_classes)
        _write_member(zf, "latents_values", latents_values_of(classes))
    return path


def _stream_images(f, classes, chunk, progress):
    """Render chunks in this thread; a writer thread (zlib releases the GIL) writes them."""
    from tqdm import tqdm

    pending = queue.Queue(maxsize=2)
    failure = []

    def writer():
        while True:
            block = pending.get()
            if block is None:
                return
            if not failure:
                try:
                    f.write(memoryview(block).cast("B"))
                except BaseException as err:  # reported to the main thread
                    failure.append(err)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with tqdm(total=len(classes), unit="img", unit_scale=True, desc="rendering dSprites",
                  disable=not progress, file=sys.stderr) as bar:
            for start in range(0, len(classes), chunk):
                if failure:
                    break
                block = render(classes[start:start + chunk])
                pending.put(block)
                bar.update(len(block))
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


# ---------------------------------------------------------------------------------------------
# Reading and checking the file


def _path_flag(path):
    """' --path PATH' for a file elsewhere than $DLBENCH_DATA's: a command without it works on the
    default place."""
    return "" if Path(path).resolve() == default_path().resolve() else f" --path {shell_word(path)}"


def _fix(path, metadata=None, compressed=None):
    """What to do about the unusable dSprites file at path. One dlbench made is made again as its
    metadata (else what its start still holds) records, a reduced grid with its --keep: the
    command without it would write the full 3 GB grid. compressed: how its images are stored,
    where the headers say (files made before the metadata recorded it)."""
    if metadata is None:
        metadata = _leading_metadata(path)
    recorded = _recorded_grid(metadata)
    if recorded is not None:
        kept, recorded_compressed = recorded
        compress = recorded_compressed if compressed is None else compressed
        return f"run `{remake_command(path, kept, compress)}` to make it again"
    where = _path_flag(path)
    fix = (f"delete {path} and run `dlb_data make dsprites{where}` (synthetic) or "
           f"`dlb_data download dsprites{where}`, or place the DeepMind {FILENAME} there")
    if metadata is None:  # nothing left says whether it held a reduced grid, nor which
        fix += (f"; a reduced grid needs the --keep it was made with given again, which this file is too damaged "
                f"to tell: `dlb_data make dsprites --force{where} --keep FACTOR=INDICES ...`")
    return fix


def _recorded_grid(metadata):
    """(kept, compressed) as dlbench recorded them making a synthetic file, else None (a real
    file's metadata, or none). Files made before 'compressed' was recorded read as stored."""
    made = metadata.get("dlbench") if isinstance(metadata, dict) else None
    if not isinstance(made, dict) or not made.get("synthetic") or not isinstance(made.get("class_indices"), dict):
        return None
    try:
        return normalize_class_indices(made["class_indices"]), bool(made.get("compressed", False))
    except (UserError, TypeError, ValueError):
        return None


def _leading_metadata(path):
    """The metadata dict of a file too damaged to open as a zip, read from the member at its very
    start: dlbench writes it there, stored, so that it outlives the loss of the file's tail (the
    zip's directory). None where the file does not start so (made before, or real) or it is damaged too."""
    try:
        with open(path, "rb") as raw:
            local = raw.read(30)
            if local[:4] != b"PK\x03\x04" or struct.unpack("<H", local[8:10])[0] != zipfile.ZIP_STORED:
                return None
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            if raw.read(name_len) != b"metadata.npy":
                return None
            raw.seek(30 + name_len + extra_len)
            metadata = np.lib.format.read_array(raw, allow_pickle=True)[()]
    except Exception:  # damage of any kind there: then nothing is known, which the caller says
        return None
    return metadata if isinstance(metadata, dict) else None


def _member_headers(path):
    """{name: (dtype, shape, compress_type, data_offset or None)} read from the npy headers only."""
    result = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(member, max_header_size=100000)
                header_len = member.tell()
            if fortran:
                raise ValueError(f"member {name!r} is in Fortran order")
            offset = None
            if info.compress_type == zipfile.ZIP_STORED:
                with open(path, "rb") as raw:
                    offset = _local_data_offset(raw, info) + header_len
            result[name] = (dtype, tuple(shape), info.compress_type, offset)
    return result


def _local_data_offset(raw, info):
    """Offset in the zip file where the member's (possibly compressed) data starts."""
    raw.seek(info.header_offset)
    local = raw.read(30)
    if local[:4] != b"PK\x03\x04":
        raise ValueError("bad zip local header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _inflate_member(path, member, shape, step=1 << 24):
    """A deflated uint8 npy member read into one preallocated array, its CRC checked.

    About twice as fast as np.load for the 3 GB imgs (no intermediate buffers per 256 kB).
    """
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    with open(path, "rb") as raw:
        raw.seek(_local_data_offset(raw, info))
        compressed = memoryview(raw.read(info.compress_size))
    count = int(np.prod(shape))
    header_len = info.file_size - count
    if header_len <= 0:
        raise ValueError(f"{member} is shorter than its header says")
    out = np.empty(count, dtype=np.uint8)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    state = {"crc": 0, "pos": 0, "skip": header_len}

    def store(chunk):  # runs in a helper thread: CRC and copy overlap the next inflate
        state["crc"] = zlib.crc32(chunk, state["crc"])
        view = np.frombuffer(chunk, dtype=np.uint8)
        if state["skip"]:  # the npy header at the start of the member
            cut = min(state["skip"], len(view))
            view, state["skip"] = view[cut:], state["skip"] - cut
        pos = state["pos"]
        if pos + len(view) > count:
            raise ValueError(f"{member} holds more data than its header says")
        out[pos:pos + len(view)] = view
        state["pos"] = pos + len(view)

    with ThreadPoolExecutor(max_workers=1) as helper:
        pending = []
        # small input pieces: decompress(max_length) copies the unconsumed input on every call
        for start in range(0, len(compressed), 1 << 18):
            data = compressed[start:start + (1 << 18)]
            while True:
                chunk = inflater.decompress(data, step)
                data = inflater.unconsumed_tail
                if chunk:
                    pending.append(helper.submit(store, chunk))
                    if len(pending) > 4:
                        pending.pop(0).result()
                if not data and len(chunk) < step:
                    break
        for job in pending:
            job.result()
    pos, crc = state["pos"], state["crc"]
    if pos != count or not inflater.eof:
        raise ValueError(f"{member} is truncated ({pos} of {count} bytes)")
    if crc != info.CRC:
        raise ValueError(f"{member} fails its CRC check")
    return out.reshape(shape)


class CorruptDSpritesFile(UserError):
    """An unusable dSprites file: the line names it, the problem and the fix; `problem` alone is
    what was found, for a command that words its own fix (make, asked to replace the file).
    Not errors.CorruptFile, which other layers catch to remake their own files."""

    def __init__(self, path, problem, metadata=None, compressed=None):
        super().__init__(f"dSprites file {path} is corrupt ({problem}); {_fix(path, metadata, compressed)}")
        self.problem = problem


class DSpritesFile:
    """A checked dSprites npz (real, synthetic, full or reduced). Raises UserError if unusable.

    Opening reads only the zip directory, the npy headers and the metadata; the images are read
    by load_images() (memory-mapped when the member is stored uncompressed).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"dSprites file not found: {self.path}; run `dlb_data make dsprites` (synthetic) "
                            f"or `dlb_data download dsprites`, or place the DeepMind {FILENAME} there")
        try:
            self.members = _member_headers(self.path)
            with np.load(self.path, allow_pickle=True, encoding="latin1") as npz:
                metadata = npz["metadata"][()] if "metadata" in npz.files else None
        except UserError:
            raise
        except Exception as err:  # zip, npy or pickle damage
            raise CorruptDSpritesFile(self.path, f"{type(err).__name__}: {files.one_line(err)}") from None
        self.metadata = metadata
        self._check()

    def _bad(self, problem):
        """The error for a file whose zip opened: its metadata, if read, says how to make it again."""
        imgs = self.members.get("imgs")
        return CorruptDSpritesFile(self.path, problem, self.metadata,
                                   compressed=None if imgs is None else imgs[2] != zipfile.ZIP_STORED)

    def _check(self):
        for name in ("imgs", "latents_classes", "latents_values", "metadata"):
            if name not in self.members:
                raise self._bad(f"no '{name}' array")
        meta = self.metadata
        if not isinstance(meta, dict) or "latents_sizes" not in meta or "latents_names" not in meta:
            raise self._bad("metadata is not a dict with latents_sizes and latents_names")
        names = tuple(meta["latents_names"])
        if names != LATENTS_NAMES:
            raise self._bad(f"latents_names are {names}, expected {LATENTS_NAMES}")
        sizes = np.asarray(meta["latents_sizes"]).astype(np.int64).ravel()
        if sizes.shape != (6,) or np.any(sizes < 1) or np.any(sizes > np.array(LATENTS_SIZES)):
            raise self._bad(f"latents_sizes {sizes.tolist()} are not within {list(LATENTS_SIZES)}")
        values = meta.get("latents_possible_values")
        if not isinstance(values, dict) or any(len(np.ravel(values.get(n, []))) != k for n, k in zip(names, sizes)):
            raise self._bad("latents_possible_values do not match latents_sizes")
        n = int(np.prod(sizes))
        expected = {"imgs": (np.uint8, (n, IMAGE_SIZE, IMAGE_SIZE)), "latents_classes": (np.int64, (n, 6)),
                    "latents_values": (np.float64, (n, 6))}
        for name, (dtype, shape) in expected.items():
            got_dtype, got_shape = self.members[name][:2]
            if got_dtype != np.dtype(dtype) or got_shape != shape:
                raise self._bad(f"'{name}' is {got_dtype} {got_shape}, expected {np.dtype(dtype)} {shape} "
                                f"for latents_sizes {sizes.tolist()}")
        self.latents_sizes = sizes
        self.possible_values = {name: np.asarray(values[name], dtype=np.float64).ravel() for name in names}
        self.num_images = n

    @property
    def synthetic(self):
        info = self.metadata.get("dlbench")
        return bool(isinstance(info, dict) and info.get("synthetic"))

    @property
    def source(self):
        """'synthetic' for dlbench's rendered files, 'real' otherwise (verify() checks the md5)."""
        return "synthetic" if self.synthetic else "real"

    @property
    def full_grid(self):
        return tuple(self.latents_sizes.tolist()) == LATENTS_SIZES

    @property
    def compressed(self):
        return self.members["imgs"][2] != zipfile.ZIP_STORED

    def class_indices(self):
        """Per factor, the full-grid class indices this file holds (from its possible values)."""
        result = []
        for name in LATENTS_NAMES:
            full, here = POSSIBLE_VALUES[name], self.possible_values[name]
            idx = np.array([int(np.argmin(np.abs(full - x))) for x in here], dtype=np.int64)
            if not np.allclose(full[idx], here, rtol=0, atol=1e-9):
                raise self._bad(f"latents_possible_values[{name!r}] are not dSprites values")
            result.append(idx)
        return result

    def load_images(self):
        """imgs as a uint8 (N, 64, 64) array (a copy-on-write memory map for a stored member)."""
        _, shape, compress_type, offset = self.members["imgs"]
        try:
            if offset is not None:
                return np.memmap(self.path, dtype=np.uint8, mode="c", offset=offset, shape=shape)
            if compress_type == zipfile.ZIP_DEFLATED:
                return _inflate_member(self.path, "imgs.npy", shape)
            with np.load(self.path) as npz:
                return npz["imgs"]
        except Exception as err:
            raise self._bad(f"cannot read imgs: {type(err).__name__}: {files.one_line(err)}") from None

    def load(self, name):
        """latents_classes or latents_values (small; read fully)."""
        try:
            with np.load(self.path) as npz:
                return npz[name]
        except Exception as err:
            raise self._bad(f"cannot read {name}: {type(err).__name__}: {files.one_line(err)}") from None


def verify_file(path, sample=2000, seed=0):
    """Full check of a dSprites file. Returns a dict with 'status' in {'real', 'synthetic', 'corrupt',
    'missing'} and 'problems' (a list of one-line strings; empty unless corrupt)."""
    path = Path(path)

    def check(report):
        report["md5"] = md5 = files.file_checksum(path)
        if _recorded_grid(_leading_metadata(path)) is not None:  # also when the rest cannot be read
            report["source"] = "synthetic"
        handle = DSpritesFile(path)
        report["source"] = handle.source
        report["latents_sizes"] = handle.latents_sizes.tolist()
        if handle.source == "real":
            if md5 != MD5:
                raise UserError(f"md5 {md5} is not the DeepMind file's {MD5} and the metadata does not mark it "
                                f"as dlbench's synthetic file")
        check_contents(handle, report, sample, seed)
        return handle.source

    return files.verification(path, path.exists(), check)


def check_contents(handle, report=None, sample=2000, seed=0):
    """Beyond the headers DSpritesFile reads: the grid, the values and every byte of the images
    (their zip CRC) and, for a synthetic file, a sample of them against the renderer. Raises a
    CorruptDSpritesFile at the first problem; adds what it checked to report."""
    report = {} if report is None else report
    kept = handle.class_indices()
    expected = grid_classes(kept)
    file_classes = handle.load("latents_classes")
    expected_file = np.stack([np.searchsorted(k, expected[:, i]) for i, k in enumerate(kept)], axis=1)
    if not np.array_equal(file_classes, expected_file):
        raise handle._bad("latents_classes are not the grid in file order (posY fastest)")
    values = handle.load("latents_values")
    if not np.allclose(values, latents_values_of(expected), rtol=0, atol=1e-6):
        raise handle._bad("latents_values do not match latents_classes")
    imgs = handle.load_images()  # a full read also checks the zip CRC of a compressed member
    if handle.compressed is False:
        with zipfile.ZipFile(handle.path) as zf:
            bad = zf.testzip()
        if bad is not None:
            raise handle._bad(f"zip member {bad} fails its CRC check")
    if imgs.max(initial=0) > 1:
        raise handle._bad("imgs has values other than 0 and 1")
    if handle.synthetic:
        rows = np.random.RandomState(seed).choice(len(expected), size=min(sample, len(expected)), replace=False)
        rows.sort()
        if not np.array_equal(np.asarray(imgs[rows]), render(expected[rows])):
            raise handle._bad(f"images differ from the renderer on a sample of {len(rows)}")
        report["checked_render_sample"] = len(rows)


def damage_inside(path):
    """What check_contents finds wrong in the dSprites file at path, whose headers read well;
    None when nothing is."""
    try:
        check_contents(DSpritesFile(path))
    except CorruptDSpritesFile as err:
        return err.problem
    return None


# ---------------------------------------------------------------------------------------------
# The dataset


def default_path():
    from dlbench.data import data_root
    return data_root() / NAME / FILENAME


def file_status(path=None):
    """'real', 'synthetic', 'missing' or 'corrupt' (a quick check: headers and metadata only)."""
    path = Path(path) if path is not None else default_path()
    if not path.exists():
        return "missing"
    try:
        return DSpritesFile(path).source
    except UserError:
        return "corrupt"


@contextlib.contextmanager
def _generating(path):
    """For the block that writes the dSprites file at path: its folder is made (and removed again
    if the block fails and left it empty), and a lock beside the file is held, so that of two
    processes generating at once one writes and the other then finds the file. The lock file
    goes when the block ends."""
    lock = path.parent / ("." + path.name + ".lock")
    with files.made_folder(path.parent), files.exclusive_lock(lock):
        yield


_GENERATION_BAR = None  # see generation_bar


@contextlib.contextmanager
def generation_bar(shown):
    """Within the block a dSprites generated on first use draws its bar iff `shown`: the command
    that needed the data decides (dlb_train follows its --no_progress and whether its standard error
    is a terminal). Outside it the bar is drawn where standard error is a terminal."""
    global _GENERATION_BAR
    previous, _GENERATION_BAR = _GENERATION_BAR, shown
    try:
        yield
    finally:
        _GENERATION_BAR = previous


def ensure_file(path=None, progress=None):
    """The dSprites file, generated (synthetic, full grid) with a message on stderr if missing;
    progress None: the bar is drawn as generation_bar says."""
    path = Path(path) if path is not None else default_path()
    if progress is None:
        progress = sys.stderr.isatty() if _GENERATION_BAR is None else _GENERATION_BAR
    if path.exists():
        return path
    files.refuse_a_file_in_the_way(NAME, path)  # also for the variants, which read this file
    try:
        with _generating(path):
            if not path.exists():  # else another process made it while this one waited
                print(f"dlbench: dSprites not found at {path}; generating a SYNTHETIC dSprites there "
                      f"(procedurally rendered by dlbench, not the DeepMind file; well under a minute). "
                      f"For the real data run `dlb_data download dsprites` or place {FILENAME} in {path.parent}.",
                      file=sys.stderr, flush=True)
                generate_npz(path, progress=progress)
    except OSError as err:
        raise UserError(f"cannot write the synthetic dSprites to {path} ({err.strerror or err}); "
                        f"set DLBENCH_DATA to a writable folder") from None
    return path


def _refuse_to_replace_a_synthetic_file(path, kept, compress):
    """The UserError of make without --force on a synthetic file: damaged (its headers read well, so
    only a look inside tells), it is named so, with the command that makes it again, where "already
    exists" had sent the user off with a file that fails every use."""
    damage = damage_inside(path)
    if damage is not None:
        raise UserError(f"the synthetic dSprites file at {path} is damaged ({damage}); run "
                        f"`{remake_command(path, kept, compress)}` to make it again")
    raise UserError(f"a synthetic dSprites file already exists at {path}; pass --force to regenerate it")


class DSprites(GroundTruthData):
    """dSprites as ground-truth data: 5 factors (shape, scale, orientation, posX, posY).

    Colour, constant, is left out as in disentanglement_lib. The file is read from
    `$DLBENCH_DATA/dsprites/` (the real one is used as is); if it is missing there, a synthetic
    one is generated on first use. An explicit path must exist (a reduced grid file is fine:
    factors_num_values come from its metadata).
    """

    name = NAME
    factor_names = ["shape", "scale", "orientation", "posX", "posY"]
    factors_num_values = list(LATENTS_SIZES[1:])  # the published grid; an instance has its file's
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    pixel_scale = 1.0

    def __init__(self, path=None, generate=True):
        if path is None:
            path = ensure_file() if generate else default_path()
        self.file = DSpritesFile(path)
        self.path = self.file.path
        self.source = self.file.source
        self.factors_num_values = [int(x) for x in self.file.latents_sizes[1:]]
        self.factor_values = [self.file.possible_values[n] for n in self.factor_names]
        self._images = None

    @property
    def images(self):
        """All observations, uint8 (N, 1, 64, 64) of 0/1 (a view of the file's imgs)."""
        if self._images is None:
            self._images = self.file.load_images()[:, None]
        return self._images

    @property
    def latents_classes(self):
        """The file's (N, 6) latents_classes (colour first); [:, 1:] are this dataset's factors."""
        return self.file.load("latents_classes")

    def kept_classes(self):
        """{factor: its class indices in the published grid} for each factor this file's grid reduces
        (a reduced grid of dlb_data make --keep), {} for the full grid: two reduced grids of one shape
        (scale=0,5 and scale=1,3) hold other images, which a run must not be evaluated on."""
        full = dict(zip(LATENTS_NAMES, LATENTS_SIZES))
        return {name: [int(i) for i in indices] for name, indices in zip(LATENTS_NAMES, self.file.class_indices())
                if name in self.factor_names and len(indices) < full[name]}

    @staticmethod
    def shape_if_generated():
        """The dataset_shape of the synthetic dSprites made on first use where the file is missing
        (the published grid), None where a file is there: a run recorded on other data is refused
        before gigabytes are generated for it."""
        if file_status() != "missing":
            return None
        return {"observations": int(np.prod(LATENTS_SIZES)), "factor_sizes": list(LATENTS_SIZES[1:])}

    # what dlb_data needs (the registry's dataset protocol)
    default_path = staticmethod(default_path)
    file_status = staticmethod(file_status)
    verify_file = staticmethod(verify_file)

    @staticmethod
    def make(path=None, class_indices=None, force=False, progress=True, compress=False):
        path = Path(path) if path is not None else default_path()
        kept = normalize_class_indices(class_indices)
        refuse_the_full_grid(class_indices, kept)
        with _generating(path):  # the check and the write, with no other generator in between
            status = file_status(path)
            if status == "real":
                raise UserError(f"{path} holds the real dSprites file; refusing to overwrite it with a synthetic one")
            if status == "synthetic" and not force:
                _refuse_to_replace_a_synthetic_file(path, kept, compress)
            if status == "corrupt" and not force:  # perhaps not a dSprites file at all: the user decides
                raise UserError(f"{path} holds a file that is not a usable dSprites file; pass --force to replace "
                                f"it with a synthetic one, or give another --path")
            return generate_npz(path, class_indices=kept, progress=progress, compress=compress)

    @staticmethod
    def download(path=None, url=URL, timeout=60, progress=True):
        """Fetch the DeepMind file (resumable, md5-checked; a synthetic file at path is replaced
        only once the download is complete and checked). Returns the path."""
        path = Path(path) if path is not None else default_path()
        # a synthetic file there already is what `make` would give (it refuses to make it again)
        synthetic = (" (the synthetic one there serves meanwhile)" if file_status(path) == "synthetic"
                     else f", or run `dlb_data make dsprites{_path_flag(path)}` to generate a synthetic one")
        by_hand = f"save the DeepMind {FILENAME} as {path} by hand{synthetic}"
        return files.fetch(url, path, MD5, by_hand, timeout=timeout, progress=progress)

    @staticmethod
    def describe(path=None):
        """Factors, sizes, path and source of the file (without reading the images)."""
        path = Path(path) if path is not None else default_path()
        handle = DSpritesFile(path)
        return {
            "name": NAME,
            "path": str(handle.path),
            "source": handle.source,
            "grid": "full" if handle.full_grid else "reduced",
            "compressed": handle.compressed,
            "num_images": handle.num_images,
            "observation_shape": list(DSprites.observation_shape),
            "factor_names": list(DSprites.factor_names),
            "factors_num_values": [int(x) for x in handle.latents_sizes[1:]],
            "file_bytes": handle.path.stat().st_size,
        }
