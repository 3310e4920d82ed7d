"""Stage 1, fit: train the CNN; the best checkpoint on validation loss is kept.

A run killed mid-training resumes from ``checkpoints/last.ckpt``.
"""

import logging

import pytorch_lightning as pl

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
    callback = trainer.checkpoint_callback
    summary = {
        "best_checkpoint": str(run.checkpoints / "best.ckpt"),
        "best_val_loss": float(callback.best_model_score),
        "epochs": trainer.current_epoch,
    }
    run.mark_done("fit", summary)
    return summary
