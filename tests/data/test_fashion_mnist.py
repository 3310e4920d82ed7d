"""Fashion-MNIST: IDX parsing on tiny files, clear errors, and the standard split on the real
files (skipped when `apt-get install -y dataset-fashion-mnist` has not been run)."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hybrid.cli import main
from hybrid.config import check_params
from hybrid.data import DATAMODULES, FashionMNISTDataModule
from hybrid.data.fashion_mnist import DEFAULT_ROOT, IDX_FILES, read_idx
from hybrid.errors import ConfigError
from hybrid.features import FeatureTable
from hybrid.rundir import RunDirectory

from ..conftest import shrunk

REAL = Path(DEFAULT_ROOT)
needs_real_files = pytest.mark.skipif(
    not all((REAL / f"{name}.gz").is_file() or (REAL / name).is_file()
            for name in IDX_FILES.values()),
    reason=f"Fashion-MNIST is not installed in {DEFAULT_ROOT} "
           "(apt-get install -y dataset-fashion-mnist)")


def _idx(array) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    return (b"\x00\x00\x08" + bytes([array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
            + array.tobytes())


def _write(path: Path, data: bytes, gz: bool) -> Path:
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _tiny_fashion(root: Path, per_class=(6, 2), gz=True) -> dict[str, np.ndarray]:
    """A Fashion-MNIST-shaped data set: ``per_class`` train and test images of each class;
    image k of a split is filled with the value k (so rows can be told apart)."""
    arrays = {}
    for split, n in zip(("train", "test"), per_class):
        labels = np.tile(np.arange(10), n)
        arrays[f"{split}_labels"] = labels
        arrays[f"{split}_images"] = np.broadcast_to(np.arange(len(labels))[:, None, None],
                                                    (len(labels), 28, 28))
    root.mkdir(exist_ok=True)
    for role, name in IDX_FILES.items():
        _write(root / name, _idx(arrays[role]), gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_parses_header_and_values(tmp_path, gz):
    expected = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = _write(tmp_path / "tiny-idx3-ubyte", _idx(expected), gz)
    parsed = read_idx(path)
    assert parsed.dtype == np.uint8 and parsed.shape == (2, 3, 4)
    np.testing.assert_array_equal(parsed, expected)


@pytest.mark.parametrize("data, message", [
    (b"\x08\x03\x00\x00" + bytes(8), "not an IDX file of unsigned bytes: it starts with 08 03"),
    (b"\x00\x00\x0d\x01" + bytes(8), "not an IDX file of unsigned bytes"),  # 0x0d: float32
    (b"", "starts with nothing"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
    (_idx(np.zeros((2, 3)))[:-1], r"shape \(2, 3\) \(6 values\) but 5 follow"),
], ids=["bad magic", "float type", "empty", "short header", "short data"])
def test_a_corrupt_file_is_named(tmp_path, data, message):
    path = _write(tmp_path / "train-labels-idx1-ubyte", data, gz=False)
    with pytest.raises(ConfigError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_a_broken_gzip_file_is_named(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx(np.arange(100)))[:-20])
    with pytest.raises(ConfigError, match="cannot read it") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_files_say_how_to_install(tmp_path):
    with pytest.raises(ConfigError) as info:
        FashionMNISTDataModule(root=str(tmp_path)).setup()
    message = str(info.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "data.params.root" in message
    assert str(tmp_path) in message
    assert all(name in message for name in IDX_FILES.values())


def test_only_the_missing_file_is_named(tmp_path):
    _tiny_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ConfigError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]; install") as info:
        FashionMNISTDataModule(root=str(tmp_path)).setup()
    assert "train-images" not in str(info.value)


def test_images_and_labels_must_agree(tmp_path):
    _tiny_fashion(tmp_path)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx(np.zeros(3)), gz=True)
    with pytest.raises(ConfigError, match="expected 20 labels, one per image") as info:
        FashionMNISTDataModule(root=str(tmp_path)).setup()
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_tiny_data_set_splits_indexes_and_scales(tmp_path, gz):
    arrays = _tiny_fashion(tmp_path, per_class=(6, 2), gz=gz)
    data = FashionMNISTDataModule(root=str(tmp_path), val_fraction=1 / 6, batch_size=7)
    data.setup()
    sizes = {name: len(split) for name, split in data.splits.items()}
    assert sizes == {"train": 50, "val": 10, "test": 20}
    x, y, index = next(iter(data.split_dataloader("test")))
    assert x.shape == (7, 1, 28, 28) and x.dtype.is_floating_point
    np.testing.assert_array_equal(index.numpy(), np.arange(60, 67))  # after the 60 train rows
    np.testing.assert_array_equal(y.numpy(), arrays["test_labels"][:7])
    images, labels, index = data.splits["val"].tensors
    assert sorted(labels.tolist()) == list(range(10)), "one image of each class"
    train_rows = data.splits["train"].tensors[2].numpy()
    assert (index < 60).all() and not set(index.tolist()) & set(train_rows.tolist())
    display = data.display_images("val")
    assert display.dtype == np.uint8 and display.shape == (10, 28, 28)
    np.testing.assert_array_equal(display[:, 0, 0], index.numpy())  # image k holds value k
    mean, std = data.normalization
    assert mean == pytest.approx(train_rows.mean()) and std == pytest.approx(train_rows.std())
    np.testing.assert_allclose(images[:, 0].numpy() * std + mean, display, atol=1e-4)


def test_normalization_can_be_given(tmp_path):
    _tiny_fashion(tmp_path)
    data = FashionMNISTDataModule(root=str(tmp_path), val_fraction=1 / 6, normalization=(10.0, 2.0))
    data.setup()
    assert data.normalization == (10.0, 2.0)
    np.testing.assert_allclose(data.splits["test"].tensors[0][:, 0].numpy(),
                               (data.display_images("test") - 10.0) / 2.0)


def test_subsets_are_stratified_and_seeded(tmp_path):
    _tiny_fashion(tmp_path, per_class=(6, 4))
    first, again, other = (FashionMNISTDataModule(root=str(tmp_path), val_fraction=0.25, seed=seed,
                                                  max_train_samples=40, max_test_samples=20)
                           for seed in (0, 0, 1))
    for data in (first, again, other):
        data.setup()
    assert {name: len(split) for name, split in first.splits.items()} == \
        {"train": 30, "val": 10, "test": 20}
    for name in ("train", "val", "test"):
        counts = np.bincount(first.splits[name].tensors[1].numpy(), minlength=10)
        assert counts.min() == counts.max(), f"{name} is not stratified: {counts}"
        assert first.splits[name].tensors[2].tolist() == again.splits[name].tensors[2].tolist()
    assert first.splits["val"].tensors[2].tolist() != other.splits["val"].tensors[2].tolist()


def test_a_subset_too_small_for_every_class_names_the_key(tmp_path):
    _tiny_fashion(tmp_path)
    with pytest.raises(ConfigError, match="'data.params.max_test_samples': cannot draw 5 of 20"):
        FashionMNISTDataModule(root=str(tmp_path), max_test_samples=5).setup()


def test_registered_and_params_checked_like_any_config():
    assert DATAMODULES.get("fashion_mnist") is FashionMNISTDataModule
    check_params(FashionMNISTDataModule, {"batch_size": 64, "max_train_samples": 600,
                                          "normalization": [72.9, 90.0]}, "data.params")
    for params, key in [({"val_fraction": 1.5}, "val_fraction"), ({"max_test_samples": 0},
                        "max_test_samples"), ({"normalization": [0, -1]}, "normalization")]:
        with pytest.raises(ConfigError, match=f"key 'data.params.{key}'"):
            check_params(FashionMNISTDataModule, params, "data.params")


@pytest.fixture(scope="module")
def real():
    data = FashionMNISTDataModule()
    data.setup()
    return data


@needs_real_files
def test_the_real_files_give_the_standard_split(real):
    assert {name: len(split) for name, split in real.splits.items()} == \
        {"train": 55000, "val": 5000, "test": 10000}
    np.testing.assert_array_equal(np.bincount(real.splits["val"].tensors[1].numpy()), [500] * 10)
    np.testing.assert_array_equal(np.bincount(real.splits["test"].tensors[1].numpy()), [1000] * 10)
    train, val = (set(real.splits[name].tensors[2].tolist()) for name in ("train", "val"))
    assert not train & val and train | val == set(range(60000))
    np.testing.assert_array_equal(real.splits["test"].tensors[2].numpy(), np.arange(60000, 70000))
    assert real.display_images("train").shape == (55000, 28, 28)
    mean, std = real.normalization
    assert 70 < mean < 75 and 88 < std < 92  # Fashion-MNIST: about 72.9 and 90.0


@needs_real_files
def test_the_real_split_is_deterministic(real):
    again = FashionMNISTDataModule(max_train_samples=6000, max_test_samples=1000)
    again.setup()
    twice = FashionMNISTDataModule(max_train_samples=6000, max_test_samples=1000)
    twice.setup()
    for name, size in (("train", 5500), ("val", 500), ("test", 1000)):
        index = again.splits[name].tensors[2]
        assert len(index) == size and index.tolist() == twice.splits[name].tensors[2].tolist()
        np.testing.assert_array_equal(np.bincount(again.splits[name].tensors[1].numpy()),
                                      [size // 10] * 10)


@pytest.mark.slow
@needs_real_files
def test_the_config_runs_end_to_end_on_a_subset(tmp_path):
    out = tmp_path / "run"
    sets = ["data.params.max_train_samples=600", "data.params.max_test_samples=200",
            "evidence.faithfulness_images=16"]
    assert main(["run", "configs/fashion_mnist.yaml", "--out", str(out), *shrunk(),
                 *(arg for value in sets for arg in ("--set", value))]) == 0
    run = RunDirectory(out)
    metrics = json.loads(run.metrics_path.read_text())
    assert 0 <= metrics["teacher"]["test_accuracy"] <= 1
    assert set(metrics["surrogates"]) == {"tree", "rule_list", "sparse_linear"}
    test = FeatureTable.load(run.features("test"))
    assert len(test.y) == 200 and test.index.min() >= 60000
    assert test.class_names == FashionMNISTDataModule.class_names
    assert run.report_html.is_file()
