"""Data modules by name. Each yields ``(image, label, index)`` batches and exposes
``class_names``, ``num_classes``, ``input_shape``, ``value_range``, ``normalization`` and
``split_dataloader(split)``.
"""

from ..registry import Registry
from .digits import DigitsDataModule

__all__ = ["DATAMODULES", "DigitsDataModule"]

DATAMODULES = Registry("data set")
DATAMODULES.register("digits", DigitsDataModule)
