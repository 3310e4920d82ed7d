"""Build the torch side of a run from its config: data module, backbone, classifier, trainer.

Shared by the fit and extract stages. Everything a config names is checked here first
(:func:`check_training_config`), so a wrong name or key fails before any work starts.
"""

import inspect
import logging
import warnings

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from ..backbones import BACKBONES
from ..classifier import OPTIMIZERS, SCHEDULERS, ImageClassifier
from ..config import Config, check_keys, check_params
from ..data import DATAMODULES
from ..errors import ConfigError
from ..rundir import RunDirectory

__all__ = ["check_training_config", "build_datamodule", "build_classifier", "build_trainer",
           "load_classifier", "quiet_lightning"]

# pl.Trainer arguments hybrid sets itself: the run directory decides them.
_RESERVED_TRAINER_KEYS = ("callbacks", "logger", "default_root_dir", "enable_checkpointing")


def check_training_config(config: Config) -> None:
    """Check data, model and trainer sections against the registries and ``pl.Trainer``.

    The data module and backbone are built too (cheap: data load in ``setup``), so checks
    their constructors make across parameters also fail before any work.
    """
    check_params(DATAMODULES.get(config.data.name), config.data.params, "data.params")
    backbone = config.model.backbone
    check_params(BACKBONES.get(backbone.name), backbone.params, "model.backbone.params",
                 supplied=("in_channels",))
    _backbone(config, DATAMODULES.create(config.data.name, **config.data.params))
    check_params(OPTIMIZERS.get(config.model.optimizer.name), config.model.optimizer.params,
                 "model.optimizer.params", supplied=("params",))
    SCHEDULERS.get(config.model.scheduler)
    for key in config.trainer:
        if key in _RESERVED_TRAINER_KEYS:
            raise ConfigError(f"key 'trainer.{key}' is set by hybrid from the run directory; "
                              "remove it")
    check_keys(config.trainer, inspect.signature(pl.Trainer).parameters, "trainer")
    _probe_trainer(config)


def _probe_trainer(config: Config) -> None:
    """Build a throw-away Trainer so a value Lightning rejects fails before any work."""
    lightning_log = logging.getLogger("pytorch_lightning")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # its device summary prints once, when training
    try:
        _trainer(config.trainer, {"logger": False, "enable_checkpointing": False}, root=None)
    finally:
        lightning_log.setLevel(level)


def build_datamodule(config: Config) -> pl.LightningDataModule:
    datamodule = DATAMODULES.create(config.data.name, **config.data.params)
    datamodule.setup()
    return datamodule


def build_classifier(config: Config, datamodule) -> ImageClassifier:
    return ImageClassifier(_backbone(config, datamodule), num_classes=datamodule.num_classes,
                           optimizer=config.model.optimizer.name,
                           optimizer_params=dict(config.model.optimizer.params),
                           scheduler=config.model.scheduler,
                           label_smoothing=config.model.label_smoothing)


def load_classifier(config: Config, datamodule, checkpoint) -> ImageClassifier:
    """The trained classifier from ``checkpoint``, in eval mode."""
    model = ImageClassifier.load_from_checkpoint(checkpoint, backbone=_backbone(config, datamodule),
                                                 map_location="cpu", weights_only=True)
    return model.eval()


def _backbone(config: Config, datamodule):
    return BACKBONES.create(config.model.backbone.name, in_channels=datamodule.input_shape[0],
                            **config.model.backbone.params)


def build_trainer(config: Config, run: RunDirectory, training: bool) -> pl.Trainer:
    """A ``pl.Trainer`` from ``config.trainer``; training adds checkpoints and the CSV log."""
    kwargs = dict(config.trainer)
    if training:
        checkpoint = ModelCheckpoint(dirpath=run.checkpoints, filename="best", monitor="val/loss",
                                     mode="min", save_last=True)
        extra = {"callbacks": [checkpoint],
                 "logger": CSVLogger(save_dir=run.root, name="logs", version="")}
    else:
        extra = {"logger": False, "enable_checkpointing": False}
    return _trainer(kwargs, extra, root=run.root)


def _trainer(kwargs: dict, extra: dict, root) -> pl.Trainer:
    try:
        return pl.Trainer(**kwargs, **extra, default_root_dir=root)
    except (TypeError, ValueError, ImportError, RuntimeError, MisconfigurationException) as exc:
        raise ConfigError(f"section 'trainer': {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def quiet_lightning() -> None:
    """Silence Lightning's advice that does not apply to hybrid's in-memory data sets."""
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*has `shuffle=True`.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
