"""The pipeline: fit -> extract -> distill -> evidence -> export -> report over one run directory.

Stage modules are imported when their stage runs, so the numpy-side stages (distill, export,
report) never import torch.
"""

import importlib
import logging
from pathlib import Path

from ..config import load_config
from ..errors import ConfigError
from ..rundir import STAGES, RunDirectory

__all__ = ["STAGES", "run_stage", "run_pipeline", "start_run", "check_config"]

log = logging.getLogger("hybrid")


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

    ``out`` defaults to ``runs/<config file stem>``.
    """
    config = load_config(config_path, overrides)
    try:
        check_config(config)
    except ConfigError as exc:  # registries and signatures don't know the file: name it
        raise exc.with_source(config_path) from None
    run = RunDirectory(out if out is not None else Path("runs") / Path(config_path).stem)
    run.create(config, overwrite=overwrite)
    return run


def run_stage(run: RunDirectory, stage: str, redo: bool = False):
    """Run one stage unless it is done already; running it makes the later stages stale."""
    if run.is_done(stage) and not redo:
        log.info("%s: done already (%s); pass --overwrite to redo", stage, run.marker(stage))
        return None
    run.invalidate_from(stage)
    try:
        return _stage_function(stage)(run)
    except ConfigError as exc:
        raise exc.with_source(run.config_path) from None


def run_pipeline(run: RunDirectory) -> None:
    """Every stage in order, skipping those a previous (possibly killed) run finished."""
    for stage in STAGES:
        run_stage(run, stage)
