"""Concept bottleneck models (Koh et al., 2020) as a LightningModule.

``backbone -> concept logits -> sigmoid -> linear label head``: every class score is a linear
function of named concept probabilities, so a person can read the head, fix a wrong concept
(an *intervention*) and see the answer change. Batches are ``(x, y, index, concepts)`` from a
data module with concept labels (see :mod:`hybrid.data`).

The three training modes of the paper:

- ``independent``: the concept predictor learns the concepts; the head learns the labels from
  the *true* concepts. At inference the head reads the predicted ones.
- ``sequential``: the concept predictor learns the concepts for ``concept_epochs`` epochs; then
  it is frozen and the head learns from its (detached) predictions.
- ``joint``: one loss, ``task + concept_weight * concepts``, through the whole network.
"""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from .classifier import optimizers_from_hparams

__all__ = ["ConceptBottleneckModel", "MODES", "Interventions", "intervene", "FeatureOutputs"]

MODES = ("independent", "sequential", "joint")

#: Concept column -> the value to force (a float in [0, 1]), or None for the true value.
Interventions = dict[int, float | None]


class ConceptBottleneckModel(pl.LightningModule):
    """A backbone predicting named concepts, and a linear head from concepts to classes.

    Parameters
    ----------
    backbone : nn.Module
        Returns embeddings of shape (batch, ``backbone.num_features``).
    num_classes : int
    concept_names : sequence of str
        One per concept, in the data module's column order.
    mode : {"independent", "sequential", "joint"}, default="joint"
        How the concept predictor and the head are trained (see the module docstring).
    concept_weight : float, default=1.0
        Weight of the concept loss in ``joint`` mode (the paper's lambda).
    concept_epochs : int, default=None
        ``sequential``: epochs of concept training before the head's; None is half of
        ``trainer.max_epochs``.
    optimizer, optimizer_params, scheduler, label_smoothing
        As for :class:`~hybrid.classifier.ImageClassifier`.

    Notes
    -----
    ``val/loss`` (what checkpoints monitor) is the task loss on *predicted* concepts plus the
    concept loss, in every mode, so checkpoints are comparable across modes.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, concept_names,
                 mode: Literal["independent", "sequential", "joint"] = "joint",
                 concept_weight: float = 1.0, concept_epochs: int | None = None,
                 optimizer: str = "adamw", optimizer_params: dict | None = None,
                 scheduler: str = "cosine", label_smoothing: float = 0.0):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone
        self.concept_layer = nn.Linear(backbone.num_features, len(concept_names))
        self.head = nn.Linear(len(concept_names), num_classes)

    @property
    def concept_names(self) -> tuple[str, ...]:
        return tuple(self.hparams.concept_names)

    def concept_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Concept logits of shape (batch, n_concepts)."""
        return self.concept_layer(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits from the predicted concepts."""
        return self.head(torch.sigmoid(self.concept_logits(x)))

    def intervened(self, concepts: torch.Tensor, interventions: Interventions,
                   true_concepts: torch.Tensor | None = None) -> torch.Tensor:
        """``concepts`` with the intervened columns replaced (a new tensor).

        A value of None takes the column from ``true_concepts``.
        """
        concepts = concepts.clone()
        for column, value in interventions.items():
            if value is None:
                if true_concepts is None:
                    raise ValueError(f"intervention on {self.concept_names[column]!r} asks for "
                                     "the true value, but the batch has no concept labels")
                concepts[:, column] = true_concepts[:, column].to(concepts.dtype)
            else:
                concepts[:, column] = float(value)
        return concepts

    # -- training ------------------------------------------------------------------------------
    def _losses(self, batch, train: bool):
        x, y, _, concepts = batch
        logits = self.concept_logits(x)
        predicted = torch.sigmoid(logits)
        concept_loss = F.binary_cross_entropy_with_logits(logits, concepts.to(logits.dtype))
        smoothing = self.hparams.label_smoothing
        class_logits = self.head(predicted)
        task_loss = F.cross_entropy(class_logits, y, label_smoothing=smoothing)
        if not train:
            return task_loss + self._concept_weight() * concept_loss, task_loss, concept_loss, \
                class_logits, predicted
        mode = self.hparams.mode
        if mode == "joint":
            loss = task_loss + self.hparams.concept_weight * concept_loss
        elif mode == "independent":
            head_loss = F.cross_entropy(self.head(concepts.to(logits.dtype)), y,
                                        label_smoothing=smoothing)
            loss = head_loss + concept_loss
        elif self.current_epoch < self._concept_epochs():  # sequential, first phase
            loss = concept_loss
        else:  # sequential, second phase: the predictor is frozen (no gradient reaches it)
            loss = F.cross_entropy(self.head(predicted.detach()), y, label_smoothing=smoothing)
        return loss, task_loss, concept_loss, class_logits, predicted

    def _concept_weight(self) -> float:
        return self.hparams.concept_weight if self.hparams.mode == "joint" else 1.0

    def _concept_epochs(self) -> int:
        if self.hparams.concept_epochs is not None:
            return self.hparams.concept_epochs
        return max(1, (self.trainer.max_epochs or 2) // 2)

    def _log_step(self, stage: str, batch, train: bool):
        loss, task_loss, concept_loss, class_logits, predicted = self._losses(batch, train)
        y, concepts = batch[1], batch[3]
        metrics = {
            f"{stage}/loss": loss, f"{stage}/task_loss": task_loss,
            f"{stage}/concept_loss": concept_loss,
            f"{stage}/acc": (class_logits.argmax(dim=1) == y).float().mean(),
            f"{stage}/concept_acc": ((predicted > 0.5) == (concepts > 0.5)).float().mean(),
        }
        self.log_dict(metrics, on_epoch=True, on_step=False, prog_bar=stage == "val",
                      sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._log_step("train", batch, train=True)

    def validation_step(self, batch, batch_idx):
        self._log_step("val", batch, train=False)

    def test_step(self, batch, batch_idx):
        self._log_step("test", batch, train=False)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        """Embeddings, predicted and true concepts, class probabilities, labels and ids."""
        x, y, index = batch[:3]
        embedding = self.backbone(x)
        concepts = torch.sigmoid(self.concept_layer(embedding))
        out = {"embedding": embedding, "concepts": concepts,
               "proba": torch.softmax(self.head(concepts), dim=1), "y": y, "index": index}
        if len(batch) > 3:
            out["true_concepts"] = batch[3]
        return out

    def configure_optimizers(self):
        return optimizers_from_hparams(self)


@torch.no_grad()
def intervene(model: ConceptBottleneckModel, loader, interventions: Interventions) -> dict:
    """Predictions with and without ``interventions``, over every batch of ``loader``.

    Parameters
    ----------
    model : ConceptBottleneckModel
        In eval mode, on the device the batches should go to.
    loader : iterable of (x, y, index[, concepts]) batches
    interventions : dict of int to float or None
        Concept column -> forced value; None takes the true concept (the batches must have
        concept labels).

    Returns
    -------
    dict
        ``index``, ``y``, ``before`` and ``after`` (predicted class per sample, numpy arrays)
        and ``concepts_before``/``concepts_after`` (the head's inputs).
    """
    device = next(model.parameters()).device
    parts: dict[str, list] = {key: [] for key in ("index", "y", "before", "after",
                                                  "concepts_before", "concepts_after")}
    for batch in loader:
        x, y, index = batch[:3]
        true_concepts = batch[3].to(device) if len(batch) > 3 else None
        predicted = torch.sigmoid(model.concept_logits(x.to(device)))
        forced = model.intervened(predicted, interventions, true_concepts)
        for key, value in (("index", index), ("y", y),
                           ("before", model.head(predicted).argmax(dim=1)),
                           ("after", model.head(forced).argmax(dim=1)),
                           ("concepts_before", predicted), ("concepts_after", forced)):
            parts[key].append(value.cpu())
    return {key: torch.cat(values).numpy() for key, values in parts.items()}


class FeatureOutputs(nn.Module):
    """The feature columns a run extracts, as one module: what attributions of a feature
    (``feature_evidence``) differentiate.

    ``features`` is ``embedding`` (the backbone), ``concepts`` (a bottleneck's concept
    probabilities) or ``concepts_and_embedding`` (both, concepts first), as in extraction.
    """

    def __init__(self, model: nn.Module, features: str = "embedding"):
        super().__init__()
        self.model, self.features = model, features

    @property
    def cam_layer(self) -> nn.Module:
        return self.model.backbone.cam_layer

    def forward(self, x):
        embedding = self.model.backbone(x)
        if self.features == "embedding":
            return embedding
        concepts = torch.sigmoid(self.model.concept_layer(embedding))
        if self.features == "concepts":
            return concepts
        return torch.cat([concepts, embedding], dim=1)
