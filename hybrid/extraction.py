"""Feature extraction: run the trained CNN over a split and keep what surrogates need.

Extraction goes through ``Trainer.predict`` so Lightning places the model and batches on the
configured devices, precision and strategy; ``ImageClassifier.predict_step`` returns each
batch's embeddings, probabilities, labels and sample ids.

Batches are written as they come by a Lightning prediction writer, keyed by each row's
position in the data set. One process writes them straight into the split's table
(:class:`~hybrid.features.FeatureTableWriter`, on disk). Under a distributed strategy every
process writes shard files instead, and rank 0 then streams them into the table in data set
order, keeping the first copy of a row a distributed sampler handed to two processes. So no
collective gathers a split into one process's memory, memory holds a batch or a shard, and
one process or many give the same rows in the same order.
"""

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
        Folder for the shard files of a distributed run; it must be the same folder on every
        node of a multi-node run (the run directory, say). None: the system's temporary
        folder.
    out : path, default=None
        Where to write the table (:class:`~hybrid.features.FeatureTableWriter`): batches or
        shards stream into it, so memory holds one, never the split, and the table returned
        is memory-mapped. None: the table is returned in memory.
    extra : dict of str to array, default=None
        Further arrays of the table (``images``), one row per sample, in data set order.

    Returns
    -------
    FeatureTable, or None on the ranks other than 0 of a distributed run.
    """
    with tempfile.TemporaryDirectory(prefix="hybrid-extract-") as folder:
        table = _Assembler(Path(out) if out is not None else Path(folder) / "table", features,
                           tuple(getattr(model, "concept_names", ())), class_names)
        try:
            if not _predicted_into(table, trainer, model, dataloader, scratch):
                return None  # another rank holds the table
            table.commit(extra or {})
        except BaseException:
            table.abort()
            raise
        loaded = FeatureTable.load(table.target)
        return loaded if out is not None else loaded.in_memory()


def _predicted_into(table: "_Assembler", trainer: pl.Trainer, model, dataloader, scratch
                    ) -> bool:
    """Run the CNN over ``dataloader`` into ``table``; False on ranks other than 0.

    One process hands each batch straight to the table: shard files would cost a write and
    a read per batch, a bound a GPU would hit. Several write shards, which rank 0 merges.
    """
    if trainer.world_size == 1:
        table.n_rows = len(dataloader.dataset)
        _predict(trainer, model, dataloader, _BatchWriter(table.add))
        return True
    folder = _new_folder(scratch) if trainer.is_global_zero else None
    try:
        _predict(trainer, model, dataloader, _ShardWriter(folder))
        if trainer.is_global_zero:
            _merge(folder, table)
        return trainer.is_global_zero
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _predict(trainer: pl.Trainer, model, dataloader, writer: BasePredictionWriter) -> None:
    """``trainer.predict`` with ``writer`` attached for this call only (the trainer may be
    reused), the outputs left to it."""
    trainer.callbacks.append(writer)
    try:
        trainer.predict(model, dataloaders=dataloader, return_predictions=False)
    finally:
        trainer.callbacks.remove(writer)


def _new_folder(scratch) -> Path:
    root = Path(scratch if scratch is not None else tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="shards-", dir=root))


class _BatchWriter(BasePredictionWriter):
    """Hands each predicted batch to ``sink(positions, arrays)`` (see :func:`_outputs`)."""

    def __init__(self, sink):
        super().__init__(write_interval="batch")
        self.sink = sink

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx):
        self.sink(*_outputs(prediction, batch_indices))


class _ShardWriter(BasePredictionWriter):
    """Writes each predicted batch to ``folder/RANK-BATCH.npz``, its positions included.

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
        positions, arrays = _outputs(prediction, batch_indices)
        np.savez(self.folder / f"{trainer.global_rank:05d}-{batch_idx:08d}.npz", **arrays,
                 **{_POSITION: positions})

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.strategy.barrier("extraction shards written")  # rank 0 merges next


def _outputs(prediction: dict, batch_indices) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A batch's positions in the data set and its outputs in numpy, float32 for floats."""
    if not batch_indices:
        raise TypeError("extraction needs a torch DataLoader with a batch sampler, whose "
                        "positions Lightning tracks")
    return (np.asarray(batch_indices, dtype=np.int64),
            {key: _numpy(value) for key, value in prediction.items()})


def _numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.float() if value.is_floating_point() else value).numpy()


def _merge(folder: Path, table: "_Assembler") -> None:
    """Every shard's rows added to ``table``, in data set order.

    Shards are read one at a time and written at their rows, so memory holds one shard. A
    position written twice keeps its first copy (ranks in order).
    """
    files = sorted(folder.glob("*.npz"))
    positions = []
    for file in files:
        with np.load(file) as shard:
            positions.append(shard[_POSITION])
    unique, first = np.unique(np.concatenate(positions or [np.empty(0, np.int64)]),
                              return_index=True)
    keep = np.zeros(sum(map(len, positions)), dtype=bool)
    keep[first] = True
    table.n_rows, offset = len(unique), 0
    for file, position in zip(files, positions):
        kept = keep[offset:offset + len(position)]
        offset += len(position)
        with np.load(file) as shard:
            outputs = {key: shard[key][kept] for key in shard.files if key != _POSITION}
        table.add(np.searchsorted(unique, position[kept]), outputs)


class _Assembler:
    """Predict outputs, batch by batch, into the table at ``target``: its columns are known
    at the first batch, which opens the :class:`~hybrid.features.FeatureTableWriter`."""

    def __init__(self, target: Path, features: str, concept_names: tuple[str, ...],
                 class_names):
        self.target, self.features, self.n_rows = target, features, None  # set before add
        self.concept_names, self.class_names = concept_names, class_names
        self.writer = None

    def add(self, rows: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        batch, names = _batch(outputs, self.features, self.concept_names)
        if self.writer is None:
            self.writer = FeatureTableWriter(self.target, self.n_rows, names["feature_names"],
                                             self.class_names, names["concept_names"])
        self.writer.write(rows, **batch)

    def commit(self, extra: dict) -> None:
        if self.writer is None:
            raise ValueError("extraction: the split has no rows")
        with self.writer:
            if extra:
                self.writer.write(0, **extra)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


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
