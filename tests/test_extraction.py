"""Extraction through Lightning's predict loop, with a tiny stand-in model."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from hybrid.backbones import BACKBONES
from hybrid.classifier import ImageClassifier
from hybrid.data import DigitsDataModule
from hybrid.extraction import extract_table
from hybrid.features import FeatureTable


@pytest.fixture(scope="module")
def datamodule():
    dm = DigitsDataModule(batch_size=128)
    dm.setup()
    return dm


def _model(dm, seed=0):
    pl.seed_everything(seed, verbose=False)
    return ImageClassifier(BACKBONES.create("tiny_cnn", in_channels=1), dm.num_classes).eval()


def _trainer(**kwargs):
    return pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


def test_split_is_stratified_disjoint_and_seeded(datamodule):
    indices = {name: set(ds.tensors[2].tolist()) for name, ds in datamodule.splits.items()}
    assert not indices["train"] & indices["test"] and not indices["val"] & indices["test"]
    assert sum(map(len, indices.values())) == 1797
    again = DigitsDataModule()
    again.setup()
    assert again.splits["test"].tensors[2].tolist() == datamodule.splits["test"].tensors[2].tolist()
    counts = np.bincount(datamodule.splits["test"].tensors[1].numpy())
    assert counts.max() - counts.min() <= 2


def test_table_holds_embeddings_answers_and_ids_in_order(datamodule):
    table = extract_table(_trainer(accelerator="cpu"), _model(datamodule),
                          datamodule.split_dataloader("val"), datamodule.class_names)
    assert table.X.shape == (len(datamodule.splits["val"]), 8) and table.X.dtype == np.float32
    np.testing.assert_array_equal(table.teacher, table.proba.argmax(axis=1))
    np.testing.assert_allclose(table.proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(table.index, datamodule.splits["val"].tensors[2].numpy())
    assert table.feature_names[:2] == ("dim_0", "dim_1") and table.class_names[3] == "3"


def test_batch_size_does_not_change_the_features(datamodule):
    model = _model(datamodule)
    small = extract_table(_trainer(accelerator="cpu"), model,
                          datamodule.split_dataloader("test", batch_size=7), datamodule.class_names)
    large = extract_table(_trainer(accelerator="cpu"), model,
                          datamodule.split_dataloader("test", batch_size=500), datamodule.class_names)
    np.testing.assert_allclose(small.X, large.X, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(small.index, large.index)


@pytest.mark.gpu
def test_gpu_bf16_extraction_matches_cpu(datamodule):
    model = _model(datamodule)
    cpu = extract_table(_trainer(accelerator="cpu"), model, datamodule.split_dataloader("test"),
                        datamodule.class_names)
    gpu = extract_table(_trainer(accelerator="gpu", devices=1, precision="bf16-mixed"), model,
                        datamodule.split_dataloader("test"), datamodule.class_names)
    assert gpu.X.dtype == np.float32
    np.testing.assert_allclose(gpu.X, cpu.X, rtol=0.05, atol=0.05)
    assert np.mean(gpu.teacher == cpu.teacher) > 0.95
    assert torch.cuda.is_available()


def test_a_table_streamed_to_disk_equals_the_table_in_memory(datamodule, tmp_path):
    model = _model(datamodule)
    loader = lambda: datamodule.split_dataloader("test", batch_size=50)  # noqa: E731
    in_memory = extract_table(_trainer(accelerator="cpu"), model, loader(),
                              datamodule.class_names)
    images = np.zeros((len(in_memory), 8, 8), dtype=np.uint8)
    on_disk = extract_table(_trainer(accelerator="cpu"), model, loader(), datamodule.class_names,
                            scratch=tmp_path / "scratch", out=tmp_path / "test",
                            extra={"images": images})
    assert isinstance(on_disk.X, np.memmap) and not isinstance(in_memory.X, np.memmap)
    for name, array in in_memory.arrays().items():
        np.testing.assert_array_equal(getattr(on_disk, name), array, err_msg=name)
    np.testing.assert_array_equal(on_disk.images, images)
    assert on_disk.feature_names == in_memory.feature_names
    # one process writes batches straight into the table: no shards, no temporary folder left
    assert [p.name for p in tmp_path.iterdir()] == ["test"]


def test_a_failed_extraction_keeps_the_table_already_written(datamodule, tmp_path, monkeypatch):
    model = _model(datamodule)
    loader = lambda: datamodule.split_dataloader("test", batch_size=50)  # noqa: E731
    first = extract_table(_trainer(accelerator="cpu"), model, loader(), datamodule.class_names,
                          out=tmp_path / "test")
    calls = []
    original = model.predict_step

    def failing(batch, batch_idx, dataloader_idx=0):
        calls.append(batch_idx)
        if batch_idx == 2:
            raise RuntimeError("killed mid-split")
        return original(batch, batch_idx, dataloader_idx)

    monkeypatch.setattr(model, "predict_step", failing)
    with pytest.raises(RuntimeError, match="killed mid-split"):
        extract_table(_trainer(accelerator="cpu"), model, loader(), datamodule.class_names,
                      out=tmp_path / "test")
    assert calls == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["test"]  # no half-written table beside it
    np.testing.assert_array_equal(FeatureTable.load(tmp_path / "test").X, first.X)
