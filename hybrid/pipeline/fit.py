"""Stage 1, fit: train the CNN; the best checkpoint on validation loss is kept.

A run killed mid-training resumes from ``checkpoints/last.ckpt``. Under a distributed strategy
every rank trains and Lightning writes the checkpoints from rank 0, which also writes the
stage's marker; the other ranks wait for it, as they read it next (extract).
"""

import logging

import pytorch_lightning as pl
import torch

from ..rundir import RunDirectory
from ._components import build_classifier, build_datamodule, build_trainer, quiet_lightning

__all__ = ["fit"]

log = logging.getLogger("hybrid")


def fit(run: RunDirectory) -> dict:
    config = run.load_config()
    quiet_lightning()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config)
    model = build_classifier(config, datamodule)
    trainer = build_trainer(config, run, training=True)
    last = run.checkpoints / "last.ckpt"
    resume = last if last.exists() else None
    log.info("fit: %s on %s%s", config.model.backbone.name, config.data.name,
             f", resuming from {resume}" if resume else "")
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    score, epochs = trainer.checkpoint_callback.best_model_score, trainer.current_epoch
    if score is None:
        score, epochs = _from_last_checkpoint(run)
    summary = {"best_checkpoint": str(run.checkpoints / "best.ckpt"),
               "best_val_loss": float(score), "epochs": epochs}
    if trainer.is_global_zero:
        run.mark_done("fit", summary)
    trainer.strategy.barrier("fit marked done")
    return summary


def _from_last_checkpoint(run: RunDirectory) -> tuple[float, int]:
    """Best validation loss and epochs trained, as the last checkpoint holds them: under
    ``ddp_spawn`` training ran in worker processes that hand back the weights only."""
    last = torch.load(run.checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    score = next(state["best_model_score"] for state in last["callbacks"].values()
                 if "best_model_score" in state)
    return score, last["epoch"] + 1
