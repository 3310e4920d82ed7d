"""Mixed precision and channels_last memory format, from the config, for training and extraction."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from hybrid.backbones import BACKBONES
from hybrid.classifier import ChannelsLast, ImageClassifier
from hybrid.cli import main
from hybrid.config import load_config
from hybrid.errors import ConfigError
from hybrid.extraction import extract_table
from hybrid.features import FeatureTable
from hybrid.pipeline import start_run
from hybrid.pipeline._components import (build_classifier, build_datamodule, build_trainer,
                                         check_training_config)
from hybrid.rundir import SPLITS, RunDirectory

from .conftest import shrunk

# A few batches of each split: enough to train and to extract through every code path.
_FEW_BATCHES = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
                "trainer.log_every_n_steps=1"]


def _overrides(*values: str) -> list[str]:
    """The shrunk digits config (tiny_cnn, one epoch, few batches) and ``values``."""
    return [*shrunk()[1::2], *_FEW_BATCHES, *values]


def _args(*values: str) -> list[str]:
    return [arg for value in _overrides(*values) for arg in ("--set", value)]


def _convolutions(model) -> list[torch.nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def _is_channels_last(tensor: torch.Tensor) -> bool:
    """channels_last, and not also contiguous as a tensor with one channel is: both layouts
    are the same memory then."""
    return (tensor.is_contiguous(memory_format=torch.channels_last)
            and not tensor.is_contiguous())


def _quiet_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", **kwargs)


def test_channels_last_converts_weights_and_inputs_then_lets_go():
    pl.seed_everything(0, verbose=False)
    model = ImageClassifier(BACKBONES.create("tiny_cnn", in_channels=3), num_classes=2)
    data = TensorDataset(torch.randn(16, 3, 8, 8), torch.arange(16) % 2, torch.arange(16))
    inputs = []
    _convolutions(model)[0].register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    _quiet_trainer(max_epochs=1, callbacks=[ChannelsLast()]).fit(
        model, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert all(_is_channels_last(conv.weight) for conv in _convolutions(model))
    assert inputs and all(_is_channels_last(x) for x in inputs)
    inputs.clear()
    model(torch.randn(2, 3, 8, 8))
    assert inputs[0].is_contiguous(), "the input hook is gone once the trainer is done"


@pytest.mark.slow
def test_bf16_mixed_channels_last_trains_and_extracts_float32(tmp_path):
    run = start_run("configs/digits.yaml", tmp_path / "run", _overrides(
        "trainer.accelerator=cpu", "trainer.precision=bf16-mixed", "model.channels_last=true"))
    config = run.load_config()
    datamodule = build_datamodule(config)
    model = build_classifier(config, datamodule)
    # Digits have one channel: the first convolution's weights look the same in both layouts.
    wide = [conv.weight for conv in _convolutions(model) if conv.in_channels > 1]
    assert wide and not any(_is_channels_last(w) for w in wide)
    trainer = build_trainer(config, run, training=True)
    trainer.fit(model, datamodule=datamodule)
    assert all(_is_channels_last(w) for w in wide)
    assert trainer.precision == "bf16-mixed"

    table = extract_table(build_trainer(config, run, training=False), model.eval(),
                          datamodule.split_dataloader("val"), datamodule.class_names)
    assert table.X.dtype == np.float32 and table.proba.dtype == np.float32
    assert np.isfinite(table.X).all() and np.isfinite(table.proba).all()
    np.testing.assert_array_equal(table.index, datamodule.splits["val"].tensors[2].numpy())
    assert np.abs(table.X).max() > 0


@pytest.mark.slow
def test_stage_verbs_with_bf16_mixed_and_channels_last(tmp_path):
    for table in _fitted_and_extracted(tmp_path, "trainer.accelerator=cpu"):
        np.testing.assert_allclose(table.proba.sum(axis=1), 1, atol=1e-2)


def _fitted_and_extracted(tmp_path, *overrides) -> list[FeatureTable]:
    """``hybrid fit`` and ``hybrid extract`` in bf16-mixed and channels_last; each split's
    table, checked float32 and finite."""
    out = tmp_path / "run"
    args = _args(*overrides, "trainer.precision=bf16-mixed", "model.channels_last=true")
    assert main(["fit", "configs/digits.yaml", "--out", str(out), *args]) == 0
    assert main(["extract", str(out)]) == 0
    tables = [FeatureTable.load(RunDirectory(out).features(split)) for split in SPLITS]
    for table in tables:
        assert table.X.dtype == np.float32 and np.isfinite(table.X).all()
        assert table.proba.dtype == np.float32 and np.isfinite(table.proba).all()
    return tables


@pytest.mark.parametrize("override, key", [
    ("trainer.precision=bf17", "key 'trainer.precision'"),
    ("model.channels_last=maybe", "key 'model.channels_last'"),
])
def test_bad_precision_or_memory_format_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        check_training_config(load_config("configs/digits.yaml", [override]))


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_bf16_mixed_channels_last_fit_and_extract(tmp_path):
    tables = _fitted_and_extracted(tmp_path, "trainer.accelerator=gpu", "trainer.devices=1")
    assert len(tables) == len(SPLITS) and torch.cuda.is_available()
