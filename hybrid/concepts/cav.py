"""Concept activation vectors (CAVs) and TCAV scores (Kim et al., *TCAV*, ICML 2018).

A user names a concept by example images ("striped", "a loop at the top"); a CAV is the
direction, in one layer's activations, that separates those examples from random images. The
TCAV score of a concept for a class is the share of the class's images whose class logit grows
when their activation moves along the CAV: how much the CNN's answer leans on the concept.
Scores are compared with those of CAVs trained on random-vs-random splits, by a t-test, since a
direction found in noise also gets a score (and often not 0.5).

Linear probes here are fitted all at once, in closed form; see :func:`fit_cavs`. This module
holds the arithmetic (numpy) and the gradients (torch); reading folders and runs is
:mod:`hybrid.pipeline.concepts`'s job.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.stats import ttest_ind
from sklearn.covariance import empirical_covariance, ledoit_wolf, shrunk_covariance
from torch import nn

__all__ = ["class_gradients", "fit_cavs", "tcav_scores", "tcav_statistics"]

# The random-vs-random probe's name in fit_cavs; a slash never occurs in a folder's name, so
# no concept of a user's folder can take it.
_RANDOM = "/random"


def fit_cavs(concept_acts: dict[str, np.ndarray], random_acts: np.ndarray, seed: int = 0,
             test_fraction: float = 0.3, shrinkage="auto") -> dict[str, dict]:
    """One CAV per concept: a linear probe separating its examples from random ones.

    All probes are one shrinkage-LDA problem solved at once: features are standardized with
    the pooled statistics of all training rows, the within-group covariance ``S`` is pooled
    over every concept and the random set, and each concept's direction is
    ``w_c = S_shrunk^{-1} (mu_c - mu_random)`` with its threshold at the midpoint of the two
    means. One ``D x D`` solve with one right-hand side per concept fits hundreds of concepts in
    well under a second. Captum's TCAV instead trains one SGD classifier per concept and
    layer: the same kind of linear boundary, but hundreds of iterative fits.

    Parameters
    ----------
    concept_acts : dict of str to ndarray of shape (n_c, D)
        Flattened layer activations of each concept's examples (at least 2 each).
    random_acts : ndarray of shape (n_r, D)
        Activations of the random counter-examples, shared by all concepts (at least 2).
    seed : int, default=0
        Seeds the held-out splits.
    test_fraction : float, default=0.3
        Share of each concept's and of the random examples held out to measure accuracy (at
        least one of each).
    shrinkage : "auto" or float in [0, 1], default="auto"
        Shrinks ``S`` toward a multiple of the identity, which keeps the solve stable when
        examples are fewer than dimensions; "auto" picks it by Ledoit-Wolf, as scikit-learn's
        ``LinearDiscriminantAnalysis(shrinkage="auto")`` does.

    Returns
    -------
    dict of str to dict
        Per concept ``{"cav": ndarray (D,), "accuracy": float}``: the unit normal of the
        probe's boundary in the layer's own coordinates (so ``gradient @ cav`` is a
        directional derivative), pointing toward the concept; and the balanced accuracy
        (mean of the two recalls) on the held-out rows, so a concept indistinguishable from
        random scores about 0.5 however unbalanced the sets.
    """
    rng = np.random.default_rng(seed)
    names = list(concept_acts)
    concepts = [np.asarray(concept_acts[name], dtype=np.float64) for name in names]
    random = np.asarray(random_acts, dtype=np.float64)
    held = [_holdout(len(rows), test_fraction, rng, name) for rows, name in zip(concepts, names)]
    random_train, random_test = _holdout(len(random), test_fraction, rng, "random examples")
    directions, thresholds = _lda_directions(
        [rows[train] for rows, (train, _) in zip(concepts, held)] + [random[random_train]],
        shrinkage)
    tests = [rows[test] for rows, (_, test) in zip(concepts, held)]
    accuracy = (_recall(tests, directions, thresholds)
                + np.mean(random[random_test] @ directions.T <= thresholds, axis=0)) / 2
    return {name: {"cav": directions[i], "accuracy": float(accuracy[i])}
            for i, name in enumerate(names)}


def _holdout(n: int, fraction: float, rng, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, test) row numbers, at least one of each."""
    if n < 2:
        raise ValueError(f"{name}: need at least 2 examples to train and test a CAV, got {n}")
    order = rng.permutation(n)
    n_test = min(n - 1, max(1, round(n * fraction)))
    return order[n_test:], order[:n_test]


def _lda_directions(groups: list[np.ndarray], shrinkage) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (k, D) and thresholds (k,) separating each group but the last from it."""
    sizes = np.array([len(group) for group in groups])
    rows = np.concatenate(groups)
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale == 0] = 1  # a unit that never varies (a dead ReLU) says nothing; avoid 0/0
    z = (rows - mean) / scale
    centroids = np.add.reduceat(z, np.r_[0, np.cumsum(sizes)[:-1]], axis=0) / sizes[:, None]
    covariance = _shrunk(z - np.repeat(centroids, sizes, axis=0), shrinkage)
    weights = np.linalg.solve(covariance, (centroids[:-1] - centroids[-1]).T).T
    # Undo the standardization: gradients are taken in the layer's own coordinates.
    directions = weights / scale
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    raw_centroids = centroids * scale + mean
    thresholds = np.einsum("kd,kd->k", directions, (raw_centroids[:-1] + raw_centroids[-1]) / 2)
    return directions, thresholds


def _shrunk(centred: np.ndarray, shrinkage) -> np.ndarray:
    if shrinkage == "auto":
        return ledoit_wolf(centred, assume_centered=True)[0]
    return shrunk_covariance(empirical_covariance(centred, assume_centered=True), shrinkage)


def _recall(tests: list[np.ndarray], directions: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per concept, the share of its held-out examples on the concept's side of its boundary."""
    group = np.repeat(np.arange(len(tests)), [len(rows) for rows in tests])
    rows = np.concatenate(tests)
    hits = np.einsum("nd,nd->n", rows, directions[group]) > thresholds[group]
    return np.bincount(group, weights=hits) / np.bincount(group)


def tcav_scores(gradients: np.ndarray, cavs: dict[str, dict]) -> dict[str, float]:
    """Per concept, the share of images whose class logit grows along the concept's CAV.

    Parameters
    ----------
    gradients : ndarray of shape (n, D)
        Gradient of the class logit with respect to the layer's flattened activation, one row
        per image of the class (:func:`class_gradients`); n >= 1.
    cavs : dict of str to dict
        :func:`fit_cavs`'s result.

    Returns
    -------
    dict of str to float
        The TCAV score in [0, 1]: the fraction of positive directional derivatives
        ``gradient @ cav``.
    """
    names = list(cavs)
    directions = np.stack([cavs[name]["cav"] for name in names])
    positive = np.mean(np.asarray(gradients, dtype=np.float64) @ directions.T > 0, axis=0)
    return {name: float(share) for name, share in zip(names, positive)}


def class_gradients(model: nn.Module, layer: nn.Module, images: torch.Tensor, target: int,
                    batch_size: int = 256) -> np.ndarray:
    """Gradient of logit ``target`` with respect to ``layer``'s output, one row per image.

    Parameters
    ----------
    model : ImageClassifier
        ``head(backbone(x))``, in eval mode; batches run on its parameters' device.
    layer : nn.Module
        A sub-module of ``model.backbone``, or ``model.backbone`` itself for the embedding.
        For the embedding no autograd runs: the head is linear, so the gradient of
        ``head(embedding)[target]`` is the head's weight row ``target`` for every image. (So
        at the embedding every image of a class agrees and TCAV scores are 0 or 1; a
        convolution layer gives per-image gradients.)
    images : Tensor of shape (n, channels, height, width)
        Normalized as in training.
    target : int
        The class whose logit is differentiated.
    batch_size : int, default=256

    Returns
    -------
    ndarray of shape (n, D), float32
        Flattened like the layer's activations.
    """
    if layer is model.backbone:
        row = model.head.weight[target].detach().float().cpu().numpy()
        return np.tile(row, (len(images), 1))
    device = next(model.parameters()).device
    captured = []
    hook = layer.register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        return np.concatenate([_batch_gradients(model, images[start:start + batch_size].to(device),
                                                target, captured)
                               for start in range(0, len(images), batch_size)])
    finally:
        hook.remove()


def _batch_gradients(model: nn.Module, x: torch.Tensor, target: int, captured: list) -> np.ndarray:
    captured.clear()
    with torch.enable_grad():
        # The input asks for gradients so the layer's output is in the graph even when the
        # model's parameters are frozen.
        logits = model(x.detach().requires_grad_(True))
        # Samples are independent in eval mode, so the sum's gradient is each image's own.
        (gradient,) = torch.autograd.grad(logits[:, target].sum(), captured[0])
    return gradient.flatten(1).float().cpu().numpy()


def tcav_statistics(concept_acts: dict[str, np.ndarray], random_acts: np.ndarray,
                    gradients: dict[str, np.ndarray], repeats: int = 10,
                    seed: int = 0) -> dict:
    """TCAV scores with their random baseline and a two-sided t-test, as in the TCAV paper.

    Each repetition splits the random examples in two halves at random: every concept's CAV
    is trained against the first half, and a random CAV separates the second half from it.
    Over the repetitions each concept gets a distribution of TCAV scores per class, compared
    with the random CAVs' scores by a two-sided Student's t-test (``scipy.stats.ttest_ind``):
    a small p-value says the concept's score is not what a direction found in noise gets.

    Parameters
    ----------
    concept_acts : dict of str to ndarray of shape (n_c, D)
    random_acts : ndarray of shape (n_r, D)
        At least 4, so each half trains and tests its probe.
    gradients : dict of str to ndarray of shape (n, D)
        Per class name, :func:`class_gradients` of its images (n >= 1).
    repeats : int, default=10
        Random halvings; the t-test compares ``repeats`` scores with ``repeats``.
    seed : int, default=0

    Returns
    -------
    dict
        ``{"repeats": int, "random": {"accuracy", "classes": {class: {"score", "score_std"}}},
        "concepts": {name: {"accuracy", "classes": {class: {"score", "score_std",
        "p_value"}}}}}``: means and standard deviations over the repetitions; ``p_value`` is
        None where the test is undefined (both sets of scores constant and equal).
    """
    rng = np.random.default_rng(seed)
    random_acts = np.asarray(random_acts)
    names, classes = [*concept_acts, _RANDOM], list(gradients)
    accuracy = np.empty((repeats, len(names)))
    scores = np.empty((repeats, len(classes), len(names)))
    for repeat in range(repeats):
        counter, pseudo = np.array_split(random_acts[rng.permutation(len(random_acts))], 2)
        cavs = fit_cavs({**concept_acts, _RANDOM: pseudo}, counter, seed=seed + repeat)
        accuracy[repeat] = [cavs[name]["accuracy"] for name in names]
        for column, cls in enumerate(classes):
            by_name = tcav_scores(gradients[cls], cavs)
            scores[repeat, column] = [by_name[name] for name in names]
    p_values = _p_values(scores[..., :-1], scores[..., -1:])

    def spread(probe: int, column: int) -> dict:
        values = scores[:, column, probe]
        return {"score": float(values.mean()), "score_std": float(values.std())}

    return {
        "repeats": repeats,
        "random": {"accuracy": float(accuracy[:, -1].mean()),
                   "classes": {cls: spread(-1, column) for column, cls in enumerate(classes)}},
        "concepts": {name: {"accuracy": float(accuracy[:, probe].mean()),
                            "classes": {cls: {**spread(probe, column),
                                              "p_value": p_values[column][probe]}
                                        for column, cls in enumerate(classes)}}
                     for probe, name in enumerate(names[:-1])},
    }


def _p_values(scores: np.ndarray, random_scores: np.ndarray) -> list[list[float | None]]:
    """Two-sided t-test p-values over the first axis, None where undefined (constant scores)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant scores: scipy warns
        p = ttest_ind(scores, random_scores, axis=0).pvalue
    return [[float(value) if np.isfinite(value) else None for value in row] for row in p]
