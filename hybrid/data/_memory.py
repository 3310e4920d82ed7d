"""The base of the data modules whose images fit in memory: splits, scaling, loaders."""

from typing import NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..errors import ConfigError

__all__ = ["BatchedTensorDataset", "InMemoryDataModule", "Pool", "SPLITS", "batch_as_is",
           "check_fractions"]

#: The split names, in the order the data modules build them.
SPLITS = ("train", "val", "test")


class Pool(NamedTuple):
    """Every image of a data set, unscaled, and which of them make each split.

    ``images`` (n, C, H, W) raw pixels in ``value_range``; ``labels`` (n,) int64;
    ``splits`` maps ``train``, ``val`` and ``test`` to row numbers into the pool, which are
    the batches' ``index``; ``concepts`` (n, n_concepts) float32 in [0, 1], or None.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    concepts: np.ndarray | None = None


class BatchedTensorDataset(TensorDataset):
    """A TensorDataset that hands a loader a whole batch at once: one index per tensor.

    The default loader fetches a batch image by image and stacks them, 15-30 us an image
    (a ceiling of 30-70k images/s, under what a GPU extracts); one index per tensor costs
    about 4 us an image. Pair it with ``collate_fn=batch_as_is``. The batches are the same.
    """

    def __getitems__(self, indices):
        rows = torch.as_tensor(indices)
        return [tensor[rows] for tensor in self.tensors]


def batch_as_is(batch):
    """A loader's ``collate_fn`` for :class:`BatchedTensorDataset`: the batch is made."""
    return batch


class InMemoryDataModule(pl.LightningDataModule):
    """Splits held in memory as TensorDatasets, scaled by one ``(mean, std)``.

    A subclass sets ``class_names``, ``input_shape`` and ``value_range``, calls
    ``save_hyperparameters()`` in its ``__init__`` (whose parameters include ``batch_size``,
    ``seed``, ``num_workers`` and ``normalization``) and implements :meth:`_load`. ``setup``
    then builds :attr:`splits`, each ``(images, labels, index[, concepts])`` sorted by index.

    Attributes
    ----------
    concept_names : tuple of str
        Empty unless the subclass has concept labels.
    normalization : tuple of float
        ``(mean, std)`` the pixels were scaled with: the ``normalization`` parameter, else
        the training split's own, set by ``setup``.
    splits : dict of str to TensorDataset
    """

    concept_names: tuple[str, ...] = ()

    def __init__(self):
        super().__init__()
        self.splits: dict[str, TensorDataset] = {}
        self.normalization: tuple[float, float] | None = None
        self._raw: dict[str, np.ndarray] = {}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _load(self) -> Pool:
        """The data set's images, labels, split rows and concepts, unscaled."""
        raise NotImplementedError

    def setup(self, stage=None):
        if self.splits:
            return
        pool = self._load()
        # The statistics see the training rows in the order _load gives them: float32 sums
        # depend on it, and a seeded config must keep its exact normalization.
        mean, std = self.hparams.normalization or _mean_std(pool.images[pool.splits["train"]])
        self.normalization = (float(mean), float(std))
        for name, rows in pool.splits.items():
            rows = np.sort(rows)
            self._raw[name] = pool.images[rows]
            # torch.tensor copies: scaling in place must leave the raw pixels for display.
            tensors = [torch.tensor(self._raw[name], dtype=torch.float32).sub_(mean).div_(std),
                       torch.from_numpy(pool.labels[rows]), torch.from_numpy(rows)]
            if pool.concepts is not None:
                tensors.append(torch.from_numpy(pool.concepts[rows]))
            self.splits[name] = BatchedTensorDataset(*tensors)

    def display_images(self, split: str) -> np.ndarray:
        """The split's images as uint8, (n, H, W) grayscale or (n, H, W, 3) RGB, in the
        loaders' order; ``value_range`` is stretched to 0..255."""
        images = self._raw[split]
        if images.dtype != np.uint8:
            low, high = self.value_range
            images = np.round((images - low) / (high - low) * 255).astype(np.uint8)
        return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)

    def split_dataloader(self, split: str, shuffle: bool = False, batch_size: int | None = None):
        """Loader over one split, in index order unless ``shuffle``."""
        generator = torch.Generator().manual_seed(self.hparams.seed) if shuffle else None
        return DataLoader(self.splits[split], batch_size=batch_size or self.hparams.batch_size,
                          shuffle=shuffle, generator=generator, collate_fn=batch_as_is,
                          num_workers=self.hparams.num_workers)

    def train_dataloader(self):
        return self.split_dataloader("train", shuffle=True)

    def val_dataloader(self):
        return self.split_dataloader("val")

    def test_dataloader(self):
        return self.split_dataloader("test")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Fail unless the validation and test shares of one pool leave some for training."""
    if val_fraction + test_fraction >= 1:
        raise ConfigError(f"data.params: val_fraction + test_fraction must be below 1, "
                          f"got {val_fraction} + {test_fraction}")


def _mean_std(pixels: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the pixels (uint8 from their histogram: exact, and
    fast on millions); a blank data set (std 0) is left unscaled rather than divided by zero."""
    if pixels.dtype == np.uint8:
        counts = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
        values = np.arange(256, dtype=np.float64)
        mean = counts @ values / counts.sum()
        std = np.sqrt(counts @ (values - mean) ** 2 / counts.sum())
    else:
        mean, std = pixels.mean(), pixels.std()
    return float(mean), float(std) or 1.0
