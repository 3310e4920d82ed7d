import base64
import json
from io import BytesIO

import numpy as np
import PIL.Image
import pytest
import torch

from hybrid.attribution import attribute, cam_layer
from hybrid.backbones import BACKBONES
from hybrid.errors import RunDirectoryError
from hybrid.evidence import evidence_strip_png, feature_evidence, used_features
from hybrid.ir import LinearModel, Predicate, Rule, RuleListModel, TreeModel

from .conftest import shrunk

NAMES = {"feature_names": tuple(f"f{i}" for i in range(6)), "classes": (0, 1),
         "class_names": ("no", "yes")}


def _rule_list():
    return RuleListModel(**NAMES, rules=(
        Rule((Predicate(4, ">", 1.0), Predicate(1, "<=", 0.0)), 1, (0.0, 1.0), 10, 1.0),
        Rule((), 0, (0.9, 0.1), 10, 0.9)))


def _tree():
    # root: f3 <= 0.5 ? leaf 1 : (f1 <= 2 ? leaf 3 : leaf 4)
    return TreeModel(**NAMES, left=np.array([1, -1, 3, -1, -1]), right=np.array([2, -1, 4, -1, -1]),
                     feature=np.array([3, -1, 1, -1, -1]),
                     threshold=np.array([0.5, np.nan, 2.0, np.nan, np.nan]),
                     value=np.array([[.5, .5], [1, 0], [0, 1], [.2, .8], [.9, .1]]),
                     n_samples=np.array([10, 4, 6, 3, 3]))


def _linear():
    return LinearModel(**NAMES, coef=np.array([[0, 0, 2.0, 0, 0, 0], [0, 0, 0, 0, 0, -1.0]]),
                       intercept=np.zeros(2))


@pytest.mark.parametrize("models, expected", [
    ([_rule_list()], [1, 4]),
    ([_tree()], [1, 3]),
    ([_linear()], [2, 5]),
    ([_rule_list(), _tree(), _linear()], [1, 2, 3, 4, 5]),
    ([], []),
])
def test_used_features_are_the_conditions_and_nonzero_weights(models, expected):
    assert used_features(models) == expected


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return BACKBONES.create("tiny_cnn", in_channels=1).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(20, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def X(backbone, images):
    with torch.no_grad():
        return backbone(images).numpy()


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "gradcam"])
def test_prototypes_are_the_top_rows_and_maps_explain_the_feature(backbone, images, X, method):
    evidence = feature_evidence(backbone, images, X, [5, 2], top_k=4, method=method)
    assert list(evidence) == [5, 2]
    layer = cam_layer(backbone) if method == "gradcam" else None
    for j, found in evidence.items():
        np.testing.assert_array_equal(found["rows"], np.argsort(-X[:, j])[:4])
        np.testing.assert_array_equal(found["activations"], X[found["rows"], j])
        assert np.all(np.diff(found["activations"]) <= 0)
        assert found["maps"].shape == (4, 8, 8) and found["maps"].dtype == np.float32
        assert np.all(found["maps"] >= 0)
        # the attribution is of the feature itself, as if each feature were explained alone
        alone = attribute(backbone, images[found["rows"]], method, j, layer=layer)
        np.testing.assert_allclose(found["maps"], alone, rtol=1e-4, atol=1e-6)


def test_tied_prototypes_are_picked_by_row(backbone, images):
    X = np.zeros((len(images), 8), dtype=np.float32)
    X[[3, 11], 0] = 1.0
    found = feature_evidence(backbone, images, X, [0], top_k=5, method="saliency")[0]
    np.testing.assert_array_equal(found["rows"], [3, 11, 0, 1, 2])


def test_no_features_no_evidence(backbone, images, X):
    assert feature_evidence(backbone, images, X, []) == {}


def _decoded(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(PIL.Image.open(BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize("shape", [(6, 8, 8), (6, 8, 8, 3)])
def test_strip_is_one_enlarged_tile_per_prototype(shape):
    rng = np.random.default_rng(0)
    display = rng.integers(0, 256, shape, dtype=np.uint8)
    maps = rng.random(shape[:3])
    strip = _decoded(evidence_strip_png(display, maps))
    assert strip.shape == (64, 6 * 64 + 5 * 8, 3)
    first = strip[:, :64]
    # nearest neighbour: every source pixel is a uniform 8x8 square
    np.testing.assert_array_equal(first, np.repeat(np.repeat(first[::8, ::8], 8, 0), 8, 1))
    assert np.all(strip[:, 64:72] == 255)  # the gap between tiles, one image pixel


def test_strip_without_attribution_shows_the_dimmed_images():
    display = np.full((2, 4, 4), 200, dtype=np.uint8)
    strip = _decoded(evidence_strip_png(display, np.zeros((2, 4, 4)), pixels=8))
    assert strip.shape == (8, 2 * 8 + 2, 3)
    assert np.all(strip[:, :8] == round(0.55 * 200))


def test_strip_colours_where_the_map_is_high():
    display = np.zeros((1, 2, 2), dtype=np.uint8)
    strip = _decoded(evidence_strip_png(display, np.array([[[0.0, 0.0], [0.0, 3.0]]]), pixels=2))
    assert np.all(strip[0, 0] == 0) and strip[1, 1, 0] > 200  # red-to-yellow heat


@pytest.mark.parametrize("display, maps", [
    (np.zeros((2, 8, 8)), np.zeros((2, 8, 8))),  # not uint8
    (np.zeros((2, 8, 8), np.uint8), np.zeros((3, 8, 8))),
    (np.zeros((0, 8, 8), np.uint8), np.zeros((0, 8, 8))),
])
def test_strip_rejects_mismatched_input(display, maps):
    with pytest.raises(ValueError, match="uint8"):
        evidence_strip_png(display, maps)


# --- end to end: a tiny real run ------------------------------------------------------------


@pytest.mark.slow
def test_evidence_stage_and_report_of_a_tiny_run(tmp_path):
    from hybrid.cli import main
    from hybrid.features import FeatureTable
    from hybrid.jsonio import load_surrogate
    from hybrid.pipeline.evidence import evidence
    from hybrid.pipeline.report import report
    from hybrid.rundir import RunDirectory

    assert main(["run", "configs/digits.yaml", "--out", str(tmp_path), *shrunk()]) == 0
    run = RunDirectory(tmp_path)
    summary = evidence(run)
    assert json.loads((tmp_path / "evidence" / "evidence.json").read_text()) == summary
    train = FeatureTable.load(run.features("train"))
    models = {name: load_surrogate(run.surrogate(name)) for name in run.load_config().surrogates}
    used = [train.feature_names[j] for j in used_features(models.values())]
    assert summary["method"] == "integrated_gradients" and list(summary["features"]) == used
    for name, entry in summary["features"].items():
        j = entry["feature"]
        rows = np.argsort(-train.X[:, j], kind="stable")[:6]
        assert entry["prototypes"] == train.index[rows].tolist()
        np.testing.assert_allclose(entry["activations"], train.X[rows, j])
        assert entry["image"] == f"evidence/{name}.png"

    report(run)
    page, markdown = run.report_html.read_text(), run.report_md.read_text()
    start = page.index('<section id="rules">')
    rules = page[start:page.index("</section>", start)]
    for j in used_features([models["rule_list"]]):
        name = train.feature_names[j]
        png = (tmp_path / summary["features"][name]["image"]).read_bytes()
        assert base64.b64encode(png).decode("ascii") in rules
        assert f"(evidence/{name}.png)" in markdown
    metrics = json.loads(run.metrics_path.read_text())
    read = {f["name"] for rule in metrics["surrogates"]["rule_list"]["rules"]
            for f in rule["features"]}
    assert read == {train.feature_names[j] for j in used_features([models["rule_list"]])}

    shuffled = train.index[::-1].copy()
    FeatureTable(train.X, train.teacher, train.proba, train.y, shuffled, train.feature_names,
                 train.class_names).save(run.features("train"))
    with pytest.raises(RunDirectoryError, match="differ from features/train "):
        evidence(run)
