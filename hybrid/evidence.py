"""Per-feature evidence: what in an image makes one embedding dimension high.

A rule reads ``IF dim_37 > 2.1 THEN 4``; to trust it a person must see what ``dim_37`` is. For
each feature a surrogate uses, the evidence is its prototypes (the training images on which
the feature is highest) and, on each of them, the attribution of that feature itself, not of a
class: the pixels that make ``dim_37`` high. The attribution goes through
:func:`hybrid.attribution.attribute` with the backbone as the forward function and the feature
as the target; :func:`evidence_strip_png` draws one feature's prototypes with their maps.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib
import numpy as np
import torch
from torch import nn

from .attribution import attribute, cam_layer
from .ir import InterpretableModel
from .report import thumbnail_png

__all__ = ["used_features", "feature_evidence", "evidence_strip_png"]

_TILE_PIXELS = 64
# The image is dimmed so that the heat's bright red-to-yellow stands out on bright ink too,
# and the heat covers at most this much of a pixel's colour so the image stays readable under it.
_IMAGE_BRIGHTNESS = 0.55
_HEAT_OPACITY = 0.85
_HEAT_COLORMAP = "autumn"


def used_features(models: Iterable[InterpretableModel]) -> list[int]:
    """The features any of ``models`` reads, sorted: only these need evidence.

    A feature is read when a rule (of a rule list, or a tree's leaf path) has a condition on
    it, or when a linear model gives it a non-zero weight for some class.

    Parameters
    ----------
    models : iterable of InterpretableModel

    Returns
    -------
    list of int
        Column indices into the feature table, ascending, without repeats.
    """
    used = set()
    for model in models:
        used.update(p.feature for _, rule in model.indexed_rules() for p in rule.conditions)
        if model.kind == "linear":
            used.update(np.flatnonzero(np.any(model.coef != 0, axis=0)).tolist())
    return sorted(used)


def feature_evidence(backbone: nn.Module, images: torch.Tensor, X: np.ndarray,
                     features: Iterable[int], top_k: int = 6,
                     method: str = "integrated_gradients") -> dict[int, dict]:
    """Each feature's prototypes and the attribution of the feature on them.

    Parameters
    ----------
    backbone : nn.Module
        Maps images to the embedding whose columns are the features, in eval mode (batch
        norm must use its running statistics, or a prototype's map depends on its companions).
    images : Tensor of shape (n, channels, H, W)
        Normalized training images, row ``i`` being the image of ``X[i]``.
    X : ndarray of shape (n, d)
        The training features (the feature table's ``X``), which rank the prototypes.
    features : iterable of int
        Columns of ``X`` to explain, e.g. from :func:`used_features`.
    top_k : int, default=6
        Prototypes per feature (fewer when there are fewer rows).
    method : str, default="integrated_gradients"
        An attribution method of :data:`hybrid.attribution.METHODS`; Grad-CAM reads
        :func:`~hybrid.attribution.cam_layer` of ``backbone``.

    Returns
    -------
    dict of int to dict
        Feature -> ``rows`` (ndarray of shape (k,), int64: rows of ``X``, highest activation
        first, ties by row so a run always picks the same), ``activations`` (ndarray of shape
        (k,): ``X[rows, feature]``) and ``maps`` (ndarray of shape (k, H, W), float32,
        non-negative: where the image makes the feature high).
    """
    rows = {j: _top_rows(X[:, j], top_k) for j in features}
    if not rows:
        return {}
    # One attribution call for every feature: the target varies per image.
    all_rows = np.concatenate(list(rows.values()))
    targets = np.concatenate([np.full(len(r), j) for j, r in rows.items()])
    layer = cam_layer(backbone) if method == "gradcam" else None
    maps = attribute(backbone, images[torch.as_tensor(all_rows)], method, targets, layer=layer)
    ends = np.cumsum([len(r) for r in rows.values()])[:-1]
    return {j: {"rows": r, "activations": X[r, j], "maps": part}
            for (j, r), part in zip(rows.items(), np.split(maps, ends))}


def _top_rows(column: np.ndarray, top_k: int) -> np.ndarray:
    """Rows of the ``top_k`` highest values, highest first; a stable sort breaks ties by row."""
    return np.argsort(-column, kind="stable")[:top_k].astype(np.int64)


def evidence_strip_png(display_images: np.ndarray, maps: np.ndarray,
                       pixels: int = _TILE_PIXELS) -> bytes:
    """One feature's prototypes side by side, each with its attribution map overlaid.

    The maps share one colour scale (divided by the largest value of the strip), so a weaker
    prototype also looks weaker. Pixels are enlarged by whole squares (nearest neighbour, as
    :func:`~hybrid.report.thumbnail_png` does), so small images such as 8x8 digits stay sharp;
    tiles are one white image pixel apart.

    Parameters
    ----------
    display_images : ndarray of shape (k, H, W) or (k, H, W, 3), uint8
        The prototypes as a person sees them.
    maps : ndarray of shape (k, H, W)
        Non-negative attributions at image resolution, e.g. from :func:`feature_evidence`.
    pixels : int, default=64
        About the longer side of a tile: each pixel becomes a square of
        ``round(pixels / max(H, W))`` pixels (at least 1).

    Returns
    -------
    bytes
        A PNG ``H * scale`` high and ``(k * W + k - 1) * scale`` wide.
    """
    display_images, maps = np.asarray(display_images), np.asarray(maps, dtype=np.float64)
    if display_images.dtype != np.uint8 or not len(display_images) \
            or display_images.shape[:3] != maps.shape:
        raise ValueError(f"expected uint8 images of shape (k, H, W[, 3]) with k >= 1 and maps "
                         f"of shape (k, H, W); got {display_images.dtype} "
                         f"{display_images.shape} and {maps.shape}")
    tiles = _overlay(_rgb(display_images), maps / (maps.max() or 1.0))
    gap = np.full((tiles.shape[1], 1, 3), 255, dtype=np.uint8)
    strip = np.concatenate([part for tile in tiles for part in (gap, tile)][1:], axis=1)
    scale = max(1, round(pixels / max(tiles.shape[1:3])))
    return thumbnail_png(strip, pixels=scale * max(strip.shape[:2]))


def _rgb(images: np.ndarray) -> np.ndarray:
    """Images as RGB, shape (k, H, W, 3), float in [0, 1]."""
    images = images.astype(np.float64) / 255
    return images if images.ndim == 4 else np.repeat(images[..., None], 3, axis=-1)


def _overlay(rgb: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The dimmed ``rgb`` with the colour-mapped ``heat`` (in [0, 1]) blended in; uint8."""
    colours = matplotlib.colormaps[_HEAT_COLORMAP](heat)[..., :3]
    weight = _HEAT_OPACITY * heat[..., None]
    blended = (1 - weight) * _IMAGE_BRIGHTNESS * rgb + weight * colours
    return np.round(blended * 255).astype(np.uint8)
