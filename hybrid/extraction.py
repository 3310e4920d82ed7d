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

from .features import FeatureTable, FeatureTableWriter

__all__ = ["extract_table", "feature_names"]

# The position of each row in the data set, as Lightning's predict loop reports it.
_POSITION = "_position"


def feature_names(n_features: int) -> tuple[str, ...]:
    """Names of embedding dimensions, as rules print them: ``dim_0``, ``dim_1``, ..."""
    return tuple(f"dim_{i}" for i in range(n_features))


def extract_table(trainer: pl.Trainer, model: pl.LightningModule, dataloader, class_names,
                  features: str = "embedding", scratch=None, out=None,
                  extra: dict | None = None) -> FeatureTable | None:
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
    out : path, default=None
        Where to write the table (:class:`~hybrid.features.FeatureTableWriter`): the shards
        stream into it one at a time, so memory holds a shard, never the split, and the
        table returned is memory-mapped. None: the table is returned in memory.
    extra : dict of str to array, default=None
        Further arrays of the table (``images``), one row per sample, in data set order.

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
        target = Path(out) if out is not None else writer.folder / "table"
        _merge(writer.folder, target, features, tuple(getattr(model, "concept_names", ())),
               class_names, extra or {})
        table = FeatureTable.load(target)
        return table if out is not None else table.in_memory()
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


def _merge(folder: Path, target: Path, features: str, concept_names: tuple[str, ...],
           class_names, extra: dict) -> None:
    """Every shard's rows written to the table at ``target``, in data set order.

    Shards are read one at a time and written at their rows, so memory holds one shard. A
    position written twice keeps its first copy (ranks in order).
    """
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise ValueError("extraction: the split has no rows")
    positions = []
    for file in files:
        with np.load(file) as shard:
            positions.append(shard[_POSITION])
    unique, first = np.unique(np.concatenate(positions), return_index=True)
    keep = np.zeros(sum(map(len, positions)), dtype=bool)
    keep[first] = True
    table, offset = None, 0
    for file, position in zip(files, positions):
        kept = keep[offset:offset + len(position)]
        offset += len(position)
        with np.load(file) as shard:
            outputs = {key: shard[key][kept] for key in shard.files}
        batch, names = _batch(outputs, features, concept_names)
        if table is None:
            table = FeatureTableWriter(target, len(unique), names["feature_names"], class_names,
                                       names["concept_names"])
        table.write(np.searchsorted(unique, position[kept]), **batch)
    with table:
        if extra:
            table.write(0, **extra)


def _batch(outputs: dict[str, np.ndarray], features: str, concept_names: tuple[str, ...]):
    """One shard's table arrays, and the names of the columns of ``X`` and ``concepts``."""
    columns = _feature_columns(outputs, features, concept_names)
    batch = {"X": np.concatenate([values for values, _ in columns], axis=1),
             "proba": outputs["proba"], "y": outputs["y"], "index": outputs["index"]}
    true_concepts = outputs.get("true_concepts")
    if true_concepts is not None and true_concepts.shape[1] == len(concept_names):
        batch["concepts"] = true_concepts
    else:
        concept_names = ()
    return batch, {"feature_names": tuple(name for _, names in columns for name in names),
                   "concept_names": concept_names}


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
