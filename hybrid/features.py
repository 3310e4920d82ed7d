"""The feature table: where the torch side hands over to the numpy side.

Extraction writes one table per split; surrogates, fidelity and reports read them with numpy
alone. On disk a table is a folder of plain ``.npy`` files (no pickles) and a small JSON::

    features/train/table.json   format, version, row count, names, each array's shape and dtype
    features/train/X.npy        (n, d) float32      teacher.npy, y.npy, index.npy: (n,) int64
    features/train/proba.npy    (n, k) float32      images.npy, concepts.npy when present

:meth:`FeatureTable.load` memory-maps the arrays (``np.load(mmap_mode="r")``): a split larger
than memory is read page by page as it is used, never whole. :class:`FeatureTableWriter` fills
the files batch by batch at row offsets, so extraction holds a few batches, not the split, and
commits the folder atomically: a killed extraction leaves no table that loads. Tables of
older runs, one ``.npz`` file per split, still load (into memory).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from . import _io
from .errors import RunDirectoryError

__all__ = ["FeatureTable", "FeatureTableWriter"]

FORMAT = "hybrid.feature_table"
VERSION = 1
_META = "table.json"
#: Every array a table may hold, with the dtype a writer gives it unless told otherwise.
_DTYPES = {"X": np.float32, "teacher": np.int64, "proba": np.float32, "y": np.int64,
           "index": np.int64, "images": np.uint8, "concepts": np.float32}
_REQUIRED = ("X", "teacher", "proba", "y", "index")


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """Features of one split with the CNN's answers and the true labels.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        Penultimate-layer embeddings (or concept activations). A read-only memory map when
        the table was loaded from its folder.
    teacher : ndarray of shape (n_samples,), int64
        The CNN's predicted class: the labels surrogates imitate.
    proba : ndarray of shape (n_samples, n_classes), float32
        The CNN's class probabilities.
    y : ndarray of shape (n_samples,), int64
        True labels.
    index : ndarray of shape (n_samples,), int64
        Each sample's id in the data set, so rows can be traced back to images.
    feature_names : tuple of str
        One per column of ``X``.
    class_names : tuple of str
        One per class, by label.
    images : ndarray of shape (n_samples, H, W) or (n_samples, H, W, 3), uint8, default=None
        Display copies of the images, for galleries of the rows (e.g. the disagreements).
    concepts : ndarray of shape (n_samples, n_concepts), float32, default=None
        True concept labels, when the data set has them (0/1 or in [0, 1]).
    concept_names : tuple of str, default=()
        One per column of ``concepts``.
    """

    X: np.ndarray
    teacher: np.ndarray
    proba: np.ndarray
    y: np.ndarray
    index: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    images: np.ndarray | None = None
    concepts: np.ndarray | None = None
    concept_names: tuple[str, ...] = ()

    def __post_init__(self):
        n = len(self.X)
        if not (len(self.teacher) == len(self.proba) == len(self.y) == len(self.index) == n):
            raise ValueError("X, teacher, proba, y and index must have one row per sample")
        if self.X.ndim != 2 or self.X.shape[1] != len(self.feature_names):
            raise ValueError(f"X has shape {self.X.shape} but there are "
                             f"{len(self.feature_names)} feature names")
        if self.concepts is not None and self.concepts.shape != (n, len(self.concept_names)):
            raise ValueError(f"concepts has shape {self.concepts.shape} but there are {n} rows "
                             f"and {len(self.concept_names)} concept names")

    def __len__(self) -> int:
        return len(self.X)

    @property
    def teacher_accuracy(self) -> float:
        """How often the CNN is right on this split."""
        return float(np.mean(self.teacher == self.y)) if len(self) else float("nan")

    def in_memory(self) -> FeatureTable:
        """The table with every array read into memory (a loaded table's are memory-mapped)."""
        return replace(self, **{name: np.array(value) for name, value in self.arrays().items()})

    def frame(self):
        """``X`` as a pandas DataFrame whose columns are the feature names.

        A view of ``X``, not a copy (pandas copies arrays by default): a memory-mapped ``X``
        stays on disk. Read it, don't write to it.
        """
        import pandas as pd

        return pd.DataFrame(self.X, columns=list(self.feature_names), index=self.index,
                            copy=False)

    def arrays(self) -> dict[str, np.ndarray]:
        """The table's arrays by name, those it lacks (``images``, ``concepts``) left out."""
        arrays = {name: getattr(self, name) for name in _DTYPES}
        return {name: array for name, array in arrays.items() if array is not None}

    def save(self, path) -> Path:
        """Write the table as a folder of ``.npy`` files, atomically (see the module docstring).

        Arrays keep their dtypes. A table at ``path`` is replaced, and so is an older run's
        ``.npz`` file of the same name.
        """
        arrays = self.arrays()
        writer = FeatureTableWriter(path, len(self), self.feature_names, self.class_names,
                                    self.concept_names,
                                    dtypes={name: a.dtype for name, a in arrays.items()})
        with writer:
            writer.write(0, **arrays)
        return writer.path

    @classmethod
    def load(cls, path) -> FeatureTable:
        """The table at ``path``: a table folder (its arrays memory-mapped, read-only) or an
        older run's ``.npz`` file (read into memory).

        ``features/train`` and ``features/train.npz`` name the same table: ``path`` is read
        where it exists, otherwise the other name.
        """
        path = _located(Path(path))
        return cls(**(_read_folder(path) if path.is_dir() else _read_npz(path)))


class FeatureTableWriter:
    """Writes one split's table batch by batch, then commits it atomically.

    Each array is preallocated on disk (``numpy.lib.format.open_memmap``, shape ``(n_rows,
    ...)``) at its first :meth:`write`, in a temporary folder next to ``path``; every batch
    is copied in at its row offset, so memory holds a batch, not the split. :meth:`commit`
    checks that every row of every array was written, flushes and fsyncs the files, writes
    ``table.json`` and renames the folder onto ``path``. Until then ``path`` holds the old
    table, or none: a killed writer leaves only its temporary folder, which the next writer
    of the same table removes. Use it as a context manager to commit on success and discard
    the folder on an exception. One writer per table at a time.

    Parameters
    ----------
    path : str or Path
        The table's folder, e.g. ``run.features("train")``.
    n_rows : int
        Rows of the split.
    feature_names, class_names : sequence of str
        Names of the columns of ``X`` and of ``proba``.
    concept_names : sequence of str, default=()
        Names of the columns of ``concepts``, when it is written.
    dtypes : mapping of str to dtype, default=None
        dtype of an array, by name, where it is not the usual one (``X``, ``proba`` and
        ``concepts`` float32; ``teacher``, ``y`` and ``index`` int64; ``images`` uint8).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "train"
    >>> with FeatureTableWriter(path, 4, ("dim_0", "dim_1"), ("a", "b")) as writer:
    ...     for start in (0, 2):
    ...         rows = np.arange(start, start + 2)
    ...         writer.write(start, X=np.ones((2, 2)), proba=np.eye(2), y=rows % 2, index=rows)
    >>> FeatureTable.load(path).teacher.tolist()
    [0, 1, 0, 1]
    """

    def __init__(self, path, n_rows: int, feature_names, class_names, concept_names=(),
                 dtypes=None):
        self.path = Path(path)
        self.n_rows = int(n_rows)
        self.names = {"feature_names": [str(n) for n in feature_names],
                      "class_names": [str(n) for n in class_names],
                      "concept_names": [str(n) for n in concept_names]}
        self._dtypes = {name: np.dtype(d) for name, d in {**_DTYPES, **(dtypes or {})}.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in _io.stale_temporaries(self.path):
            shutil.rmtree(stale, ignore_errors=True)
        self._folder = _io.temporary_folder(self.path)
        self._arrays: dict[str, np.memmap] = {}
        self._written: dict[str, np.ndarray] = {}

    def __enter__(self) -> FeatureTableWriter:
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.commit()
        else:
            self.abort()

    def write(self, rows, **arrays) -> None:
        """Copy one batch of rows into the table.

        Parameters
        ----------
        rows : int or array-like of int
            Where the batch goes: the row of its first row (its rows are consecutive), or the
            row of each of its rows (e.g. a distributed sampler's positions).
        **arrays : array-like
            Any of ``X``, ``proba``, ``teacher``, ``y``, ``index``, ``images``, ``concepts``,
            each with the same number of rows; converted to the array's dtype. ``teacher``
            defaults to ``proba.argmax(axis=1)`` when ``proba`` is given without it.
        """
        unknown = sorted(set(arrays) - set(_DTYPES))
        if unknown:
            raise TypeError(f"unknown arrays {', '.join(unknown)}; a table holds "
                            f"{', '.join(_DTYPES)}")
        if "proba" in arrays and "teacher" not in arrays:
            arrays["teacher"] = np.asarray(arrays["proba"]).argmax(axis=1)
        sizes = {len(a) for a in arrays.values()}
        if len(sizes) > 1:
            raise ValueError(f"arrays of one batch differ in rows: {sorted(sizes)}")
        rows = _rows(rows, sizes.pop() if sizes else 0, self.n_rows)
        for name, batch in arrays.items():
            batch = np.asarray(batch)
            if not np.can_cast(batch.dtype, self._dtypes[name], casting="same_kind"):
                raise TypeError(f"{name}: {batch.dtype} values do not fit its dtype "
                                f"{self._dtypes[name]}")
            self._array(name, batch.shape[1:])[rows] = batch
            self._written[name][rows] = True

    def commit(self) -> Path:
        """Check, sync and rename the table into place; return its path."""
        missing = [name for name in _REQUIRED if name not in self._arrays]
        partial = [f"{name} ({int((~done).sum())} rows)" for name, done in self._written.items()
                   if not done.all()]
        if missing or partial:
            self.abort()
            raise ValueError(f"{self.path}: table not committed: never written: "
                             f"{', '.join(missing) or 'none'}; rows not written: "
                             f"{', '.join(partial) or 'none'}")
        meta = {"format": FORMAT, "version": VERSION, "n_rows": self.n_rows, **self.names,
                "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.str}
                           for name, a in self._arrays.items()}}
        try:
            for array in self._arrays.values():
                array.flush()
            self._arrays.clear()  # closes the maps
            _io.write_json(self._folder / _META, meta)
            FeatureTable(**_read_folder(self._folder))  # names against shapes
            for file in self._folder.iterdir():
                _io.fsync(file)
            _io.fsync(self._folder)
            _io.replace_folder(self._folder, self.path)
        except BaseException:
            self.abort()
            raise
        legacy = self.path.with_name(self.path.name + ".npz")
        if legacy.is_file():  # the same table in the older layout: one name, one table
            legacy.unlink()
        _io.fsync(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Discard everything written; ``path`` keeps what it held."""
        self._arrays.clear()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _array(self, name: str, shape: tuple) -> np.memmap:
        """The preallocated file of ``name``, created on first use with rows of ``shape``."""
        if name not in self._arrays:
            self._arrays[name] = open_memmap(self._folder / f"{name}.npy", mode="w+",
                                             dtype=self._dtypes[name],
                                             shape=(self.n_rows, *shape))
            self._written[name] = np.zeros(self.n_rows, dtype=bool)
        elif self._arrays[name].shape[1:] != shape:
            raise ValueError(f"{name}: rows of shape {shape}, earlier batches "
                             f"{self._arrays[name].shape[1:]}")
        return self._arrays[name]


def _rows(rows, size: int, n_rows: int):
    """``write``'s ``rows`` as an index of ``size`` rows (a slice or positions), checked."""
    if np.ndim(rows) == 0:
        start = int(rows)
        if start < 0 or start + size > n_rows:
            raise ValueError(f"rows {start}:{start + size} are outside the table's {n_rows} rows")
        return slice(start, start + size)
    rows = np.asarray(rows)
    if rows.shape != (size,) or (size and not np.issubdtype(rows.dtype, np.integer)):
        raise ValueError(f"rows: expected {size} integer positions, got {rows.dtype} "
                         f"of shape {rows.shape}")
    if size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"rows: positions {rows.min()}..{rows.max()} are outside the "
                         f"table's {n_rows} rows")
    return rows


def _located(path: Path) -> Path:
    """``path``, or the other layout's name of the same table where only that exists."""
    if path.exists():
        return path
    other = path.with_suffix("") if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    if other.exists():
        return other
    raise RunDirectoryError(f"{path}: no feature table; run `hybrid extract` first")


def _read_folder(path: Path) -> dict:
    """A table folder's arrays (memory-mapped) and names, as FeatureTable's arguments."""
    try:
        meta = json.loads((path / _META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirectoryError(f"{path}: not a feature table (no {_META})") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("version"), int):
        raise RunDirectoryError(f"{path / _META}: not a hybrid feature table")
    if meta["version"] > VERSION:
        raise RunDirectoryError(f"{path}: feature table version {meta['version']} is newer than "
                                f"this hybrid reads ({VERSION}); upgrade hybrid")
    _require(path, meta["arrays"])
    arrays = {}
    for name, spec in meta["arrays"].items():
        array = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        if list(array.shape) != spec["shape"] or array.dtype.str != spec["dtype"]:
            raise RunDirectoryError(f"{path / name}.npy: shape {array.shape} {array.dtype}, "
                                    f"{_META} says {tuple(spec['shape'])} {spec['dtype']}")
        arrays[name] = array
    return {**arrays, **_names(meta)}


def _read_npz(path: Path) -> dict:
    """An older run's ``.npz`` table, read into memory, as FeatureTable's arguments."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    _require(path, arrays)
    names = {key: arrays.pop(key, ()) for key in ("feature_names", "class_names", "concept_names")}
    return {**{k: v for k, v in arrays.items() if k in _DTYPES}, **_names(names)}


def _require(path: Path, arrays) -> None:
    missing = set(_REQUIRED) - set(arrays)
    if missing:
        raise RunDirectoryError(f"{path}: feature table lacks {', '.join(sorted(missing))}")


def _names(source) -> dict:
    return {key: tuple(str(n) for n in source.get(key, ()))
            for key in ("feature_names", "class_names", "concept_names")}
