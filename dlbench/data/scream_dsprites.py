"""scream_dsprites: dSprites embedded in random patches of Munch's The Scream.

As disentanglement_lib's ScreamDSprites:
  - the image (https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg) is shrunk with
    PIL's thumbnail to fit within 350 x 274 pixels (width x height, aspect ratio kept) and scaled
    to [0, 1];
  - each observation takes a 64 x 64 patch at a uniformly drawn top-left corner, row in
    [0, H - 64) and column in [0, W - 64) (disentanglement_lib's ranges, which leave out the last
    row and column offset), and a colour u drawn uniformly from [0, 1) per channel: the
    background is (patch + u) / 2;
  - the sprite's pixels are inverted: 1 - background there.
The factors are dSprites' five. The image is read from $DLBENCH_DATA/scream/scream.jpg, else from
$DISENTANGLEMENT_LIB_DATA/scream/scream.jpg (disentanglement_lib's layout); `dlb_data download
scream_dsprites` fetches it. Wikimedia publishes no checksum for it, so none is checked. For
dlb_data this dataset's file is that image; the dSprites file is found or generated as for
dsprites. Reading the image needs Pillow (PIL).
"""

from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.color_dsprites import DSpritesVariant
from dlbench.data.dsprites import IMAGE_SIZE, DSprites
from dlbench.errors import UserError

NAME = "scream_dsprites"
FOLDER = "scream"
FILENAME = "scream.jpg"
URL = "https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg"
THUMBNAIL_SIZE = (350, 274)  # width, height: PIL's thumbnail fits the image inside this box
PATCH = IMAGE_SIZE


def default_path():
    """Where the Scream image is (or, when nowhere, where a download puts it)."""
    return files.locate(FOLDER, FILENAME, f"{FOLDER}/{FILENAME}")


def _fix(path):
    return files.missing_file_fix(NAME, URL, FILENAME, Path(path).parent)


def _pil_image():
    try:
        from PIL import Image
    except ImportError:
        raise UserError("scream_dsprites reads its image with Pillow, which is not installed; "
                        "run `pip install pillow`") from None
    return Image


def load_scream(path):
    """The image at path shrunk as disentanglement_lib does: float32 (3, H, W) in [0, 1]."""
    path = Path(path)
    if not path.exists():
        raise files.file_problem(path, "the Scream image for scream_dsprites is not there", _fix(path))
    Image = _pil_image()
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail(THUMBNAIL_SIZE)
            pixels = np.asarray(image)
    except Exception as err:  # PIL raises many types for unreadable or truncated files
        raise files.file_problem(path, f"not a readable image ({type(err).__name__}: {files.one_line(err)})",
                                 f"delete it and {_fix(path)}") from None
    return checked_scream(pixels, path)


def checked_scream(pixels, source="the image"):
    """An (H, W, 3) image (uint8, or floats in [0, 1]) as float32 (3, H, W) in [0, 1]; it must leave
    room for a patch (H, W > 64, since the corner is drawn from [0, H - 64))."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise UserError(f"{source}: the Scream image must be RGB (H, W, 3), got shape {pixels.shape}")
    if pixels.shape[0] <= PATCH or pixels.shape[1] <= PATCH:
        raise UserError(f"{source}: the Scream image is {pixels.shape[1]} x {pixels.shape[0]} pixels after "
                        f"shrinking; it must be larger than {PATCH} x {PATCH}")
    if pixels.dtype == np.uint8:
        scaled = pixels.astype(np.float32) / np.float32(255)
    else:
        scaled = pixels.astype(np.float32)
        if not (np.all(np.isfinite(scaled)) and scaled.min() >= 0 and scaled.max() <= 1):
            raise UserError(f"{source}: float Scream pixels must lie in [0, 1]")
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def file_status(path=None):
    """'real' when the image opens, 'missing' or 'corrupt' (a quick check of the header)."""
    path = Path(path) if path is not None else default_path()
    if not path.exists():
        return "missing"
    try:
        with _pil_image().open(path):
            pass
    except UserError:
        raise
    except Exception:
        return "corrupt"
    return "real"


def verify_file(path=None):
    """Full check: the image decodes, is RGB after conversion and large enough after shrinking.
    Returns {'path', 'status' ('real' | 'missing' | 'corrupt'), 'problems', 'checksum'}."""
    path = Path(path) if path is not None else default_path()

    def check(report):
        report["checksum"] = "not checked: Wikimedia publishes no checksum for this image"
        scream = load_scream(path)
        report["shrunk_size"] = f"{scream.shape[2]} x {scream.shape[1]}"

    return files.verification(path, path.exists(), check)


def describe(path=None):
    """The image and the dSprites file the dataset is made from."""
    path = Path(path) if path is not None else default_path()
    scream = load_scream(path)
    from dlbench.data.dsprites import file_status as dsprites_status
    info = {"name": NAME, "image_path": str(path), "image_url": URL,
            "image_size_after_shrinking": f"{scream.shape[2]} x {scream.shape[1]}"}
    dsprites_path = DSprites.default_path()
    if dsprites_status(dsprites_path) in ("real", "synthetic"):
        base = DSprites.describe(dsprites_path)
        info.update(dsprites_path=base["path"], source=base["source"], grid=base["grid"],
                    num_images=base["num_images"], factors_num_values=base["factors_num_values"])
    else:
        info.update(dsprites_path=f"{dsprites_path} (not there yet: generated on first use)")
    info.update(observation_shape=list(ScreamDSprites.observation_shape),
                factor_names=list(ScreamDSprites.factor_names),
                observations="the dSprites masks inverted on a colour-shifted random patch of the image")
    return info


def download(path=None, timeout=60, progress=True):
    """Fetch the image (resumable) to path (default $DLBENCH_DATA/scream/scream.jpg) and check
    that it decodes; an undecodable download is deleted."""
    found = default_path()
    if path is None and file_status(found) == "real":
        return found
    path = Path(path) if path is not None else files.dataset_folder(FOLDER) / FILENAME
    by_hand = f"download it with a browser and save it as {path}"
    files.download_file(URL, path, None, by_hand=by_hand, timeout=timeout, progress=progress)
    try:
        load_scream(path)
    except UserError as err:
        path.unlink()
        raise UserError(f"the file downloaded from {URL} is unusable ({err}); it was deleted; {by_hand}") from None
    return path


class ScreamDSprites(DSpritesVariant):
    """dSprites inverted on a random, colour-shifted 64 x 64 patch of The Scream.

    path, generate: the dSprites file, as for DSprites. image_path: the Scream image (default:
    see default_path). scream_image: an (H, W, 3) array (uint8, or floats in [0, 1]) used as the
    already-shrunk image instead of reading a file (tests, or another picture).
    """

    name = NAME
    randomness = "a patch of The Scream"

    def __init__(self, path=None, generate=True, image_path=None, scream_image=None):
        # the image first: a missing image should stop us before dSprites is generated
        if scream_image is not None:
            self.scream = checked_scream(scream_image, "scream_image")
        else:
            self.scream = load_scream(Path(image_path) if image_path is not None else default_path())
        super().__init__(path=path, generate=generate)
        self._scream_on = {}  # the image as a torch tensor, per device

    def _corner_limits(self):
        return self.scream.shape[1] - PATCH, self.scream.shape[2] - PATCH

    def draw_numpy(self, num, random_state):
        row_limit, col_limit = self._corner_limits()
        rows = random_state.randint(0, row_limit, size=num)
        cols = random_state.randint(0, col_limit, size=num)
        shifts = random_state.uniform(0.0, 1.0, size=(num, 3)).astype(np.float32)
        offsets = np.arange(PATCH)
        return (self.scream, np.arange(3)[None, :, None, None], (rows[:, None] + offsets)[:, None, :, None],
                (cols[:, None] + offsets)[:, None, None, :], shifts[:, :, None, None])

    def draw_torch(self, num, generator, device):
        import torch

        key = str(device)
        if key not in self._scream_on:
            self._scream_on[key] = torch.as_tensor(self.scream, device=device)
        row_limit, col_limit = self._corner_limits()
        rows = torch.randint(0, row_limit, (num,), generator=generator, device=device)
        cols = torch.randint(0, col_limit, (num,), generator=generator, device=device)
        shifts = torch.rand((num, 3), generator=generator, device=device)
        offsets = torch.arange(PATCH, device=device)
        return (self._scream_on[key], torch.arange(3, device=device)[None, :, None, None],
                (rows[:, None] + offsets)[:, None, :, None], (cols[:, None] + offsets)[:, None, None, :],
                shifts[:, :, None, None])

    def compose(self, masks, params):
        scream, channels, rows, cols, shifts = params
        background = (scream[channels, rows, cols] + shifts) / 2  # (n, 3, 64, 64)
        # masks are exactly 0 or 1: the background off the sprite, its inverse on it, both exact
        return background * (1 - masks) + (1 - background) * masks

    # dlb_data's protocol: this dataset's file is the image (the dSprites file is dsprites')
    default_path = staticmethod(default_path)
    file_status = staticmethod(file_status)
    verify_file = staticmethod(verify_file)
    describe = staticmethod(describe)
    download = staticmethod(download)
    make = None  # the image cannot be generated; dSprites is generated on first use
