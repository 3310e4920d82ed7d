"""The deployable bundle: a tiny real run exported, loaded alone and run on image files."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

import hybrid
from hybrid.bundle import format_predictions, load_bundle, write_bundle
from hybrid.cli import main
from hybrid.images import list_images
from hybrid.errors import HybridError, RunDirectoryError, SchemaError
from hybrid.features import FeatureTable
from hybrid.rundir import RunDirectory

from .conftest import run_python, shrunk

pytestmark = pytest.mark.slow

TINY = shrunk()
N_IMAGES = 30


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "run"
    assert main(["run", "configs/digits.yaml", "--out", str(out), *TINY]) == 0
    return RunDirectory(out)


@pytest.fixture(scope="module")
def test_rows(run):
    """The run's first test rows as the CNN saw them: raw images and their feature table."""
    table = FeatureTable.load(run.features("test"))
    index = table.index[:N_IMAGES]
    images = load_digits().images[index][:, None].astype(np.float32)
    columns = ("X", "teacher", "proba", "index")
    return images, {key: getattr(table, key)[:N_IMAGES] for key in columns}


@pytest.fixture(scope="module")
def png_folder(test_rows, tmp_path_factory):
    """The test images as 8-bit PNGs, pixel = value / 16 * 255; every third in a sub-folder."""
    images, rows = test_rows
    folder = tmp_path_factory.mktemp("images")
    for n, (image, index) in enumerate(zip(images, rows["index"])):
        path = folder / ("more" if n % 3 == 0 else "") / f"{index:04d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.round(image[0] / 16 * 255).astype(np.uint8)).save(path)
    (folder / "README.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def bundle_dir(run, tmp_path_factory):
    return write_bundle(run, tmp_path_factory.mktemp("deploy") / "bundle")


def _manifest(directory) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def test_manifest_describes_the_model_input_and_rules(run, bundle_dir):
    manifest = _manifest(bundle_dir)
    assert manifest["format"] == "hybrid-bundle" and manifest["bundle_version"] == 1
    assert manifest["model_format"] == "torch.export" and manifest["model_file"] == "model.pt2"
    assert (bundle_dir / "model.pt2").is_file()
    assert (bundle_dir / "surrogate.json").read_bytes() == run.surrogate("rule_list").read_bytes()
    train = load_digits().images[FeatureTable.load(run.features("train")).index].astype(np.float32)
    spec = manifest["input"]
    assert (spec["channels"], spec["height"], spec["width"]) == (1, 8, 8)
    assert spec["value_range"] == [0, 16] and spec["invert"] is False
    assert (spec["mean"], spec["std"]) == pytest.approx((train.mean(), train.std()), rel=1e-6)
    assert manifest["class_names"] == [str(d) for d in range(10)]
    assert manifest["surrogate"] == "rule_list" and manifest["hybrid_version"] == hybrid.__version__


def test_rule_fidelity_counts_validation_agreement(run, bundle_dir):
    deferral = _manifest(bundle_dir)["deferral"]
    assert deferral["threshold"] is None and deferral["deferring_rules"] == []
    model = hybrid.load_surrogate(run.surrogate("rule_list"))
    val = FeatureTable.load(run.features("val"))
    stats = deferral["rule_fidelity"]
    assert [s["rule_index"] for s in stats] == list(range(len(model.rules)))
    assert sum(s["n_val"] for s in stats) == len(val)
    agreeing = sum(s["n_val"] * s["fidelity"] for s in stats if s["n_val"])
    assert agreeing == pytest.approx(np.sum(model.predict(val.X) == val.teacher))


@pytest.mark.parametrize("surrogate", ["rule_list", "tree", "sparse_linear"])
def test_bundle_answers_exactly_like_the_run(run, test_rows, tmp_path, surrogate):
    images, rows = test_rows
    bundle = load_bundle(write_bundle(run, tmp_path / "bundle", surrogate=surrogate))
    embedding, proba = bundle.cnn(images)
    np.testing.assert_allclose(embedding, rows["X"], atol=1e-4)
    np.testing.assert_allclose(proba, rows["proba"], atol=1e-4)
    answers = bundle.predict(images)
    model = hybrid.load_surrogate(run.surrogate(surrogate))
    assert [a["cnn_class"] for a in answers] == rows["teacher"].tolist()
    assert [a["surrogate_class"] for a in answers] == model.predict(rows["X"]).tolist()
    assert [a["class"] for a in answers] == [a["surrogate_class"] for a in answers]
    assert not any(a["deferred"] for a in answers)
    if surrogate == "sparse_linear":
        assert all(a["rule_index"] is None for a in answers)
        return
    assert [a["rule_index"] for a in answers] == model.apply(rows["X"]).tolist()
    for answer in answers:
        assert answer["rule"].startswith(("IF ", "ELSE "))
        assert answer["rule"].endswith(f" {answer['label']}")


def test_png_files_give_the_run_s_answers(bundle_dir, png_folder, test_rows):
    paths = list_images(png_folder)
    answers = load_bundle(bundle_dir).predict_images(paths)
    assert [a["file"] for a in answers] == [str(p) for p in paths]
    teacher = dict(zip(test_rows[1]["index"].tolist(), test_rows[1]["teacher"].tolist()))
    agree = [a["cnn_class"] == teacher[int(p.stem)] for a, p in zip(answers, paths)]
    # 8-bit files cannot hold 0..16 exactly (255 / 16 is no integer): near, not identical
    assert np.mean(agree) >= 0.95


def test_a_threshold_above_one_defers_every_rule(run, test_rows, tmp_path):
    images, _ = test_rows
    bundle = load_bundle(write_bundle(run, tmp_path / "bundle", defer_below=1.01))
    model = hybrid.load_surrogate(run.surrogate("rule_list"))
    assert bundle.manifest["deferral"]["deferring_rules"] == list(range(len(model.rules)))
    answers = bundle.predict(images)
    assert all(a["deferred"] and a["class"] == a["cnn_class"] for a in answers)
    assert "CNN (rule defers)" in format_predictions(answers)


def test_a_linear_surrogate_cannot_defer(run, tmp_path):
    with pytest.raises(HybridError, match="cannot defer"):
        write_bundle(run, tmp_path / "bundle", surrogate="sparse_linear", defer_below=0.9)
    assert not (tmp_path / "bundle").exists()


def test_torchscript_stands_in_when_export_fails(run, test_rows, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("this backbone does not export")

    monkeypatch.setattr(torch.export, "export", fail)
    directory = write_bundle(run, tmp_path / "bundle")
    manifest = _manifest(directory)
    assert (manifest["model_format"], manifest["model_file"]) == ("torchscript", "model.pt")
    _, proba = load_bundle(directory).cnn(test_rows[0])
    np.testing.assert_allclose(proba, test_rows[1]["proba"], atol=1e-4)


def test_the_bundle_loads_without_lightning_or_training_code(bundle_dir, png_folder):
    out = run_python(
        "import json, sys\n"
        "from hybrid.bundle import load_bundle\n"
        f"answers = load_bundle({str(bundle_dir)!r}).predict_images({str(png_folder)!r})\n"
        "unwanted = ('pytorch_lightning', 'lightning', 'hybrid.classifier')\n"
        "loaded = [m for m in unwanted if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print(json.dumps(answers))\n")
    assert json.loads(out) == load_bundle(bundle_dir).predict_images(list_images(png_folder))


def test_a_non_empty_directory_is_kept_unless_overwrite(run, tmp_path):
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not empty"):
        write_bundle(run, directory)
    write_bundle(run, directory, overwrite=True)
    assert (directory / "notes.txt").read_text() == "mine"
    assert (directory / "manifest.json").is_file()


def test_bad_input_names_the_file_or_folder(bundle_dir, tmp_path):
    bundle = load_bundle(bundle_dir)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(HybridError, match="broken.png"):
        bundle.predict_images([broken])
    (tmp_path / "empty").mkdir()
    with pytest.raises(HybridError, match="empty: no image files"):
        bundle.predict_images(tmp_path / "empty")
    with pytest.raises(SchemaError, match="not a hybrid bundle"):
        load_bundle(tmp_path)


def test_predictions_read_as_a_table(bundle_dir, png_folder):
    answers = load_bundle(bundle_dir).predict_images(png_folder)
    lines = format_predictions(answers).splitlines()
    assert lines[0].split() == ["file", "class", "from", "CNN", "p", "rule"]
    assert len(lines) == 1 + len(answers)
    assert all(answer["rule"] in line for answer, line in zip(answers, lines[1:]))
