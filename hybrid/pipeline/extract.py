"""Stage 2, extract: features, probabilities, teacher and true labels for every split.

The features are the penultimate-layer embedding, or (``extract.features:
discovered_concepts``) the activations of concepts discovered by NMF in the last convolution,
fitted on the train split.

Under a distributed strategy every rank runs the CNN over its share of each split and writes
it to shard files in ``RUN/.extract-shards/``; rank 0 merges them into the tables, writes
the feature files and the marker, and removes the shards.
"""

import dataclasses
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
    tables = {}
    for split in SPLITS:
        loader = datamodule.split_dataloader(split, batch_size=config.extract.batch_size)
        table = extract_table(trainer, model, loader, datamodule.class_names,
                              config.extract.features, scratch=scratch)
        if table is None:  # another rank holds the table
            continue
        if split in _SPLITS_WITH_IMAGES and hasattr(datamodule, "display_images"):
            table = dataclasses.replace(table, images=datamodule.display_images(split))
        tables[split] = table
    if not trainer.is_global_zero:
        return {}
    shutil.rmtree(scratch, ignore_errors=True)
    return _save(run, config, model, datamodule, tables)


def _save(run: RunDirectory, config, model, datamodule, tables: dict) -> dict:
    """Write the tables (concepts discovered first, if asked) and the stage's marker."""
    if config.extract.features == "discovered_concepts":
        from ..concepts.discovery import concept_tables

        tables = concept_tables(model.backbone, datamodule, tables, config.extract.n_concepts,
                                config.seed)
    summary = {}
    for split, table in tables.items():
        table.save(run.features(split))
        summary[split] = {"rows": len(table), "features": config.extract.features,
                          "teacher_accuracy": table.teacher_accuracy}
        log.info("extract: %s: %d rows x %d %s features, CNN accuracy %.4f", split, len(table),
                 table.X.shape[1], config.extract.features, table.teacher_accuracy)
    run.mark_done("extract", summary)
    return summary
