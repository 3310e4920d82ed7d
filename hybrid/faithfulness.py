"""Deletion and insertion curves: does an attribution map point at what the model uses?

A faithful map ranks first the pixels the model's answer depends on. Deleting them first (setting
them to a baseline) should make the probability of the explained class fall fast, so a *lower*
deletion AUC is better; inserting them first into a baseline image should make it rise fast, so a
*higher* insertion AUC is better (Petsiuk et al., 2018, "RISE"). Both are read against random
maps (:func:`random_maps`): a method is only informative where it beats them.

Everything is batched: the perturbed images of every step are built at once from pixel ranks
(one ``argsort``), and the model sees ``batch_size`` images per pass, without autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["CURVES", "deletion_insertion", "random_maps", "summarize"]

#: The curves :func:`deletion_insertion` can draw.
CURVES = ("deletion", "insertion")


def deletion_insertion(forward: Callable, inputs: torch.Tensor, maps, target, steps: int = 16,
                       batch_size: int = 256, baseline: float = 0.0,
                       curves: tuple[str, ...] = CURVES) -> dict:
    """Deletion and insertion curves of ``forward``'s probability of ``target``.

    At step ``s`` the ``round(s / steps * H * W)`` highest-ranked pixels (all channels of each)
    are replaced by ``baseline`` (deletion), or are the only pixels kept from the image, the rest
    being ``baseline`` (insertion). Ties in a map are broken by pixel position, row by row.

    Parameters
    ----------
    forward : callable
        Maps images of shape (batch, channels, H, W) to logits of shape (batch, n_classes); the
        curves record their softmax.
    inputs : Tensor of shape (n, channels, H, W)
        Normalized images, on the device ``forward`` runs on.
    maps : ndarray or Tensor of shape (n, H, W)
        Attributions; higher means more relevant.
    target : int or array-like of shape (n,)
        The class whose probability is recorded, per image.
    steps : int, default=16
        Curves have ``steps + 1`` points, at fractions 0, 1/steps, ..., 1. On 8x8 digits, 16
        steps move 4 pixels at a time.
    batch_size : int, default=256
        Images per forward pass; bounds memory. The results do not depend on it.
    baseline : float, default=0.0
        The value a removed pixel takes: 0.0 is the training mean on normalized inputs, so a
        removed pixel carries no information rather than looking like black ink.
    curves : tuple of {"deletion", "insertion"}, default=("deletion", "insertion")
        The curves to draw; one alone costs half the forward passes.

    Returns
    -------
    dict
        ``fractions`` (list of ``steps + 1`` floats) and, per curve in ``curves``, ``deletion``
        or ``insertion`` (ndarray of shape (n, steps + 1), float64) and ``deletion_auc`` or
        ``insertion_auc`` (ndarray of shape (n,), trapezoid rule over ``fractions``). Lower
        deletion AUC and higher insertion AUC are better.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> result = deletion_insertion(model, torch.ones(3, 1, 2, 2), np.ones((3, 2, 2)), 0, steps=4)
    >>> result["deletion"].shape, result["fractions"]
    ((3, 5), [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    n, _, height, width = inputs.shape
    if min(n, steps, batch_size) < 1:
        raise ValueError(f"need at least one image, step and batch; got {n}, {steps}, {batch_size}")
    if not curves or set(curves) - set(CURVES):
        raise ValueError(f"curves must be some of {CURVES}, got {curves}")
    maps = torch.as_tensor(maps, device=inputs.device)
    if maps.shape != (n, height, width):
        raise ValueError(f"maps must have shape {(n, height, width)}, got {tuple(maps.shape)}")
    targets = torch.as_tensor(target, dtype=torch.long, device=inputs.device).expand(n)
    counts = torch.as_tensor(np.round(np.arange(steps + 1) / steps * height * width),
                             dtype=torch.long, device=inputs.device)
    ranks = _ranks(maps)
    chunk = max(1, batch_size // (len(curves) * (steps + 1)))  # a chunk's curves ~ one batch
    parts = [_chunk_curves(forward, inputs[i:i + chunk], ranks[i:i + chunk],
                           targets[i:i + chunk], counts, batch_size, baseline, curves)
             for i in range(0, n, chunk)]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    result = {"fractions": fractions.tolist()}
    for k, curve in enumerate(curves):
        result[curve] = np.concatenate([part[:, k] for part in parts])
        result[f"{curve}_auc"] = np.trapezoid(result[curve], fractions, axis=1)
    return result


def _ranks(maps: torch.Tensor) -> torch.Tensor:
    """Each pixel's rank in its map, (n, H, W): 0 is the most relevant; ties go row by row."""
    flat = maps.reshape(len(maps), -1)
    order = torch.argsort(-flat, dim=1, stable=True)
    return torch.argsort(order, dim=1).reshape(maps.shape)


@torch.no_grad()
def _chunk_curves(forward, x, ranks, targets, counts, batch_size, baseline, curves):
    """The curves of a few images: (len(x), len(curves), steps + 1) float64."""
    chosen = ranks[:, None, None] < counts[:, None, None, None]  # (images, steps + 1, 1, H, W)
    removed = {"deletion": chosen, "insertion": ~chosen}  # pixels set to the baseline
    images, fill = x[:, None], torch.full_like(x[:, None], baseline)
    perturbed = torch.stack([torch.where(removed[curve], fill, images) for curve in curves], 1)
    shape = perturbed.shape  # (images, curves, steps + 1, channels, H, W)
    repeated = targets[:, None, None].expand(shape[:3]).reshape(-1)
    proba = _probabilities(forward, perturbed.reshape(-1, *shape[3:]), repeated, batch_size)
    return proba.reshape(shape[:3]).double().cpu().numpy()


def _probabilities(forward, images, targets, batch_size) -> torch.Tensor:
    """Softmax probability of each image's target, ``batch_size`` images per pass."""
    return torch.cat([
        torch.softmax(forward(images[i:i + batch_size]), dim=1)
        .gather(1, targets[i:i + batch_size, None])[:, 0]
        for i in range(0, len(images), batch_size)])


def random_maps(shape, seed: int = 0) -> np.ndarray:
    """Uniform random attribution maps: the baseline a method has to beat.

    Parameters
    ----------
    shape : tuple of int
        Usually (n, H, W), the shape of the maps under test.
    seed : int, default=0

    Returns
    -------
    ndarray of ``shape``, float32
        Values in [0, 1); ties have probability zero, so the ranking is a uniform permutation.
    """
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def summarize(result: dict) -> dict:
    """Mean AUCs of a :func:`deletion_insertion` result, as JSON-ready floats.

    Returns
    -------
    dict
        ``deletion_auc`` (lower is better) and ``insertion_auc`` (higher is better), those of
        the curves drawn, and ``n_images``.
    """
    aucs = {f"{curve}_auc": result[f"{curve}_auc"] for curve in CURVES if curve in result}
    return {**{key: float(np.mean(values)) for key, values in aucs.items()},
            "n_images": len(next(iter(aucs.values())))}
