"""Concepts discovered in a convolution layer by non-negative matrix factorization (CRAFT).

A post-ReLU feature map holds, at each position of each image, a non-negative vector of channel
activations. NMF writes every such vector as a non-negative mix of a few basis vectors, the
concepts: ``A (n*h*w, C) ~ U (n*h*w, k) @ W (k, C)``. A concept's code ``U`` is a heatmap over
each image, and its spatial mean an image-level feature a rule can read (``concept_03 > 0.2``).
Non-negativity is what makes the parts additive, hence nameable from their top images (Fel et
al., *CRAFT*, CVPR 2023); scikit-learn's :class:`~sklearn.decomposition.NMF` does the work.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import PIL.Image
import torch
from matplotlib import colormaps
from sklearn.base import BaseEstimator
from sklearn.decomposition import NMF
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..errors import ConfigError, HybridError
from ..features import FeatureTable
from ..report import thumbnail_png

__all__ = ["ConceptDiscovery", "concept_names", "concept_tables", "layer_activations",
           "prototype_gallery", "prototypes", "table_images"]

_TILE_PIXELS = 64  # an 8x8 digit becomes a 64x64 tile
_HEAT_OPACITY = 0.6  # where a concept is absent the image shows unchanged
_HEAT_COLORMAP = "inferno"


def concept_names(n_concepts: int) -> tuple[str, ...]:
    """Feature names of discovered concepts, as rules print them: ``concept_00``, ..."""
    return tuple(f"concept_{i:02d}" for i in range(n_concepts))


def layer_activations(backbone: nn.Module, layer: nn.Module | None, images: torch.Tensor,
                      batch_size: int = 256) -> torch.Tensor:
    """Output of ``layer`` while ``backbone`` reads ``images``, in batches, without gradients.

    Parameters
    ----------
    backbone : nn.Module
        In eval mode; batches run on the device of its parameters.
    layer : nn.Module or None
        A sub-module of ``backbone`` (``backbone`` itself for the embedding); None reads
        ``backbone.cam_layer``, the last convolution block.
    images : Tensor of shape (n, channels, height, width)
        Normalized as in training.
    batch_size : int, default=256
        Images per forward pass: bounds memory however many images are asked for.

    Returns
    -------
    Tensor of shape (n, ...), float32, on the CPU
        ``(n, C, h, w)`` for a convolution block, ``(n, D)`` for the embedding.
    """
    layer = backbone.cam_layer if layer is None else layer
    device = next(backbone.parameters()).device
    captured = []
    # Each batch's output leaves the device at once, so device memory holds one batch.
    hook = layer.register_forward_hook(
        lambda module, args, output: captured.append(output.float().cpu()))
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                backbone(images[start:start + batch_size].to(device))
    finally:
        hook.remove()
    return torch.cat(captured)


class ConceptDiscovery(BaseEstimator):
    """Concepts of a feature map: NMF of its spatial positions' channel vectors.

    Parameters
    ----------
    n_concepts : int, default=10
        Concepts to find; at most the layer's channels.
    random_state : int, default=0
        Seeds NMF, so a fit is repeatable.
    max_iter : int, default=400
        NMF iterations; ``nndsvda`` initialization starts close, so few are needed.

    Attributes
    ----------
    components_ : ndarray of shape (n_concepts, n_channels)
        Each concept as a non-negative mix of channels.
    nmf_ : sklearn.decomposition.NMF
        The fitted factorization, reused by :meth:`transform`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> discovery = ConceptDiscovery(n_concepts=2).fit(rng.random((5, 4, 3, 3)))
    >>> discovery.transform(rng.random((2, 4, 3, 3))).shape
    (2, 2)
    """

    def __init__(self, n_concepts: int = 10, random_state: int = 0, max_iter: int = 400):
        self.n_concepts = n_concepts
        self.random_state = random_state
        self.max_iter = max_iter

    def fit(self, activations) -> ConceptDiscovery:
        """Factorize ``activations`` of shape (n, C, h, w); returns ``self``."""
        rows = _positions(activations)
        if not 0 < self.n_concepts <= rows.shape[1]:
            raise ConfigError(f"n_concepts={self.n_concepts}: the layer has {rows.shape[1]} "
                              f"channels, so ask for 1 to {rows.shape[1]} concepts")
        self.nmf_ = NMF(n_components=self.n_concepts, init="nndsvda",
                        random_state=self.random_state, max_iter=self.max_iter).fit(rows)
        self.components_ = self.nmf_.components_
        return self

    def concept_maps(self, activations) -> np.ndarray:
        """Each concept's code at each position: heatmaps of shape (n, n_concepts, h, w).

        The codes come from the fitted basis (``NMF.transform``), so images outside the
        training split are described with the same concepts.
        """
        check_is_fitted(self)
        activations = np.asarray(activations)
        n, _, height, width = activations.shape
        codes = self.nmf_.transform(_positions(activations))
        return codes.reshape(n, height, width, self.n_concepts).transpose(0, 3, 1, 2)

    def transform(self, activations) -> np.ndarray:
        """Image-level concept activations of shape (n, n_concepts): each map's spatial mean."""
        return self.concept_maps(activations).mean(axis=(2, 3))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return concept_names(self.n_concepts)


def _positions(activations) -> np.ndarray:
    """(n, C, h, w) activations as one row of C channels per image position."""
    activations = np.asarray(activations, dtype=np.float32)
    if activations.ndim != 4:
        raise ValueError(f"expected activations of shape (n, C, h, w), got {activations.shape}")
    # NMF factorizes non-negative data only; a layer ending in a ReLU (``cam_layer``) is.
    if activations.size and activations.min() < 0:
        raise ValueError("activations hold negative values: read a layer that ends in a ReLU")
    return activations.transpose(0, 2, 3, 1).reshape(-1, activations.shape[1])


def table_images(datamodule, split: str, table: FeatureTable) -> torch.Tensor:
    """The split's normalized images, checked to be in ``table``'s row order.

    Raises
    ------
    HybridError
        When the data module's split and the table list different samples or another order
        (a table from another run, or data changed since extraction).
    """
    images, _, index = datamodule.splits[split].tensors[:3]
    if not np.array_equal(index.numpy(), table.index):
        raise HybridError(f"split '{split}': the data module's samples are not the feature "
                          "table's rows in its order; extract the features again")
    return images


def concept_tables(backbone: nn.Module, datamodule, tables: dict[str, FeatureTable],
                   n_concepts: int = 10, random_state: int = 0) -> dict[str, FeatureTable]:
    """Copies of ``tables`` whose features are concepts discovered on the train split.

    The concepts are fitted on the train split's ``cam_layer`` activations only, so validation
    and test rows are described by concepts they did not shape.

    Parameters
    ----------
    backbone : nn.Module
        The trained backbone, in eval mode.
    datamodule
        Set up; ``datamodule.splits[split]`` holds ``(images, labels, index)`` in each table's
        row order.
    tables : dict of str to FeatureTable
        The embedding tables by split; must hold ``"train"``.
    n_concepts : int, default=10
    random_state : int, default=0

    Returns
    -------
    dict of str to FeatureTable
        Same splits, labels, probabilities, ids and images; ``X`` of shape (n, n_concepts),
        float32, named ``concept_00``, ...
    """
    if "train" not in tables:
        raise ValueError("concepts are discovered on the train split; pass its table")
    activations = {split: layer_activations(backbone, None, table_images(datamodule, split, table))
                   for split, table in tables.items()}
    discovery = ConceptDiscovery(n_concepts, random_state=random_state).fit(activations["train"])
    return {split: dataclasses.replace(table, X=discovery.transform(activations[split])
                                       .astype(np.float32), feature_names=discovery.feature_names)
            for split, table in tables.items()}


def prototypes(concept_values: np.ndarray, top_k: int = 8) -> np.ndarray:
    """Row numbers of the images each concept fires on most, strongest first.

    Parameters
    ----------
    concept_values : ndarray of shape (n, n_concepts)
    top_k : int, default=8

    Returns
    -------
    ndarray of shape (n_concepts, min(top_k, n)), int
        Ties keep row order, so the choice is repeatable.
    """
    return np.argsort(-np.asarray(concept_values), axis=0, kind="stable")[:top_k].T


def prototype_gallery(display_images: np.ndarray, concept_values: np.ndarray, maps: np.ndarray,
                      top_k: int = 8) -> dict[str, bytes]:
    """Per concept, a PNG strip of the images it fires on most, its heatmap laid over them.

    Parameters
    ----------
    display_images : ndarray of shape (n, H, W) or (n, H, W, 3), uint8
    concept_values : ndarray of shape (n, n_concepts)
        Image-level activations (:meth:`ConceptDiscovery.transform`): they rank the images.
    maps : ndarray of shape (n, n_concepts, h, w)
        The heatmaps (:meth:`ConceptDiscovery.concept_maps`), upsampled bilinearly to H x W.
    top_k : int, default=8
        Images per strip.

    Returns
    -------
    dict of str to bytes
        ``concept_00`` -> PNG, ... Heat is scaled by the strip's strongest position, so tiles
        of one strip compare. Tiles are enlarged by whole pixels to about 64 pixels, as the
        report's thumbnails are, so an 8x8 digit stays sharp.
    """
    display_images, maps = np.asarray(display_images), np.asarray(maps, dtype=np.float32)
    scale = max(1, round(_TILE_PIXELS / max(display_images.shape[1:3])))
    strips = {}
    for concept, (name, rows) in enumerate(zip(concept_names(maps.shape[1]),
                                               prototypes(concept_values, top_k))):
        heat = maps[rows, concept]
        heat = heat / heat.max() if heat.max() > 0 else heat
        strip = _strip([_overlay(display_images[row], heatmap)
                        for row, heatmap in zip(rows, heat)])
        strips[name] = thumbnail_png(strip, pixels=scale * max(strip.shape[:2]))
    return strips


def _overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """``image`` as RGB float with ``heat`` (0..1, any size) blended over it at its size."""
    rgb = (np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image).astype(np.float32)
    size = (rgb.shape[1], rgb.shape[0])
    heat = np.asarray(PIL.Image.fromarray(heat).resize(size, PIL.Image.Resampling.BILINEAR))
    colour = colormaps[_HEAT_COLORMAP](heat)[..., :3] * 255
    weight = _HEAT_OPACITY * np.clip(heat, 0, 1)[..., None]
    return (1 - weight) * rgb + weight * colour


def _strip(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles side by side on white, one pixel apart, as uint8 RGB."""
    height, width = tiles[0].shape[:2]
    strip = np.full((height, len(tiles) * (width + 1) - 1, 3), 255, np.float32)
    for i, tile in enumerate(tiles):
        strip[:, i * (width + 1):i * (width + 1) + width] = tile
    return np.round(strip).astype(np.uint8)
