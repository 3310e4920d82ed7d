"""Backbones by name: ``BACKBONES.create(name, in_channels=..., **params)``.

Every backbone returns embeddings of shape (batch, ``num_features``).
"""

from ..registry import Registry
from .cnn import SmallCNN, small_cnn, tiny_cnn

__all__ = ["BACKBONES", "SmallCNN", "small_cnn", "tiny_cnn"]

BACKBONES = Registry("backbone")
BACKBONES.register("small_cnn", small_cnn)
BACKBONES.register("tiny_cnn", tiny_cnn)
