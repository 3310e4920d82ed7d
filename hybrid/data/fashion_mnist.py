"""Zalando's Fashion-MNIST (70,000 clothing images, 28x28, 10 classes) as a DataModule.

Read from the four standard IDX files in a folder, gzipped or plain; nothing is downloaded,
ever. On Debian, ``apt-get install -y dataset-fashion-mnist`` installs them in
``/usr/share/datasets/fashion-mnist``, the default ``root``.

IDX format: the magic bytes ``00 00 08 NDIM`` (unsigned bytes, ``NDIM`` dimensions), one
big-endian uint32 per dimension, then the values row by row.
"""

import gzip
import math
import zlib
from pathlib import Path
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Lt
from sklearn.model_selection import train_test_split

from ..errors import ConfigError
from ._memory import InMemoryDataModule, Pool

__all__ = ["FashionMNISTDataModule", "read_idx", "IDX_FILES"]

#: Where ``apt-get install -y dataset-fashion-mnist`` puts the files.
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"

#: The four files, by role; each may also carry a ``.gz`` suffix.
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

_MAGIC = b"\x00\x00\x08"  # two zero bytes, then type code 0x08: unsigned bytes


def read_idx(path) -> np.ndarray:
    """One IDX file of unsigned bytes as an array; ``.gz`` files are decompressed.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray of uint8, of the shape the file's header gives (read-only)

    Raises
    ------
    ConfigError
        When the file cannot be read, is not an IDX file of unsigned bytes (bad magic), or
        holds more or fewer values than its header says; the message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny-idx1-ubyte"
    >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path)
    array([7, 8, 9], dtype=uint8)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    if len(data) < 4 or data[:3] != _MAGIC:
        raise ConfigError(f"{path}: not an IDX file of unsigned bytes: it starts with "
                          f"{data[:4].hex(' ') or 'nothing'}, expected 00 00 08 and the number "
                          "of dimensions")
    ndim, offset = data[3], 4 + 4 * data[3]
    if len(data) < offset:
        raise ConfigError(f"{path}: truncated IDX header ({ndim} dimensions need {offset} bytes, "
                          f"the file has {len(data)})")
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - offset != math.prod(shape):
        raise ConfigError(f"{path}: the header gives shape {shape} ({math.prod(shape)} values) "
                          f"but {len(data) - offset} follow it")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


class FashionMNISTDataModule(InMemoryDataModule):
    """The standard Fashion-MNIST split: 60,000 train (less a validation share), 10,000 test.

    Batches are ``(image, label, index)``. ``index`` names the image uniquely: 0..59,999 are
    the rows of the training files, 60,000..69,999 those of the test files (60,000 + row; in
    general, the number of training images + row). Validation images are a seeded, stratified
    share of the training files, so their indices lie in 0..59,999 too. Pixels are scaled by
    the training split's mean and standard deviation.

    Parameters
    ----------
    root : str, default="/usr/share/datasets/fashion-mnist"
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or ``.gz``.
    batch_size : int, default=128
    val_fraction : float, default=1/12
        Share of the training files held out for validation (checkpoint selection):
        ``round(val_fraction * n)`` images, stratified by class; the default keeps 5,000 of
        the 60,000.
    seed : int, default=0
        Seeds the subsets, the validation split and the training shuffle.
    num_workers : int, default=0
        The data sit in memory; worker processes would only add start-up time.
    max_train_samples : int, default=None
        Use only this many images of the training files (a seeded, stratified subset, drawn
        before the validation split); None uses all 60,000. For quick tests and CI.
    max_test_samples : int, default=None
        Likewise for the 10,000 test images.
    normalization : tuple of float, default=None
        ``(mean, std)`` to scale raw 0..255 pixels with; None computes them on the training
        split. An audit on other data passes the trained model's own statistics here.

    Attributes
    ----------
    value_range : tuple of float
        Raw pixels run from 0 (background) to 255 (garment), as stored in the files.
    normalization : tuple of float
        ``(mean, std)`` the pixels were scaled with, set by ``setup``.
    splits : dict of str to TensorDataset
        ``train``, ``val`` and ``test``, each ``(images, labels, index)`` sorted by index.
    """

    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
    input_shape = (1, 28, 28)
    value_range = (0.0, 255.0)

    def __init__(self, root: str = DEFAULT_ROOT, batch_size: Annotated[int, Gt(0)] = 128,
                 val_fraction: Annotated[float, Gt(0), Lt(1)] = 1 / 12, seed: int = 0,
                 num_workers: Annotated[int, Ge(0)] = 0,
                 max_train_samples: Annotated[int, Gt(0)] | None = None,
                 max_test_samples: Annotated[int, Gt(0)] | None = None,
                 normalization: tuple[float, Annotated[float, Gt(0)]] | None = None):
        super().__init__()
        self.save_hyperparameters()

    def _load(self) -> Pool:
        arrays = _read_files(Path(self.hparams.root))
        n_train = len(arrays["train_labels"])
        images = np.concatenate([arrays["train_images"], arrays["test_images"]])[:, None]
        labels = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
        seed = self.hparams.seed
        train = _subset(np.arange(n_train), labels, self.hparams.max_train_samples, seed,
                        "max_train_samples")
        test = _subset(np.arange(n_train, len(labels)), labels, self.hparams.max_test_samples,
                       seed, "max_test_samples")
        train, val = _split(train, labels, round(self.hparams.val_fraction * len(train)), seed,
                            "val_fraction")
        return Pool(images, labels, {"train": train, "val": val, "test": test})


def _read_files(root: Path) -> dict[str, np.ndarray]:
    """The four IDX files under ``root``, checked to be Fashion-MNIST-shaped."""
    paths = {role: _find(root, name) for role, name in IDX_FILES.items()}
    missing = [IDX_FILES[role] for role, path in paths.items() if path is None]
    if missing:
        raise ConfigError(
            f"data.params.root: {root} lacks {', '.join(f'{name}[.gz]' for name in missing)}; "
            "install Fashion-MNIST with `apt-get install -y dataset-fashion-mnist` or set "
            "data.params.root to the folder holding the four IDX files")
    arrays = {role: read_idx(path) for role, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ConfigError(f"{paths[f'{split}_images']}: expected images of shape "
                              f"(n, 28, 28), got {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ConfigError(f"{paths[f'{split}_labels']}: expected {len(images)} labels, one "
                              f"per image, got shape {labels.shape}")
        if labels.max(initial=0) >= len(FashionMNISTDataModule.class_names):
            raise ConfigError(f"{paths[f'{split}_labels']}: label {labels.max()} is not a "
                              "Fashion-MNIST class (0..9)")
    return arrays


def _find(root: Path, name: str) -> Path | None:
    """``root/name.gz`` or ``root/name``, whichever exists (gzipped first)."""
    return next((p for p in (root / f"{name}.gz", root / name) if p.is_file()), None)


def _subset(rows: np.ndarray, labels: np.ndarray, size: int | None, seed: int,
            key: str) -> np.ndarray:
    """A seeded, stratified subset of ``size`` rows; all of them when ``size`` is None or
    not smaller."""
    if size is None or size >= len(rows):
        return rows
    return _split(rows, labels, size, seed, key)[1]


def _split(rows: np.ndarray, labels: np.ndarray, size: int, seed: int,
           key: str) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` as (rest, part): ``part`` holds ``size`` rows, both stratified by label."""
    try:
        return tuple(train_test_split(rows, test_size=size, stratify=labels[rows],
                                      random_state=seed))
    except ValueError as exc:
        raise ConfigError(f"key 'data.params.{key}': cannot draw {size} of {len(rows)} images "
                          f"with every class in both parts ({exc})") from None
