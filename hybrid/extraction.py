"""Feature extraction: run the trained CNN over a split and keep what surrogates need.

Extraction goes through ``Trainer.predict`` so Lightning places the model and batches on the
configured devices, precision and strategy; ``ImageClassifier.predict_step`` returns each
batch's embeddings, probabilities, labels and sample ids.

Every process (a lone one too: one code path) writes its batches to shard files as they come
(a Lightning prediction writer), keyed by each row's position in the data set; rank 0 then
merges the shards in data set order, keeping the first copy of a row a distributed sampler
handed to two processes. So no collective gathers a split into one process's memory, and one
process or many give the same rows in the same order.
"""

import contextlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from .features import FeatureTable

__all__ = ["extract_table", "feature_names"]

# The position of each row in the data set, as Lightning's predict loop reports it.
_POSITION = "_position"


def feature_names(n_features: int) -> tuple[str, ...]:
    """Names of embedding dimensions, as rules print them: ``dim_0``, ``dim_1``, ..."""
    return tuple(f"dim_{i}" for i in range(n_features))


def extract_table(trainer: pl.Trainer, model: pl.LightningModule, dataloader, class_names,
                  features: str = "embedding", scratch=None) -> FeatureTable | None:
    """One split's :class:`FeatureTable`, rows in data set order (an unshuffled loader's).

    ``features`` picks the columns: ``embedding`` (``dim_0``, ...), or for a concept
    bottleneck model ``concepts`` (its concept probabilities, named by concept) or
    ``concepts_and_embedding``. True concept labels are kept whenever the batches have them.
    Floating-point outputs (bfloat16 under mixed precision too) are stored as float32.

    Parameters
    ----------
    scratch : path, default=None
        Folder for the temporary shard files; it must be the same folder on every node of a
        multi-node run (the run directory, say). None: the system's temporary folder.

    Returns
    -------
    FeatureTable, or None on the ranks other than 0 of a distributed run.
    """
    writer = _ShardWriter(_new_folder(scratch) if trainer.is_global_zero else None)
    try:
        with _attached(trainer, writer):
            trainer.predict(model, dataloaders=dataloader, return_predictions=False)
        if not trainer.is_global_zero:
            return None
        return _table(_merge(writer.folder), features, tuple(getattr(model, "concept_names", ())),
                      class_names)
    finally:
        if trainer.is_global_zero and writer.folder is not None:
            shutil.rmtree(writer.folder, ignore_errors=True)


def _new_folder(scratch) -> Path:
    root = Path(scratch if scratch is not None else tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="shards-", dir=root))


@contextlib.contextmanager
def _attached(trainer: pl.Trainer, callback: pl.Callback):
    """``trainer`` with ``callback`` for the block only: the trainer may be reused."""
    trainer.callbacks.append(callback)
    try:
        yield
    finally:
        trainer.callbacks.remove(callback)


class _ShardWriter(BasePredictionWriter):
    """Writes each predicted batch to ``folder/RANK-BATCH.npz``, numpy, float32 for floats.

    Rank 0 makes the folder and hands its name to the other ranks when prediction starts
    (under ``ddp_spawn`` the workers get it with their copy of this callback).
    """

    def __init__(self, folder: Path | None):
        super().__init__(write_interval="batch")
        self.folder = folder

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.folder = trainer.strategy.broadcast(self.folder, src=0)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx):
        if not batch_indices:
            raise TypeError("extraction needs a torch DataLoader with a batch sampler, whose "
                            "positions Lightning tracks")
        arrays = {key: _numpy(value) for key, value in prediction.items()}
        arrays[_POSITION] = np.asarray(batch_indices, dtype=np.int64)
        np.savez(self.folder / f"{trainer.global_rank:05d}-{batch_idx:08d}.npz", **arrays)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.strategy.barrier("extraction shards written")  # rank 0 merges next


def _numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.float() if value.is_floating_point() else value).numpy()


def _merge(folder: Path) -> dict[str, np.ndarray]:
    """Every shard's arrays, one row per data set position, in position order.

    Rows are copied shard by shard into arrays allocated once, so memory holds the merged
    split and one shard. A position written twice keeps its first copy (ranks in order).
    """
    files = sorted(folder.glob("*.npz"))
    positions = []
    for file in files:
        with np.load(file) as shard:
            positions.append(shard[_POSITION])
    unique, first = np.unique(np.concatenate(positions), return_index=True)
    keep = np.zeros(sum(map(len, positions)), dtype=bool)
    keep[first] = True
    merged, offset = {}, 0
    for file, position in zip(files, positions):
        kept = keep[offset:offset + len(position)]
        rows = np.searchsorted(unique, position[kept])
        offset += len(position)
        with np.load(file) as shard:
            for key in shard.files:
                values = shard[key]
                if key not in merged:
                    merged[key] = np.empty((len(unique), *values.shape[1:]), values.dtype)
                merged[key][rows] = values[kept]
    return merged


def _table(outputs: dict[str, np.ndarray], features: str, concept_names: tuple[str, ...],
           class_names) -> FeatureTable:
    """The FeatureTable of the merged predict outputs."""
    columns = _feature_columns(outputs, features, concept_names)
    X = np.concatenate([values for values, _ in columns], axis=1).astype(np.float32, copy=False)
    proba = outputs["proba"].astype(np.float32, copy=False)
    true_concepts = outputs.get("true_concepts")
    if true_concepts is None or true_concepts.shape[1] != len(concept_names):
        true_concepts, concept_names = None, ()
    else:
        true_concepts = true_concepts.astype(np.float32, copy=False)
    return FeatureTable(X=X, teacher=proba.argmax(axis=1).astype(np.int64), proba=proba,
                        y=outputs["y"].astype(np.int64), index=outputs["index"].astype(np.int64),
                        feature_names=tuple(name for _, names in columns for name in names),
                        class_names=tuple(class_names), concepts=true_concepts,
                        concept_names=concept_names)


def _feature_columns(outputs: dict[str, np.ndarray], features: str, concept_names):
    """[(values, names)] of the requested feature kinds, concepts first."""
    columns = []
    if features.startswith("concepts"):
        if "concepts" not in outputs:
            raise ValueError(f"features {features!r} need a concept bottleneck model")
        columns.append((outputs["concepts"], tuple(concept_names)))
    if features in ("embedding", "concepts_and_embedding", "discovered_concepts"):
        embedding = outputs["embedding"]
        columns.append((embedding, feature_names(embedding.shape[1])))
    return columns
