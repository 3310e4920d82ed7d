"""The CNN as a LightningModule: an injected backbone, a linear head, cross-entropy.

The backbone is injected (not built here) so any registered backbone, or a user's own module,
trains the same way; it is left out of the saved hyperparameters, so restoring a checkpoint
takes the backbone again: ``ImageClassifier.load_from_checkpoint(path, backbone=...)``.

:class:`ChannelsLast` is a Lightning callback, not a model setting: a checkpoint trained in
either memory format runs in either.
"""

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from .registry import Registry

__all__ = ["ImageClassifier", "ChannelsLast", "OPTIMIZERS", "SCHEDULERS",
           "optimizers_from_hparams"]

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.register("adamw", torch.optim.AdamW)
OPTIMIZERS.register("adam", torch.optim.Adam)
OPTIMIZERS.register("sgd", torch.optim.SGD)

SCHEDULERS = Registry("scheduler")
SCHEDULERS.register("none", lambda optimizer, max_epochs: None)
SCHEDULERS.register("cosine", lambda optimizer, max_epochs: torch.optim.lr_scheduler.CosineAnnealingLR(
    optimizer, T_max=max(1, max_epochs)))


class ImageClassifier(pl.LightningModule):
    """Backbone -> linear head, trained with cross-entropy; batches are ``(x, y, index, ...)``.

    Parameters
    ----------
    backbone : nn.Module
        Returns embeddings of shape (batch, ``backbone.num_features``).
    num_classes : int
    optimizer : str, default="adamw"
        A name in :data:`OPTIMIZERS`.
    optimizer_params : dict, default=None
        Keyword arguments of the optimizer (``lr``, ``weight_decay``, ...).
    scheduler : str, default="cosine"
        A name in :data:`SCHEDULERS`; cosine anneals over ``trainer.max_epochs``.
    label_smoothing : float, default=0.0
    """

    def __init__(self, backbone: nn.Module, num_classes: int, optimizer: str = "adamw",
                 optimizer_params: dict | None = None, scheduler: str = "cosine",
                 label_smoothing: float = 0.0):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))

    def _loss_and_accuracy(self, batch):
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        return loss, (logits.argmax(dim=1) == y).float().mean()

    def training_step(self, batch, batch_idx):
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, on_epoch=True, on_step=False,
                      sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, accuracy = self._loss_and_accuracy(batch)
        # Averaged over every rank under DDP, so the best checkpoint is chosen on all of val.
        self.log_dict({"val/loss": loss, "val/acc": accuracy}, prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx):
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log_dict({"test/loss": loss, "test/acc": accuracy}, sync_dist=True)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        """Embeddings, class probabilities, true labels and sample ids of one batch."""
        x, y, index = batch[:3]
        embedding = self.backbone(x)
        proba = torch.softmax(self.head(embedding), dim=1)
        return {"embedding": embedding, "proba": proba, "y": y, "index": index}

    def configure_optimizers(self):
        return optimizers_from_hparams(self)


def optimizers_from_hparams(module: pl.LightningModule):
    """``configure_optimizers`` for a module whose hyperparameters name ``optimizer``,
    ``optimizer_params`` and ``scheduler`` (registered names)."""
    hparams = module.hparams
    optimizer = OPTIMIZERS.create(hparams.optimizer, params=module.parameters(),
                                  **(hparams.optimizer_params or {}))
    scheduler = SCHEDULERS.create(hparams.scheduler, optimizer=optimizer,
                                  max_epochs=module.trainer.max_epochs)
    if scheduler is None:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": scheduler}


class ChannelsLast(pl.Callback):
    """Run a module's convolutions in ``torch.channels_last`` (NHWC) memory format.

    At ``setup`` (before Lightning builds the optimizer and wraps the module for DDP) the
    module's 4-D parameters and buffers are converted, and every 4-D input of its backbone
    (of the module itself when it has none) is converted on the way in, so no layer has to
    reorder them: the layout GPU tensor-core convolutions work in, under mixed precision
    above all. The hook goes at ``teardown``; the module keeps its converted weights.
    """

    def __init__(self):
        self._hook = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)
        if self._hook is None:
            entry = getattr(pl_module, "backbone", pl_module)
            self._hook = entry.register_forward_pre_hook(_channels_last_inputs)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def _channels_last_inputs(module: nn.Module, args: tuple) -> tuple:
    return tuple(arg.contiguous(memory_format=torch.channels_last)
                 if isinstance(arg, torch.Tensor) and arg.dim() == 4 else arg for arg in args)
