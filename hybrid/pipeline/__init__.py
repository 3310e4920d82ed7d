"""The pipeline: fit -> extract -> distill -> evidence -> export -> report over one run directory.

Stage modules are imported when their stage runs, so the numpy-side stages (distill, export,
report) never import torch.

Under a distributed Lightning strategy (``trainer.strategy: ddp``) every process runs the
command line, but only global rank 0 writes the run directory: the other ranks join the
Lightning stages (:data:`DISTRIBUTED_STAGES`) and then stop.
"""

import importlib
import logging
from pathlib import Path

from ..config import load_config
from ..errors import ConfigError
from ..rundir import STAGES, RunDirectory
from ._ranks import MainProcessOnly, is_main_process

__all__ = ["STAGES", "DISTRIBUTED_STAGES", "run_stage", "run_pipeline", "start_run",
           "check_config", "is_main_process"]

#: Stages that run through a Lightning ``Trainer``: every process of a distributed job joins.
DISTRIBUTED_STAGES = ("fit", "extract")

log = logging.getLogger("hybrid")
log.addFilter(MainProcessOnly())  # the other ranks would repeat rank 0's progress lines


def _stage_function(stage: str):
    return getattr(importlib.import_module(f"{__name__}.{stage}"), stage)


def check_config(config) -> None:
    """Check every registry name and parameter a config mentions, before any work."""
    from ._components import check_training_config
    from .distill import check_surrogates_config
    from .export import check_export_config

    check_training_config(config)
    check_surrogates_config(config)
    check_export_config(config)


def start_run(config_path, out=None, overrides=(), overwrite=False) -> RunDirectory:
    """Validate the config and create (or reuse) its run directory.

    ``out`` defaults to ``runs/<config file stem>``. Only rank 0 creates (or replaces) the
    directory: the other ranks of a distributed run start after it did, from the same
    command line, and must not wipe it with ``overwrite``.
    """
    config = load_config(config_path, overrides)
    try:
        check_config(config)
    except ConfigError as exc:  # registries and signatures don't know the file: name it
        raise exc.with_source(config_path) from None
    run = RunDirectory(out if out is not None else Path("runs") / Path(config_path).stem)
    if is_main_process():
        run.create(config, overwrite=overwrite)
    return run


def run_stage(run: RunDirectory, stage: str, redo: bool = False):
    """Run one stage unless it is done already; running it makes the later stages stale.

    A rank other than 0 only joins the :data:`DISTRIBUTED_STAGES` and leaves the markers to
    rank 0; it skips the others (returns None).
    """
    if run.is_done(stage) and not redo:
        log.info("%s: done already (%s); pass --overwrite to redo", stage, run.marker(stage))
        return None
    main = is_main_process()
    if not main and stage not in DISTRIBUTED_STAGES:
        return None
    if main:
        run.invalidate_from(stage)
    try:
        return _stage_function(stage)(run)
    except ConfigError as exc:
        raise exc.with_source(run.config_path) from None


def run_pipeline(run: RunDirectory) -> bool:
    """Every stage in order, skipping those a previous (possibly killed) run finished.

    Returns whether this process finished the run: False on a rank other than 0 of a
    distributed run, which stops after the distributed stages.
    """
    for stage in STAGES:
        run_stage(run, stage)  # on other ranks, a no-op past the distributed stages
    return is_main_process()
