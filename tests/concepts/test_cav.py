"""CAVs find planted directions, TCAV counts aligned gradients, and a run answers end to end."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from hybrid.backbones import BACKBONES
from hybrid.classifier import ImageClassifier
from hybrid.concepts import class_gradients, fit_cavs, tcav_scores, tcav_statistics
from hybrid.errors import HybridError
from hybrid.rundir import RunDirectory

from ..conftest import shrunk

DIM = 64


def _unit(vector):
    return vector / np.linalg.norm(vector)


def _shifted_concepts(n_concepts, n_examples, shift, seed=0):
    """Random N(0, I) activations, and per concept the same shifted along its own direction."""
    rng = np.random.default_rng(seed)
    directions = {f"c{i}": _unit(rng.normal(size=DIM)) for i in range(n_concepts)}
    concepts = {name: rng.normal(size=(n_examples, DIM)) + shift * direction
                for name, direction in directions.items()}
    return concepts, rng.normal(size=(200, DIM)), directions


def test_cavs_point_along_the_planted_directions():
    concepts, random, directions = _shifted_concepts(5, 60, shift=4.0)
    cavs = fit_cavs(concepts, random)
    for name, direction in directions.items():
        assert cavs[name]["cav"] @ direction > 0.9  # both unit vectors: the cosine
        assert cavs[name]["accuracy"] > 0.9


def test_cavs_live_in_the_layers_own_coordinates():
    """Rescaling a unit rescales the boundary's normal inversely, as a linear probe's would."""
    concepts, random, _ = _shifted_concepts(3, 60, shift=2.0)
    scale = np.random.default_rng(1).uniform(0.1, 10, DIM)
    plain = fit_cavs(concepts, random)
    scaled = fit_cavs({name: rows * scale for name, rows in concepts.items()}, random * scale)
    for name in concepts:
        assert scaled[name]["cav"] @ _unit(plain[name]["cav"] / scale) == pytest.approx(1)
        assert scaled[name]["accuracy"] == pytest.approx(plain[name]["accuracy"])


def test_random_concepts_are_at_chance():
    concepts, random, _ = _shifted_concepts(40, 50, shift=0.0)
    accuracy = [cav["accuracy"] for cav in fit_cavs(concepts, random).values()]
    assert 0.4 < np.mean(accuracy) < 0.6


def test_hundreds_of_concepts_fit_at_once():
    concepts, random, _ = _shifted_concepts(300, 50, shift=3.0)
    cavs = fit_cavs(concepts, random)
    assert len(cavs) == 300 and min(cav["accuracy"] for cav in cavs.values()) > 0.7


def test_a_concept_needs_two_examples():
    with pytest.raises(ValueError, match="lonely: need at least 2"):
        fit_cavs({"lonely": np.zeros((1, 3))}, np.ones((10, 3)))


def test_tcav_counts_gradients_along_the_cav():
    concepts, random, directions = _shifted_concepts(2, 60, shift=4.0)
    cavs = fit_cavs(concepts, random)
    noise = np.random.default_rng(2).normal(scale=0.3, size=(100, DIM))
    along = directions["c0"] + noise
    assert tcav_scores(along, cavs)["c0"] > 0.95
    assert tcav_scores(-along, cavs)["c0"] < 0.05


def test_tcav_statistics_separate_a_concept_from_random_directions():
    concepts, random, directions = _shifted_concepts(2, 60, shift=4.0)
    noise = np.random.default_rng(3).normal(scale=0.3, size=(50, DIM))
    result = tcav_statistics(concepts, random, {"cat": directions["c0"] + noise}, repeats=8)
    cat = result["concepts"]["c0"]["classes"]["cat"]
    assert result["repeats"] == 8 and cat["score"] > 0.95 and cat["p_value"] < 0.01
    assert result["concepts"]["c0"]["accuracy"] > 0.9
    assert 0.3 < result["random"]["accuracy"] < 0.7
    json.dumps(result, allow_nan=False)  # ready for tcav.json


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ImageClassifier(BACKBONES.create("tiny_cnn", in_channels=1), num_classes=3).eval()


def test_class_gradients_match_autograd_in_batches(model):
    images = torch.randn(10, 1, 8, 8)
    layer = model.backbone.cam_layer
    whole = class_gradients(model, layer, images, target=2)
    np.testing.assert_allclose(class_gradients(model, layer, images, target=2, batch_size=3), whole,
                               rtol=1e-5, atol=1e-7)
    first = images[:1].requires_grad_(True)
    activation = []
    hook = layer.register_forward_hook(lambda module, args, output: activation.append(output))
    logit = model(first)[0, 2]
    hook.remove()
    (expected,) = torch.autograd.grad(logit, activation[0])
    np.testing.assert_allclose(whole[0], expected.flatten().numpy(), rtol=1e-5, atol=1e-7)
    assert whole.shape == (10, 8 * 8 * 8)


def test_embedding_gradient_is_the_heads_weight_row(model):
    images = torch.randn(4, 1, 8, 8)
    shortcut = class_gradients(model, model.backbone, images, target=1)
    # The embedding module's output is the backbone's: autograd through it must agree.
    through_autograd = class_gradients(model, model.backbone.embedding, images, target=1)
    np.testing.assert_allclose(shortcut, through_autograd, rtol=1e-6)


@pytest.mark.slow
def test_discover_and_tcav_on_a_trained_run(tmp_path):
    from hybrid.cli import main
    from hybrid.pipeline.concepts import discover, tcav

    out = tmp_path / "run"
    # One epoch at the default rate leaves tiny_cnn predicting no test image as a 0; five at a
    # higher rate predict every class (about 70% accuracy), in seconds.
    assert main(["run", "configs/digits.yaml", "--out", str(out),
                 *shrunk(epochs=5, lr=0.03)]) == 0
    run = RunDirectory(out)

    written = discover(run, n_concepts=4, top_k=5)
    summary = json.loads((written / "concepts.json").read_text())
    assert list(summary["concepts"]) == ["concept_00", "concept_01", "concept_02", "concept_03"]
    assert all(len(concept["prototypes"]) == 5 for concept in summary["concepts"].values())
    assert (written / "concept_03.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in (written / "index.html").read_text()

    concepts_dir, random_dir = _digit_folders(tmp_path)
    result = tcav(run, concepts_dir, random_dir)
    zero = result["concepts"]["zero"]["classes"]
    assert zero["0"]["score"] > zero["1"]["score"]
    assert json.loads((out / "concepts" / "tcav.json").read_text()) == result
    at_cam = tcav(run, concepts_dir, layer="cam")  # counter-examples: training images
    assert at_cam["images"]["random"] == 200 and at_cam["concepts"]["one"]["accuracy"] > 0.7
    with pytest.raises(HybridError, match="at least 2 sub-folders"):
        tcav(run, concepts_dir / "zero")
    with pytest.raises(HybridError, match="concepts/one: 3 images; a concept needs at least 5"):
        tcav(run, _digit_folders(tmp_path / "few", per_concept=3)[0])


def _digit_folders(root, per_concept=30):
    """Concept folders ``zero`` and ``one`` (digits 0 and 1) and a folder of mixed digits."""
    images, labels = load_digits(return_X_y=True)
    pixels = np.round(images.reshape(-1, 8, 8) / 16 * 255).astype(np.uint8)
    rows = {"concepts/zero": np.flatnonzero(labels == 0)[:per_concept],
            "concepts/one": np.flatnonzero(labels == 1)[:per_concept],
            "random": np.random.default_rng(0).choice(len(labels), 60, replace=False)}
    for folder, picked in rows.items():
        (root / folder).mkdir(parents=True)
        for row in picked:
            Image.fromarray(pixels[row]).save(root / folder / f"{row}.png")
    return root / "concepts", root / "random"
