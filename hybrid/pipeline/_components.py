"""Build the torch side of a run from its config: data module, backbone, classifier, trainer.

Shared by the fit and extract stages. Everything a config names is checked here first
(:func:`check_training_config`), so a wrong name or key fails before any work starts.

``config.trainer`` passes through to ``pl.Trainer``: any Lightning strategy (``ddp`` over
``devices`` and ``num_nodes``), ``precision`` (``bf16-mixed``) and accelerator. With
``model.channels_last`` the trainer runs the model in channels_last memory format
(:class:`hybrid.classifier.ChannelsLast`).
"""

import inspect
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from ..attribution import METHODS
from ..backbones import BACKBONES
from ..bottleneck import ConceptBottleneckModel
from ..classifier import OPTIMIZERS, SCHEDULERS, ChannelsLast, ImageClassifier
from ..config import Config, check_keys, check_params
from ..data import DATAMODULES
from ..images import list_images, load_images
from ..errors import ConfigError
from ..extraction import extract_table
from ..features import FeatureTable
from ..rundir import RunDirectory

__all__ = ["check_training_config", "build_datamodule", "build_classifier", "build_trainer",
           "load_classifier", "inference_device", "predict_table", "predict_images",
           "read_images", "quiet_lightning"]

# pl.Trainer arguments hybrid sets itself: the run directory decides them.
_RESERVED_TRAINER_KEYS = ("callbacks", "logger", "default_root_dir", "enable_checkpointing")
# pl.Trainer arguments that spread work over processes; a one-process trainer drops them.
_DISTRIBUTED_TRAINER_KEYS = ("strategy", "devices", "num_nodes")


def check_training_config(config: Config) -> None:
    """Check data, model and trainer sections against the registries and ``pl.Trainer``.

    The data module and backbone are built too (cheap: data load in ``setup``), so checks
    their constructors make across parameters also fail before any work.
    """
    check_params(DATAMODULES.get(config.data.name), config.data.params, "data.params")
    backbone = config.model.backbone
    check_params(BACKBONES.get(backbone.name), backbone.params, "model.backbone.params",
                 supplied=("in_channels",))
    _backbone(config, DATAMODULES.create(config.data.name, **config.data.params).input_shape[0])
    check_params(OPTIMIZERS.get(config.model.optimizer.name), config.model.optimizer.params,
                 "model.optimizer.params", supplied=("params",))
    SCHEDULERS.get(config.model.scheduler)
    for method in (config.evidence.method, *config.evidence.methods):
        METHODS.get(method)
    for key in config.trainer:
        if key in _RESERVED_TRAINER_KEYS:
            raise ConfigError(f"key 'trainer.{key}' is set by hybrid from the run directory; "
                              "remove it")
    settable = [key for key in inspect.signature(pl.Trainer).parameters
                if key not in _RESERVED_TRAINER_KEYS]
    check_keys(config.trainer, settable, "trainer")
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


def build_datamodule(config: Config, normalization=None) -> pl.LightningDataModule:
    """The configured data module, set up; ``normalization`` overrides its (mean, std)."""
    params = dict(config.data.params)
    if normalization is not None:
        params["normalization"] = tuple(normalization)
    datamodule = DATAMODULES.create(config.data.name, **params)
    datamodule.setup()
    return datamodule


def build_classifier(config: Config, datamodule) -> pl.LightningModule:
    """An :class:`ImageClassifier`, or with ``model.bottleneck`` a
    :class:`ConceptBottleneckModel` over the data module's concepts."""
    common = {"num_classes": datamodule.num_classes, "optimizer": config.model.optimizer.name,
              "optimizer_params": dict(config.model.optimizer.params),
              "scheduler": config.model.scheduler,
              "label_smoothing": config.model.label_smoothing}
    backbone = _backbone(config, datamodule.input_shape[0])
    bottleneck = config.model.bottleneck
    if bottleneck is None:
        return ImageClassifier(backbone, **common)
    if not getattr(datamodule, "concept_names", ()):
        raise ConfigError(f"key 'model.bottleneck': data set '{config.data.name}' has no concept "
                          "labels to train a concept bottleneck on (shapes has them; an "
                          "image folder has them with a concepts.csv)")
    return ConceptBottleneckModel(backbone, concept_names=tuple(datamodule.concept_names),
                                  **bottleneck.model_dump(), **common)


def load_classifier(config: Config, run: RunDirectory, in_channels: int) -> pl.LightningModule:
    """The run's best checkpoint (a classifier or concept bottleneck model), in eval mode."""
    checkpoint = run.read_marker("fit")["best_checkpoint"]
    module = ImageClassifier if config.model.bottleneck is None else ConceptBottleneckModel
    model = module.load_from_checkpoint(checkpoint, backbone=_backbone(config, in_channels),
                                        map_location="cpu", weights_only=True)
    return model.eval()


def _backbone(config: Config, in_channels: int):
    return BACKBONES.create(config.model.backbone.name, in_channels=in_channels,
                            **config.model.backbone.params)


def inference_device(config: Config) -> torch.device:
    """Where hybrid's own forward and backward passes run (attributions, concepts): a CUDA
    device when the trainer may use one (``accelerator`` auto, gpu or cuda) and one is present,
    else the CPU. Lightning places training and extraction itself."""
    accelerator = str(config.trainer.get("accelerator", "auto"))
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def predict_table(config: Config, run: RunDirectory, loader, class_names,
                  in_channels: int) -> FeatureTable:
    """Features and CNN answers for every batch of ``loader``, through the best checkpoint.

    Runs in this process on one device whatever ``trainer.strategy`` says: a distributed
    launch would run the whole calling command (an audit, say) once per device.
    """
    quiet_lightning()
    model = load_classifier(config, run, in_channels)
    trainer = build_trainer(config, run, training=False, one_process=True)
    return extract_table(trainer, model, loader, class_names)


def predict_images(config: Config, run: RunDirectory, datamodule, folder: Path,
                   batch_size: int = 256) -> tuple[FeatureTable, list[Path]]:
    """Run the CNN over ``folder/CLASS/*.png``; sub-folders are named by class name.

    Images are resized and scaled to what ``datamodule`` feeds the CNN, then normalized with
    its training statistics.
    """
    files, labels = _labelled_images(folder, datamodule.class_names)
    _, images = read_images(datamodule, files)
    dataset = TensorDataset(images, torch.tensor(labels), torch.arange(len(files)))
    loader = DataLoader(dataset, batch_size=batch_size)
    return predict_table(config, run, loader, datamodule.class_names,
                         datamodule.input_shape[0]), files


def read_images(datamodule, files) -> tuple[np.ndarray, torch.Tensor]:
    """Image files as ``datamodule`` feeds the CNN: resized, in its value range (returned as
    is, for display) and normalized with its training statistics (a float32 tensor)."""
    channels, height, width = datamodule.input_shape
    pixels = load_images(files, channels, height, width, datamodule.value_range)
    mean, std = datamodule.normalization
    return pixels, torch.from_numpy((pixels - mean) / std)


def _labelled_images(folder: Path, class_names) -> tuple[list[Path], list[int]]:
    folders = sorted(d for d in folder.iterdir() if d.is_dir())
    if not folders:
        raise ConfigError(f"{folder}: expected one sub-folder of images per class, named by "
                          f"class ({', '.join(class_names)})")
    files, labels = [], []
    for sub in folders:
        if sub.name not in class_names:
            raise ConfigError(f"{sub}: '{sub.name}' is not a class of this run; sub-folders "
                              f"must be named by class: {', '.join(class_names)}")
        found = list_images(sub)
        files += found
        labels += [list(class_names).index(sub.name)] * len(found)
    return files, labels


def build_trainer(config: Config, run: RunDirectory, training: bool,
                  one_process: bool = False) -> pl.Trainer:
    """A ``pl.Trainer`` from ``config.trainer``; training adds checkpoints and the CSV log.

    ``one_process`` drops the strategy, devices and nodes for one device of the configured
    accelerator. Lightning writes checkpoints and logs from global rank 0 only.
    """
    kwargs = dict(config.trainer)
    if one_process:
        kwargs = {k: v for k, v in kwargs.items() if k not in _DISTRIBUTED_TRAINER_KEYS}
        kwargs["devices"] = 1
    callbacks = [ChannelsLast()] if config.model.channels_last else []
    if training:
        callbacks.append(ModelCheckpoint(dirpath=run.checkpoints, filename="best",
                                         monitor="val/loss", mode="min", save_last=True))
        extra = {"logger": CSVLogger(save_dir=run.root, name="logs", version="")}
    else:
        extra = {"logger": False, "enable_checkpointing": False}
    return _trainer(kwargs, {**extra, "callbacks": callbacks}, root=run.root)


def _trainer(kwargs: dict, extra: dict, root) -> pl.Trainer:
    try:
        return pl.Trainer(**kwargs, **extra, default_root_dir=root)
    except (TypeError, ValueError, ImportError, RuntimeError, MisconfigurationException) as exc:
        raise ConfigError(f"{_trainer_keys(kwargs, str(exc))}: {_one_line(exc)}") from None


def _trainer_keys(kwargs: dict, message: str) -> str:
    """The trainer keys Lightning's message names ("key 'trainer.precision'"), else the
    section: Lightning says which argument it rejects, in its own words."""
    named = [key for key in kwargs if re.search(rf"\b{re.escape(key)}\b", message, re.IGNORECASE)]
    if not named:
        return "section 'trainer'"
    return ("key " if len(named) == 1 else "keys ") + ", ".join(f"'trainer.{k}'" for k in named)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def quiet_lightning() -> None:
    """Silence Lightning's advice that does not apply to hybrid's in-memory data sets."""
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*has `shuffle=True`.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
