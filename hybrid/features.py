"""The feature table: where the torch side hands over to the numpy side.

Extraction writes one table per split; surrogates, fidelity and reports read them with numpy
alone. On disk a table is one ``.npz`` file (no pickles) holding at least ``X``, ``teacher``,
``proba``, ``y`` and ``index``, plus the feature and class names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _io
from .errors import RunDirectoryError

__all__ = ["FeatureTable"]


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """Features of one split with the CNN's answers and the true labels.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        Penultimate-layer embeddings (or concept activations).
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

    def frame(self):
        """``X`` as a pandas DataFrame whose columns are the feature names."""
        import pandas as pd

        return pd.DataFrame(self.X, columns=list(self.feature_names), index=self.index)

    def save(self, path) -> Path:
        """Write the table atomically as ``.npz``."""
        optional = {} if self.images is None else {"images": self.images}
        if self.concepts is not None:
            optional.update(concepts=self.concepts, concept_names=np.array(self.concept_names))
        return _io.save_npz(path, X=self.X, teacher=self.teacher, proba=self.proba, y=self.y,
                            index=self.index, feature_names=np.array(self.feature_names),
                            class_names=np.array(self.class_names), **optional)

    @classmethod
    def load(cls, path) -> FeatureTable:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise RunDirectoryError(f"{path}: no feature table; run `hybrid extract` first") from None
        missing = {"X", "teacher", "proba", "y", "index", "feature_names", "class_names"} - set(arrays)
        if missing:
            raise RunDirectoryError(f"{path}: feature table lacks {', '.join(sorted(missing))}")
        return cls(
            X=arrays["X"], teacher=arrays["teacher"], proba=arrays["proba"], y=arrays["y"],
            index=arrays["index"], feature_names=tuple(str(n) for n in arrays["feature_names"]),
            class_names=tuple(str(n) for n in arrays["class_names"]),
            images=arrays.get("images"), concepts=arrays.get("concepts"),
            concept_names=tuple(str(n) for n in arrays.get("concept_names", ())),
        )
