"""A folder of the user's own images: layouts, splits, pixels, concept labels and clear errors,
on tiny PNG/JPEG files made here."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hybrid.cli import main
from hybrid.config import check_params
from hybrid.data import DATAMODULES, ImageFolderDataModule
from hybrid.errors import ConfigError
from hybrid.features import FeatureTable
from hybrid.rundir import RunDirectory

from ..conftest import shrunk

CLASSES = ("cat", "dog", "fox")


def _save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def _folder(root, per_class=10, size=(12, 10), classes=CLASSES):
    """``per_class`` images of each class under ``root/<class>/``, PNG and JPEG alternating;
    each image is one flat colour, so resizing keeps it and JPEG nearly keeps it."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        for i in range(per_class):
            colour = rng.integers(0, 256, size=3)
            suffix = ".png" if i % 2 == 0 else ".jpg"
            _save(root / name / f"{i:02d}{suffix}", np.broadcast_to(colour, (*size, 3)))
    return root


def _setup(root, **params):
    data = ImageFolderDataModule(root=str(root), **params)
    data.setup()
    return data


def _names(data, split):
    """The split's images as 'class/file' paths, in the loaders' order."""
    return [data.files[i].relative_to(data.files[i].parents[1]).as_posix()
            for i in data.splits[split].tensors[2].tolist()]


def test_classes_files_and_a_stratified_split(tmp_path):
    data = _setup(_folder(tmp_path), image_size=(8, 8), val_fraction=0.2, test_fraction=0.2)
    assert data.class_names == CLASSES and data.num_classes == 3 and data.concept_names == ()
    assert data.files == sorted(tmp_path.rglob("*.*")) and len(data.files) == 30
    assert {name: len(split) for name, split in data.splits.items()} == \
        {"train": 18, "val": 6, "test": 6}
    everything = []
    for name, split in data.splits.items():
        images, labels, index = split.tensors
        assert np.bincount(labels.numpy()).tolist() == [len(split) // 3] * 3, name
        assert index.tolist() == sorted(index.tolist())
        assert [data.class_names[y] for y in labels] == [data.files[i].parent.name for i in index]
        everything += index.tolist()
    assert sorted(everything) == list(range(30))
    batch = next(iter(data.train_dataloader()))
    assert len(batch) == 3 and batch[0].shape[1:] == (3, 8, 8)


def test_the_split_is_seeded(tmp_path):
    root = _folder(tmp_path)
    first, again, other = _setup(root), _setup(root), _setup(root, seed=1)
    for split in ("train", "val", "test"):
        assert _names(first, split) == _names(again, split)
    assert _names(first, "test") != _names(other, "test")


def test_split_folders_are_the_splits(tmp_path):
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        _folder(tmp_path / split, per_class=n)
    data = _setup(tmp_path)
    assert data.class_names == CLASSES and len(data.files) == 27
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        index = data.splits[split].tensors[2].tolist()
        assert len(index) == 3 * n
        assert all(data.files[i].relative_to(tmp_path).parts[0] == split for i in index)


def test_a_missing_val_folder_is_carved_out_of_train(tmp_path):
    _folder(tmp_path / "train", per_class=10)
    _folder(tmp_path / "test", per_class=2)
    data = _setup(tmp_path, val_fraction=0.2)
    assert {name: len(split) for name, split in data.splits.items()} == \
        {"train": 24, "val": 6, "test": 6}
    for split in ("train", "val"):
        index = data.splits[split].tensors[2].tolist()
        assert all(data.files[i].relative_to(tmp_path).parts[0] == "train" for i in index)


def test_a_class_only_in_val_is_named(tmp_path):
    _folder(tmp_path / "train", per_class=2)
    _folder(tmp_path / "val", per_class=1, classes=("cat", "owl"))
    with pytest.raises(ConfigError, match=r"owl is not a class of .*train \(cat, dog, fox\)"):
        _setup(tmp_path)


@pytest.mark.parametrize("channels, display_shape", [(1, (6, 5)), (3, (6, 5, 3))],
                         ids=["grayscale", "rgb"])
def test_channels_resize_and_pixels(tmp_path, channels, display_shape):
    root = _folder(tmp_path, size=(12, 10))
    _save(root / "cat" / "red.png", np.broadcast_to([200, 10, 30], (12, 10, 3)))
    data = _setup(root, image_size=(6, 5), channels=channels)
    assert data.input_shape == (channels, 6, 5)
    split = next(name for name, s in data.splits.items()
                 if data.files.index(root / "cat" / "red.png") in s.tensors[2].tolist())
    row = data.splits[split].tensors[2].tolist().index(data.files.index(root / "cat" / "red.png"))
    display = data.display_images(split)
    assert display.dtype == np.uint8 and display.shape == (len(data.splits[split]), *display_shape)
    expected = [200, 10, 30] if channels == 3 else round(0.299 * 200 + 0.587 * 10 + 0.114 * 30)
    np.testing.assert_allclose(display[row], np.broadcast_to(expected, display_shape), atol=1)
    mean, std = data.normalization
    scaled = data.splits[split].tensors[0].numpy()
    raw = display if channels == 1 else display.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(scaled.reshape(raw.shape) * std + mean, raw, atol=1e-3)


@pytest.mark.parametrize("content", [b"", b"not an image at all"], ids=["empty", "garbage"])
def test_an_unreadable_image_is_named(tmp_path, content):
    root = _folder(tmp_path)
    bad = root / "dog" / "broken.png"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match="cannot read it as an image") as info:
        _setup(root)
    assert str(bad) in str(info.value)


def test_extensions_choose_the_files(tmp_path):
    root = _folder(tmp_path)
    (root / "dog" / "notes.txt").write_text("skipped")
    data = _setup(root, extensions=["PNG"])
    assert len(data.files) == 15 and all(f.suffix == ".png" for f in data.files)


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "has no class folders"),
    (lambda root: _save(root / "loose.png", np.zeros((4, 4))), "has no class folders"),
    (lambda root: (_folder(root), (root / "owl").mkdir()), r"owl holds no image files"),
], ids=["missing", "empty", "no class folders", "empty class folder"])
def test_a_bad_root_names_the_key_and_path(tmp_path, make, message):
    root = tmp_path / "images"
    make(root)
    with pytest.raises(ConfigError, match=message) as info:
        _setup(root)
    assert "data.params.root" in str(info.value) and str(root) in str(info.value)


def test_root_is_required_and_params_are_checked():
    assert DATAMODULES.get("image_folder") is ImageFolderDataModule
    with pytest.raises(ConfigError, match="'data.params.root' is required"):
        ImageFolderDataModule()
    with pytest.raises(ConfigError, match="val_fraction \\+ test_fraction must be below 1"):
        ImageFolderDataModule(root="x", val_fraction=0.5, test_fraction=0.5)
    check_params(ImageFolderDataModule, {"root": "x", "image_size": [32, 24], "channels": 1},
                 "data.params")
    for params, key in [({"channels": 2}, "channels"), ({"image_size": [0, 8]}, "image_size"),
                        ({"image_size": [8]}, "image_size")]:
        with pytest.raises(ConfigError, match=f"key 'data.params.{key}'"):
            check_params(ImageFolderDataModule, params, "data.params")
    data = ImageFolderDataModule(root="x", image_size=[16, 12], channels=1)
    assert data.input_shape == (1, 16, 12), "known before setup: the backbone is built from it"


def test_too_few_images_to_stratify_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="cannot hold out test_fraction=0.2 .* add images or "
                                          "make a test folder"):
        _setup(_folder(tmp_path, per_class=2))


def _concepts(root, rows=None, header="file,striped,furry"):
    """``root/concepts.csv``: by default a row for every image, striped = 1 for cats and
    furry = 0.5 for files with an even number."""
    if rows is None:
        rows = [f"{p.relative_to(root).as_posix()},{int(p.parent.name == 'cat')},"
                f"{0.5 * (int(p.stem) % 2 == 0)}" for p in sorted(root.rglob("*.*"))
                if p.suffix != ".csv"]
    path = root / "concepts.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_concept_labels_come_with_every_batch(tmp_path):
    root = _folder(tmp_path)
    _concepts(root)
    data = _setup(root, batch_size=4)
    assert data.concept_names == ("striped", "furry")
    batch = next(iter(data.split_dataloader("test")))
    assert len(batch) == 4
    _, y, index, concepts = batch
    assert concepts.dtype == torch.float32 and concepts.shape == (4, 2)
    for i, row in zip(index.tolist(), concepts.tolist()):
        file = data.files[i]
        assert row == [float(file.parent.name == "cat"), 0.5 * (int(file.stem) % 2 == 0)]


def test_a_concept_file_can_be_named(tmp_path):
    root = _folder(tmp_path / "images")
    moved = tmp_path / "labels.csv"
    _concepts(root).rename(moved)
    data = _setup(root, concepts_csv=str(moved))
    assert data.concept_names == ("striped", "furry") and len(data.splits["train"].tensors) == 4


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[1:], r"no concept values for 1 image\(s\): cat/00.png"),
    (lambda rows: [*rows, "cat/99.png,1,0"], r"line 32: file 'cat/99.png' does not exist"),
    (lambda rows: [rows[0].replace(",1,", ",yes,"), *rows[1:]],
     r"line 2: file 'cat/00.png', concept 'striped': 'yes' is not a number"),
    (lambda rows: [rows[0].replace(",1,", ",1.5,"), *rows[1:]],
     r"line 2: file 'cat/00.png', concept 'striped': '1.5' is outside \[0, 1\]"),
    (lambda rows: [rows[0].replace(",1,", ",nan,"), *rows[1:]], r"'nan' is outside \[0, 1\]"),
    (lambda rows: [*rows, rows[0]], r"line 32: file 'cat/00.png' is listed twice"),
    (lambda rows: [rows[0] + ",1", *rows[1:]], r"line 2: expected 3 values"),
], ids=["image not listed", "no such file", "not a number", "out of range", "nan", "twice",
        "extra column"])
def test_a_bad_concept_file_names_file_row_and_value(tmp_path, edit, message):
    root = _folder(tmp_path)
    rows = _concepts(root).read_text().splitlines()[1:]
    path = _concepts(root, edit(rows))
    with pytest.raises(ConfigError, match=message) as info:
        _setup(root)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("header", ["image,striped", "file", "file,striped,striped"])
def test_a_bad_concept_header_is_named(tmp_path, header):
    root = _folder(tmp_path)
    path = _concepts(root, rows=[], header=header)
    with pytest.raises(ConfigError, match="the header must be 'file' and then distinct") as info:
        _setup(root)
    assert str(path) in str(info.value)


@pytest.mark.slow
def test_the_template_config_runs_end_to_end(tmp_path):
    root = _folder(tmp_path / "images", per_class=12)
    out = tmp_path / "run"
    sets = [f"data.params.root={root}", "data.params.image_size=[16,16]",
            "evidence.faithfulness_images=8"]
    assert main(["run", "configs/image_folder.yaml", "--out", str(out), *shrunk(),
                 *(arg for value in sets for arg in ("--set", value))]) == 0
    run = RunDirectory(out)
    metrics = json.loads(run.metrics_path.read_text())
    assert set(metrics["surrogates"]) == {"tree", "rule_list", "sparse_linear"}
    test = FeatureTable.load(run.features("test"))
    assert test.class_names == CLASSES and len(test.y) == 8  # ceil(0.2 * 36)
    assert run.report_html.is_file()
