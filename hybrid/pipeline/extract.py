"""Stage 2, extract: embeddings, probabilities, teacher and true labels for every split."""

import dataclasses
import logging

from ..extraction import extract_table
from ..rundir import SPLITS, RunDirectory
from ._components import build_datamodule, build_trainer, load_classifier, quiet_lightning

__all__ = ["extract"]

log = logging.getLogger("hybrid")

# Display copies of the images are kept where the report shows them (its gallery).
_SPLITS_WITH_IMAGES = ("test",)


def extract(run: RunDirectory) -> dict:
    config = run.load_config()
    quiet_lightning()
    datamodule = build_datamodule(config)
    model = load_classifier(config, run, datamodule.input_shape[0])
    trainer = build_trainer(config, run, training=False)
    summary = {}
    for split in SPLITS:
        loader = datamodule.split_dataloader(split, batch_size=config.extract.batch_size)
        table = extract_table(trainer, model, loader, datamodule.class_names)
        if split in _SPLITS_WITH_IMAGES and hasattr(datamodule, "display_images"):
            table = dataclasses.replace(table, images=datamodule.display_images(split))
        table.save(run.features(split))
        summary[split] = {"rows": len(table), "teacher_accuracy": table.teacher_accuracy}
        log.info("extract: %s: %d rows x %d features, CNN accuracy %.4f", split, len(table),
                 table.X.shape[1], table.teacher_accuracy)
    run.mark_done("extract", summary)
    return summary
