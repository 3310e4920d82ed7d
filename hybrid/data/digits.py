"""scikit-learn's bundled handwritten digits (1,797 images, 8x8, 10 classes) as a DataModule.

The data ships with scikit-learn, so nothing is downloaded, ever.
"""

from typing import Annotated

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from annotated_types import Ge, Gt, Lt

from ._memory import InMemoryDataModule, Pool, check_fractions

__all__ = ["DigitsDataModule"]


class DigitsDataModule(InMemoryDataModule):
    """Stratified, seeded train/val/test split of scikit-learn's digits.

    Batches are ``(image, label, index)``: ``index`` is the row in ``load_digits()``, so every
    extracted feature can be traced back to its image. Pixels are scaled by the training
    split's mean and standard deviation.

    Parameters
    ----------
    batch_size : int, default=64
    val_fraction : float, default=0.15
        Share of all images held out for validation (checkpoint selection).
    test_fraction : float, default=0.2
        Share of all images held out for the test split.
    seed : int, default=0
        Seeds the split and the training shuffle.
    num_workers : int, default=0
        The data sit in memory; worker processes would only add start-up time.
    shift : int, default=0
        Corruption for audits on shifted data: move every digit this many pixels right
        (negative: left), filling with paper.
    noise_std : float, default=0.0
        Corruption: seeded Gaussian noise on the raw 0..16 pixels, clipped back to 0..16.
    normalization : tuple of float, default=None
        ``(mean, std)`` to scale pixels with; None computes them on the training split. An
        audit on corrupted data passes the trained model's own statistics here.

    Attributes
    ----------
    value_range : tuple of float
        Raw pixel values run from 0 (paper) to 16 (ink): the number of inked cells in each
        4x4 block of the original 32x32 bitmaps.
    normalization : tuple of float
        ``(mean, std)`` of the training split's raw pixels, set by ``setup``; a deployed model
        must scale its input the same way.
    """

    class_names = tuple(str(d) for d in range(10))
    input_shape = (1, 8, 8)
    value_range = (0.0, 16.0)

    def __init__(self, batch_size: Annotated[int, Gt(0)] = 64,
                 val_fraction: Annotated[float, Gt(0), Lt(1)] = 0.15,
                 test_fraction: Annotated[float, Gt(0), Lt(1)] = 0.2, seed: int = 0,
                 num_workers: Annotated[int, Ge(0)] = 0, shift: int = 0,
                 noise_std: Annotated[float, Ge(0)] = 0.0,
                 normalization: tuple[float, Annotated[float, Gt(0)]] | None = None):
        super().__init__()
        check_fractions(val_fraction, test_fraction)
        self.save_hyperparameters()

    def _load(self) -> Pool:
        images, labels = load_digits(return_X_y=True)
        images = self._corrupted(images.reshape(-1, *self.input_shape).astype(np.float32))
        index = np.arange(len(labels))
        rest, test = train_test_split(index, test_size=self.hparams.test_fraction,
                                      stratify=labels, random_state=self.hparams.seed)
        val_share = self.hparams.val_fraction / (1 - self.hparams.test_fraction)
        train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest],
                                      random_state=self.hparams.seed)
        return Pool(images, labels, {"train": train, "val": val, "test": test})

    def _corrupted(self, images: np.ndarray) -> np.ndarray:
        """The ``shift`` and ``noise_std`` corruptions; the identity by default."""
        shift, noise = self.hparams.shift, self.hparams.noise_std
        if shift:
            moved = np.zeros_like(images)
            width = images.shape[-1]
            if shift > 0:
                moved[..., shift:] = images[..., :width - shift]
            else:
                moved[..., :width + shift] = images[..., -shift:]
            images = moved
        if noise:
            rng = np.random.default_rng(self.hparams.seed + 1)
            images = np.clip(images + rng.normal(0, noise, images.shape), *self.value_range)
        return images.astype(np.float32)
