"""Data modules by name. Each yields ``(image, label, index)`` batches and exposes
``class_names``, ``num_classes``, ``input_shape``, ``value_range``, ``normalization`` (one
``(mean, std)`` over all channels), ``display_images(split)`` and ``split_dataloader(split)``.

A data module with concept labels also exposes ``concept_names`` (a tuple of str, e.g.
``"color=red"``) and yields ``(image, label, index, concepts)`` batches, ``concepts`` a float32
tensor of shape (batch, len(concept_names)) with values in [0, 1]. Without concept labels,
``concept_names`` is an empty tuple.

All four hold their images in memory and share that machinery (``setup``, scaling, loaders,
``display_images``) through ``_memory.InMemoryDataModule``: a new data set of that kind keeps
its own ``__init__`` (the config checks its parameters there) and only implements ``_load``,
returning every raw image, label and concept with the rows of each split.
"""

from ..registry import Registry
from .digits import DigitsDataModule
from .fashion_mnist import FashionMNISTDataModule
from .image_folder import ImageFolderDataModule
from .shapes import ShapesDataModule

__all__ = ["DATAMODULES", "DigitsDataModule", "FashionMNISTDataModule", "ImageFolderDataModule",
           "ShapesDataModule"]

DATAMODULES = Registry("data set")
DATAMODULES.register("digits", DigitsDataModule)
DATAMODULES.register("fashion_mnist", FashionMNISTDataModule)
DATAMODULES.register("image_folder", ImageFolderDataModule)
DATAMODULES.register("shapes", ShapesDataModule)
