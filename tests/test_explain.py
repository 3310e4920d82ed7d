"""``explain_run`` and ``compare_methods`` on a tiny CNN trained through the command line."""

import html
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from hybrid.attribution import METHODS
from hybrid.cli import main
from hybrid.errors import ConfigError, RunDirectoryError
from hybrid.pipeline.explain import compare_methods, explain_run
from hybrid.rundir import RunDirectory

from .conftest import shrunk

pytestmark = pytest.mark.slow

# Only the fit stage is needed; at the default lr tiny_cnn is still near chance after a few
# epochs, and explaining a model that knows nothing tests nothing.
TINY = shrunk(epochs=4, lr=0.03)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("explain") / "run"
    assert main(["fit", "configs/digits.yaml", "--out", str(out), *TINY]) == 0
    return RunDirectory(out)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Digits as PNG files the way the README writes them, one with an awkward name."""
    folder = tmp_path_factory.mktemp("images")
    digits = load_digits()
    names = {1700: "3/1700", 1701: "5/1701", 1702: "<i>&odd"}
    for row, name in names.items():
        path = folder / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray((digits.images[row] * 255 / 16).round().astype(np.uint8)).save(path)
    return folder


def _pngs(folder):
    return sorted(p.name for p in folder.glob("*.png"))


@pytest.mark.parametrize("method", METHODS.names())
def test_explain_writes_overlays_page_and_scores(run, tmp_path, method):
    out = explain_run(run, method=method, limit=16, out=tmp_path / method)
    scores = json.loads((out / "scores.json").read_text())
    assert len(_pngs(out)) == 16 == scores["n_images"] == len(scores["images"])
    for row in scores["images"]:
        with Image.open(out / row["file"]) as image:
            assert image.format == "PNG" and image.size == (128, 128)
        assert row["target"] == row["predicted"] and 0 <= row["probability"] <= 1
        assert row["file"] == f"{row['id']}.png"
    assert set(scores["methods"]) == {method}
    assert 0 <= scores["methods"][method]["deletion_auc"] <= 1
    assert 0 <= scores["random"]["insertion_auc"] <= 1
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 32
    assert "http" not in page and "src=\"data:" in page


def test_target_by_class_name_and_true_label(run, tmp_path):
    scores = _scores(explain_run(run, "saliency", target="7", limit=4, out=tmp_path / "a"))
    assert {row["target"] for row in scores["images"]} == {"7"}
    scores = _scores(explain_run(run, "saliency", target="true", limit=4, out=tmp_path / "b"))
    assert all(row["target"] == row["true"] for row in scores["images"])


def test_an_unknown_target_lists_the_class_names(run, tmp_path):
    with pytest.raises(ConfigError, match="unknown target 'seven'.*0, 1, 2"):
        explain_run(run, "saliency", target="seven", limit=4, out=tmp_path)


def test_image_folder_and_single_file(run, image_folder, tmp_path):
    out = explain_run(run, "gradcam", images=image_folder, out=tmp_path / "folder")
    assert _pngs(out) == ["3_1700.png", "5_1701.png", "<i>&odd.png"]
    page = (out / "index.html").read_text()
    assert html.escape("<i>&odd") in page and "<i>&odd" not in page
    assert _scores(out)["images"][0]["true"] is None
    single = explain_run(run, "saliency", images=image_folder / "3" / "1700.png",
                         out=tmp_path / "one")
    assert _pngs(single) == ["1700.png"]
    with pytest.raises(ConfigError, match="no label"):
        explain_run(run, "saliency", target="true", images=image_folder, out=tmp_path / "two")


def test_default_folder_is_rewritten_but_foreign_folders_are_refused(run, tmp_path):
    out = explain_run(run, "gradcam", limit=6)
    assert out == run.root / "explanations" / "gradcam" and len(_pngs(out)) == 6
    assert len(_pngs(explain_run(run, "gradcam", limit=3))) == 3  # stale overlays go too
    with pytest.raises(RunDirectoryError, match="saliency explanation"):
        explain_run(run, "saliency", limit=3, out=out)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not empty"):
        explain_run(run, "saliency", limit=3, out=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_gradient_maps_beat_random_maps_on_deletion(run):
    result = compare_methods(run, limit=128)
    assert set(result["methods"]) == set(METHODS.names()) and result["n_images"] == 128
    chance = result["random"]["deletion_auc"]
    best = min(result["methods"][m]["deletion_auc"] for m in ("saliency", "integrated_gradients"))
    assert best < chance, result


def test_unknown_method_and_split_are_config_errors(run):
    with pytest.raises(ConfigError, match="choose from: gradcam"):
        explain_run(run, "lime")
    with pytest.raises(ConfigError, match="unknown split"):
        compare_methods(run, split="holdout")


def _scores(folder):
    return json.loads((folder / "scores.json").read_text())
