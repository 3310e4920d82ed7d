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


def extract_table(trainer: pl.Trainer, model: pl.LightningModule, dataloader, class_names,
                  features: str = "embedding") -> FeatureTable:
    """One split's :class:`FeatureTable`, rows in the loader's order.

    ``features`` picks the columns: ``embedding`` (``dim_0``, ...), or for a concept
    bottleneck model ``concepts`` (its concept probabilities, named by concept) or
    ``concepts_and_embedding``. True concept labels are kept whenever the batches have them.
    """
    batches = trainer.predict(model, dataloaders=dataloader)
    columns = _feature_columns(batches, features, getattr(model, "concept_names", ()))
    X = np.concatenate([values for values, _ in columns], axis=1).astype(np.float32)
    proba = _column(batches, "proba").astype(np.float32)
    concept_names = tuple(getattr(model, "concept_names", ()))
    true_concepts = (_column(batches, "true_concepts").astype(np.float32)
                     if "true_concepts" in batches[0] else None)
    if true_concepts is None or true_concepts.shape[1] != len(concept_names):
        true_concepts, concept_names = None, ()
    return FeatureTable(X=X, teacher=proba.argmax(axis=1).astype(np.int64), proba=proba,
                        y=_column(batches, "y").astype(np.int64),
                        index=_column(batches, "index").astype(np.int64),
                        feature_names=tuple(name for _, names in columns for name in names),
                        class_names=tuple(class_names), concepts=true_concepts,
                        concept_names=concept_names)


def _feature_columns(batches: list[dict], features: str, concept_names):
    """[(values, names)] of the requested feature kinds, concepts first."""
    columns = []
    if features.startswith("concepts"):
        if "concepts" not in batches[0]:
            raise ValueError(f"features {features!r} need a concept bottleneck model")
        columns.append((_column(batches, "concepts"), tuple(concept_names)))
    if features in ("embedding", "concepts_and_embedding", "discovered_concepts"):
        embedding = _column(batches, "embedding")
        columns.append((embedding, feature_names(embedding.shape[1])))
    return columns


def _column(batches: list[dict], key: str) -> np.ndarray:
    """Concatenate one key of every batch on the CPU; half precision comes back as float32."""
    values = torch.cat([batch[key] for batch in batches]).detach().cpu()
    return (values.float() if values.is_floating_point() else values).numpy()
