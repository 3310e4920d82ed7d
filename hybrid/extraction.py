"""Feature extraction: run the trained CNN over a split and keep what surrogates need.

Extraction goes through ``Trainer.predict`` so Lightning places the model and batches on the
configured device and precision; ``ImageClassifier.predict_step`` returns each batch's
embeddings, probabilities, labels and sample ids.
"""

import numpy as np
import pytorch_lightning as pl
import torch

from .features import FeatureTable

__all__ = ["extract_table", "feature_names"]


def feature_names(n_features: int) -> tuple[str, ...]:
    """Names of embedding dimensions, as rules print them: ``dim_0``, ``dim_1``, ..."""
    return tuple(f"dim_{i}" for i in range(n_features))


def extract_table(trainer: pl.Trainer, model: pl.LightningModule, dataloader,
                  class_names) -> FeatureTable:
    """One split's :class:`FeatureTable`, rows in the loader's order."""
    batches = trainer.predict(model, dataloaders=dataloader)
    X = _column(batches, "embedding").astype(np.float32)
    proba = _column(batches, "proba").astype(np.float32)
    return FeatureTable(X=X, teacher=proba.argmax(axis=1).astype(np.int64), proba=proba,
                        y=_column(batches, "y").astype(np.int64),
                        index=_column(batches, "index").astype(np.int64),
                        feature_names=feature_names(X.shape[1]), class_names=tuple(class_names))


def _column(batches: list[dict], key: str) -> np.ndarray:
    """Concatenate one key of every batch on the CPU; half precision comes back as float32."""
    values = torch.cat([batch[key] for batch in batches]).detach().cpu()
    return (values.float() if values.is_floating_point() else values).numpy()
