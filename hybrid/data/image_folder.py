"""A user's own images, one sub-folder per class, as a DataModule, with optional concept labels.

Layouts::

    root/<class>/<image>                  seeded, stratified train/val/test split
    root/{train,val,test}/<class>/<image> the folders are the splits (val, test optional:
                                          a missing one is carved out of train)
    root/concepts.csv                     optional concept labels (see below)

Class names are the sorted names of the class folders (of ``root/train`` in the second
layout). Images (PNG, JPEG, ...) are decoded by :mod:`hybrid.images`: converted to grayscale
or RGB, resized to ``image_size``, pixels 0..255.

Concept labels: a CSV file with the header ``file,<concept>,<concept>,...`` and one row per
image, ``file`` relative to ``root`` (``cat/001.png``), each value a number in [0, 1] (0/1
for present/absent, or a degree). With it, batches are ``(image, label, index, concepts)``.
"""

import csv
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge, Gt, Lt
from sklearn.model_selection import train_test_split

from ..errors import ConfigError, HybridError
from ..images import IMAGE_SUFFIXES, load_images
from ._memory import SPLITS, InMemoryDataModule, Pool, check_fractions

__all__ = ["ImageFolderDataModule"]

_CONCEPTS_FILE = "concepts.csv"
_LOAD_CHUNK = 256  # images decoded at once: bounds the float32 working copy


class ImageFolderDataModule(InMemoryDataModule):
    """Images from ``root/<class>/<image>`` (or ``root/<split>/<class>/<image>``), in memory.

    Batches are ``(image, label, index)``, or ``(image, label, index, concepts)`` with
    concept labels. ``index`` is the image's position in :attr:`files`, the sorted list of
    every image of every split, so ``files[index]`` names the image behind a row. Pixels are
    scaled by the training split's mean and standard deviation (one over all channels).

    Parameters
    ----------
    root : str
        Required. The folder holding one sub-folder of images per class, or ``train``,
        ``val`` and ``test`` folders that each do.
    image_size : (int, int), default=(64, 64)
        ``(height, width)`` every image is resized to.
    channels : {1, 3}, default=3
        1 reads images as grayscale, 3 as RGB.
    batch_size : int, default=64
    val_fraction : float, default=0.15
        Share of the images held out for validation when there is no ``root/val`` folder.
    test_fraction : float, default=0.2
        Share of the images held out for testing when there is no ``root/test`` folder.
    seed : int, default=0
        Seeds the split and the training shuffle.
    num_workers : int, default=0
        The data sit in memory; worker processes would only add start-up time.
    normalization : tuple of float, default=None
        ``(mean, std)`` to scale raw 0..255 pixels with; None computes them on the training
        split. An audit on other data passes the trained model's own statistics here.
    extensions : tuple of str, default=(".png", ".jpg", ".jpeg", ".bmp", ".gif")
        File name endings read as images (case-insensitive); other files are skipped.
    concepts_csv : str, default=None
        The concept label file; None reads ``root/concepts.csv`` when it exists.

    Attributes
    ----------
    class_names : tuple of str
        Sorted class folder names, set by ``setup``.
    concept_names : tuple of str
        The CSV's concept columns, in order; empty without concept labels.
    files : list of Path
        Every image, sorted by path; set by ``setup``.
    normalization : tuple of float
        ``(mean, std)`` the pixels were scaled with, set by ``setup``.
    splits : dict of str to TensorDataset
        ``train``, ``val`` and ``test``, each ``(images, labels, index[, concepts])``
        sorted by index.
    """

    value_range = (0.0, 255.0)

    def __init__(self, root: str | None = None,
                 image_size: tuple[Annotated[int, Gt(0)], Annotated[int, Gt(0)]] = (64, 64),
                 channels: Literal[1, 3] = 3, batch_size: Annotated[int, Gt(0)] = 64,
                 val_fraction: Annotated[float, Gt(0), Lt(1)] = 0.15,
                 test_fraction: Annotated[float, Gt(0), Lt(1)] = 0.2, seed: int = 0,
                 num_workers: Annotated[int, Ge(0)] = 0,
                 normalization: tuple[float, Annotated[float, Gt(0)]] | None = None,
                 extensions: tuple[str, ...] = IMAGE_SUFFIXES, concepts_csv: str | None = None):
        super().__init__()
        if root is None:
            raise ConfigError("key 'data.params.root' is required: the folder holding one "
                              "sub-folder of images per class")
        check_fractions(val_fraction, test_fraction)
        self.save_hyperparameters()
        self.class_names: tuple[str, ...] = ()
        self.files: list[Path] = []

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.hparams.channels, *self.hparams.image_size)

    def _load(self) -> Pool:
        root = Path(self.hparams.root)
        folders = _split_folders(root)
        self.class_names = _class_names(folders["train"], root)
        self.files, labels, origin = self._listing(folders)
        rows = self._assign(labels, origin, folders)
        return Pool(self._decode(), labels, rows, self._concepts(root))

    def _listing(self, folders: dict[str, Path]) -> tuple[list[Path], np.ndarray, np.ndarray]:
        """Every image, sorted by path, with its label and the split folder it came from."""
        suffixes = tuple(s.lower() if s.startswith(".") else f".{s.lower()}"
                         for s in self.hparams.extensions)
        found = []
        for split, folder in folders.items():
            for sub in sorted(d for d in folder.iterdir() if d.is_dir()):
                if sub.name not in self.class_names:
                    raise ConfigError(f"data.params.root: {sub} is not a class of "
                                      f"{folders['train']} ({', '.join(self.class_names)})")
                files = sorted(p for p in sub.rglob("*")
                               if p.suffix.lower() in suffixes and p.is_file())
                if not files and split == "train":
                    raise ConfigError(f"data.params.root: {sub} holds no image files "
                                      f"({', '.join(suffixes)})")
                label = self.class_names.index(sub.name)
                found += [(path, label, split) for path in files]
        found.sort(key=lambda entry: entry[0])
        files, labels, origin = zip(*found)
        return list(files), np.array(labels, dtype=np.int64), np.array(origin)

    def _assign(self, labels: np.ndarray, origin: np.ndarray,
                folders: dict[str, Path]) -> dict[str, np.ndarray]:
        """Rows of each split: a split's own folder, else a stratified share of train."""
        rows = {split: np.flatnonzero(origin == split) for split in SPLITS}
        pool, share = rows["train"], 1.0
        for split in ("test", "val"):
            if split in folders:
                continue
            fraction = self.hparams[f"{split}_fraction"]
            try:
                pool, rows[split] = train_test_split(pool, test_size=fraction / share,
                                                     stratify=labels[pool],
                                                     random_state=self.hparams.seed)
            except ValueError as exc:
                raise ConfigError(
                    f"data.params.root: cannot hold out {split}_fraction={fraction} of the "
                    f"images in {folders['train']} with every class on both sides ({exc}); add "
                    f"images or make a {split} folder") from None
            share -= fraction
        rows["train"] = pool
        for split, split_rows in rows.items():
            if not len(split_rows):
                raise ConfigError(f"data.params.root: no images for the {split} split "
                                  f"({folders[split]})")
        return {split: np.sort(split_rows) for split, split_rows in rows.items()}

    def _decode(self) -> np.ndarray:
        """Every file as uint8 pixels of shape (n, channels, height, width)."""
        channels, height, width = self.input_shape
        images = np.empty((len(self.files), channels, height, width), dtype=np.uint8)
        for start in range(0, len(self.files), _LOAD_CHUNK):
            chunk = self.files[start:start + _LOAD_CHUNK]
            try:
                pixels = load_images(chunk, channels, height, width)
            except HybridError as exc:
                raise ConfigError(str(exc)) from None
            images[start:start + len(chunk)] = np.clip(np.round(pixels), 0, 255)
        return images

    def _concepts(self, root: Path) -> np.ndarray | None:
        """Concept labels of every file, (n, n_concepts) float32, or None without a CSV."""
        path = self.hparams.concepts_csv
        if path is None:
            path = root / _CONCEPTS_FILE
            if not path.is_file():
                return None
        self.concept_names, values = _read_concepts(Path(path), root, self.files)
        return values


def _split_folders(root: Path) -> dict[str, Path]:
    """The folders holding class sub-folders, by split; ``train`` is ``root`` itself unless
    ``root/train`` exists."""
    if not root.is_dir():
        raise ConfigError(f"data.params.root: {root}: no such folder")
    if not (root / "train").is_dir():
        return {"train": root}
    return {split: root / split for split in SPLITS if (root / split).is_dir()}


def _class_names(folder: Path, root: Path) -> tuple[str, ...]:
    names = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if not names:
        raise ConfigError(f"data.params.root: {folder} has no class folders; expected "
                          f"{root}/<class>/<image> (or {root}/train/<class>/<image>)")
    return names


def _read_concepts(path: Path, root: Path,
                   files: list[Path]) -> tuple[tuple[str, ...], np.ndarray]:
    """Concept names and the (len(files), n_concepts) float32 values from the CSV at ``path``."""
    if not path.is_file():
        raise ConfigError(f"data.params.concepts_csv: {path}: no such file")
    rows = {file.relative_to(root).as_posix(): row for row, file in enumerate(files)}
    with path.open(newline="") as stream:
        reader = csv.reader(stream)
        header = [cell.strip() for cell in next(reader, [])]
        names = tuple(header[1:])
        if header[:1] != ["file"] or not names or not all(names) or len(set(names)) < len(names):
            raise ConfigError(f"{path}: the header must be 'file' and then distinct concept "
                              f"names, e.g. file,striped,spotted; got {','.join(header)!r}")
        values = np.full((len(files), len(names)), np.nan, dtype=np.float32)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            where = f"{path}, line {reader.line_num}"
            if len(record) != len(header):
                raise ConfigError(f"{where}: expected {len(header)} values ({','.join(header)}), "
                                  f"got {len(record)}")
            file = Path(record[0].strip()).as_posix()
            if file not in rows:
                reason = "is not one of the data set's images (class folder, extensions)" \
                    if (root / file).is_file() else "does not exist"
                raise ConfigError(f"{where}: file '{file}' {reason} under {root}")
            if not np.isnan(values[rows[file]]).all():
                raise ConfigError(f"{where}: file '{file}' is listed twice")
            values[rows[file]] = [_concept_value(text, where, file, name)
                                  for name, text in zip(names, record[1:])]
    missing = [file for file, row in rows.items() if np.isnan(values[row]).any()]
    if missing:
        raise ConfigError(f"{path}: no concept values for {len(missing)} image(s): "
                          f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}")
    return names, values


def _concept_value(text: str, where: str, file: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: file '{file}', concept '{name}': {text!r} is not a "
                          "number") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: file '{file}', concept '{name}': {text!r} is outside "
                          "[0, 1]")
    return value
