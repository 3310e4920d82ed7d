"""Stage 2, extract: features, probabilities, teacher and true labels for every split.

The features are the penultimate-layer embedding, or (``extract.features:
discovered_concepts``) the activations of concepts discovered by NMF in the last convolution,
fitted on the train split.

Under a distributed strategy every rank runs the CNN over its share of each split and writes
it to shard files in ``RUN/.extract-shards/``; rank 0 streams them, one at a time, into the
split's on-disk table (:class:`~hybrid.features.FeatureTableWriter`), writes the marker and
removes the shards. One process writes its batches straight into the table. Either way
memory holds a batch or a shard, never a split (except with discovered concepts, which are
fitted on the tables in memory).
"""

import logging
import shutil

from ..extraction import extract_table
from ..rundir import SPLITS, RunDirectory
from ._components import build_datamodule, build_trainer, load_classifier, quiet_lightning
from ._ranks import is_main_process

__all__ = ["extract"]

log = logging.getLogger("hybrid")

# Display copies of the images are kept where the report shows them (its gallery).
_SPLITS_WITH_IMAGES = ("test",)
# Shard files of the processes, inside the run directory so that every node sees them.
_SCRATCH = ".extract-shards"


def extract(run: RunDirectory) -> dict:
    config = run.load_config()
    quiet_lightning()
    scratch = run.root / _SCRATCH
    if is_main_process():  # shards a killed run left behind
        shutil.rmtree(scratch, ignore_errors=True)
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0])
    trainer = build_trainer(config, run, training=False)
    # discovered concepts are fitted on whole tables in memory; other features stream to disk
    streamed = config.extract.features != "discovered_concepts"
    tables = {}
    for split in SPLITS:
        loader = datamodule.split_dataloader(split, batch_size=config.extract.batch_size)
        extra = ({"images": datamodule.display_images(split)}
                 if split in _SPLITS_WITH_IMAGES and hasattr(datamodule, "display_images")
                 else None)
        table = extract_table(trainer, model, loader, datamodule.class_names,
                              config.extract.features, scratch=scratch,
                              out=run.features(split) if streamed else None, extra=extra)
        if table is not None:  # None: another rank holds the table
            tables[split] = table
    if not trainer.is_global_zero:
        return {}
    shutil.rmtree(scratch, ignore_errors=True)
    if not streamed:
        from ..concepts.discovery import concept_tables

        tables = concept_tables(model.backbone, datamodule, tables, config.extract.n_concepts,
                                config.seed)
        for split, table in tables.items():
            table.save(run.features(split))
    return _summary(run, config, tables)


def _summary(run: RunDirectory, config, tables: dict) -> dict:
    """Log the tables and write the stage's marker."""
    summary = {}
    for split, table in tables.items():
        summary[split] = {"rows": len(table), "features": config.extract.features,
                          "teacher_accuracy": table.teacher_accuracy}
        log.info("extract: %s: %d rows x %d %s features, CNN accuracy %.4f", split, len(table),
                 table.X.shape[1], config.extract.features, table.teacher_accuracy)
    run.mark_done("extract", summary)
    return summary
