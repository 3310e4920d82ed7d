"""Image files as arrays the CNN reads: list a folder, decode, resize, rescale.

Only Pillow and numpy: a deployed bundle reads images through here without Lightning.

Pixel convention: a file's pixel 0..255 maps linearly onto the data set's raw value range,
black to the low end. For ``load_digits`` (0 = paper, 16 = ink) that means light ink on a
black background, which is how :func:`load_images` reads a digit saved as
``round(value / 16 * 255)``; dark ink on white paper needs the bundle's ``invert`` option.
"""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import HybridError

__all__ = ["IMAGE_SUFFIXES", "list_images", "load_images"]

#: File name endings read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

_MODES = {1: "L", 3: "RGB"}


def list_images(folder) -> list[Path]:
    """Image files under ``folder`` and its sub-folders, sorted by path.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of Path
        Files whose name ends in one of :data:`IMAGE_SUFFIXES`; other files are skipped.

    Raises
    ------
    HybridError
        When ``folder`` is not a folder or holds no image file, naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HybridError(f"{folder}: not a folder")
    paths = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise HybridError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it or "
                          "its sub-folders")
    return paths


def load_images(paths, channels: int, height: int, width: int,
                value_range=(0.0, 255.0)) -> np.ndarray:
    """Decode, convert, resize and rescale image files into one array.

    Parameters
    ----------
    paths : sequence of str or Path
    channels : {1, 3}
        1 reads grayscale (Pillow mode ``L``), 3 reads ``RGB``.
    height, width : int
        Every image is resized to this size when it differs.
    value_range : (float, float), default=(0.0, 255.0)
        Pixel 0 becomes ``value_range[0]`` and pixel 255 ``value_range[1]``, linearly.

    Returns
    -------
    ndarray of shape (n_images, channels, height, width), float32

    Raises
    ------
    HybridError
        When a file cannot be read as an image (missing, empty, truncated, not an image),
        naming the file.
    """
    if channels not in _MODES:
        raise ValueError(f"channels must be one of {sorted(_MODES)}, got {channels}")
    pixels = np.empty((len(paths), channels, height, width), dtype=np.float32)
    for row, path in enumerate(paths):
        pixels[row] = _read(Path(path), _MODES[channels], (width, height))
    low, high = (np.float32(v) for v in value_range)
    return low + pixels * (high - low) / np.float32(255)  # pixel 255 lands exactly on high


def _read(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One file as (channels, height, width) pixels 0..255."""
    try:
        with Image.open(path) as image:
            image = _resized(image.convert(mode), size)  # convert decodes: errors surface here
    except (UnidentifiedImageError, OSError) as exc:
        raise HybridError(f"{path}: cannot read it as an image ({exc})") from None
    array = np.asarray(image, dtype=np.float32)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` at ``size``: area-averaged when shrinking, bicubic when enlarging.

    Area averaging is how ``load_digits`` itself was made (ink counted per 4x4 block of a
    32x32 bitmap), so a large drawing shrinks to what the CNN saw in training.
    """
    if image.size == size:
        return image
    shrinking = image.width >= size[0] and image.height >= size[1]
    return image.resize(size, Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)
