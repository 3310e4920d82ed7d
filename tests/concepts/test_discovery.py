"""Concept discovery: NMF finds planted concepts, tables keep their rows, galleries decode."""

import io

import numpy as np
import PIL.Image
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from hybrid.backbones import BACKBONES
from hybrid.concepts import (ConceptDiscovery, concept_tables, layer_activations,
                             prototype_gallery, prototypes)
from hybrid.data.digits import DigitsDataModule
from hybrid.errors import ConfigError, HybridError
from hybrid.features import FeatureTable

N_CONCEPTS, CHANNELS, SIDE = 3, 12, 4


def _planted(n_images, seed):
    """Activations ``codes @ basis`` with sparse non-negative codes, and the codes' means.

    The basis is the same for every seed; the seed draws the images' codes.
    """
    fixed = np.random.default_rng(100)
    basis = fixed.random((N_CONCEPTS, CHANNELS)) * (fixed.random((N_CONCEPTS, CHANNELS)) < 0.5)
    rng = np.random.default_rng(seed)
    codes = rng.exponential(size=(n_images, N_CONCEPTS, SIDE, SIDE))
    codes *= rng.random(codes.shape) < 0.3  # each position holds few concepts: identifiable
    activations = np.einsum("nkhw,kc->nchw", codes, basis).astype(np.float32)
    return activations, codes.mean(axis=(2, 3))


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return BACKBONES.create("tiny_cnn", in_channels=1).eval()


@pytest.fixture(scope="module")
def digits():
    datamodule = DigitsDataModule()
    datamodule.setup()
    return datamodule


def _table(datamodule, split):
    """An embedding-like table in the split's row order, with recognisable labels and images."""
    _, y, index = datamodule.splits[split].tensors
    n = len(y)
    proba = np.full((n, 10), 0.1, np.float32)
    return FeatureTable(X=np.zeros((n, 2), np.float32), teacher=(y.numpy() + 1) % 10, proba=proba,
                        y=y.numpy(), index=index.numpy(), feature_names=("dim_0", "dim_1"),
                        class_names=datamodule.class_names,
                        images=datamodule.display_images(split))


def test_nmf_recovers_planted_concepts():
    activations, planted = _planted(300, seed=0)
    found = ConceptDiscovery(N_CONCEPTS).fit(activations).transform(activations)
    correlation = np.corrcoef(planted.T, found.T)[:N_CONCEPTS, N_CONCEPTS:]
    rows, cols = linear_sum_assignment(-correlation)
    assert correlation[rows, cols].min() > 0.9


def test_transform_describes_new_images_with_the_fitted_concepts():
    train, _ = _planted(300, seed=0)
    test, planted = _planted(100, seed=1)
    discovery = ConceptDiscovery(N_CONCEPTS).fit(train)
    maps = discovery.concept_maps(test)
    assert maps.shape == (100, N_CONCEPTS, SIDE, SIDE) and (maps >= 0).all()
    found = discovery.transform(test)
    np.testing.assert_allclose(found, maps.mean(axis=(2, 3)))
    correlation = np.corrcoef(planted.T, found.T)[:N_CONCEPTS, N_CONCEPTS:]
    assert correlation.max(axis=1).min() > 0.9


def test_fit_is_deterministic_for_a_random_state():
    activations, _ = _planted(100, seed=2)
    first = ConceptDiscovery(N_CONCEPTS, random_state=3).fit(activations)
    second = ConceptDiscovery(N_CONCEPTS, random_state=3).fit(activations)
    np.testing.assert_array_equal(first.components_, second.components_)
    np.testing.assert_array_equal(first.transform(activations), second.transform(activations))
    assert first.feature_names == ("concept_00", "concept_01", "concept_02")


def test_fit_rejects_negative_activations_and_too_many_concepts():
    activations, _ = _planted(20, seed=0)
    with pytest.raises(ValueError, match="negative"):
        ConceptDiscovery(2).fit(activations - 1)
    with pytest.raises(ConfigError, match="12 channels"):
        ConceptDiscovery(13).fit(activations)


def test_layer_activations_reads_the_cam_layer_in_batches(backbone, digits):
    images = digits.splits["val"].tensors[0][:50]
    whole = layer_activations(backbone, None, images)
    assert whole.shape == (50, 8, 8, 8) and (whole >= 0).all()  # tiny_cnn: 8 channels at 8x8
    torch.testing.assert_close(layer_activations(backbone, None, images, batch_size=7), whole)
    embedding = layer_activations(backbone, backbone, images)
    torch.testing.assert_close(embedding, backbone(images).detach())


def test_concept_tables_keep_rows_labels_and_images(backbone, digits):
    tables = {split: _table(digits, split) for split in ("train", "test")}
    concepts = concept_tables(backbone, digits, tables, n_concepts=4, random_state=0)
    for split, table in tables.items():
        found = concepts[split]
        assert found.X.shape == (len(table), 4) and found.X.dtype == np.float32
        assert found.feature_names == ("concept_00", "concept_01", "concept_02", "concept_03")
        for field in ("teacher", "proba", "y", "index", "images"):
            np.testing.assert_array_equal(getattr(found, field), getattr(table, field))
        assert found.class_names == table.class_names


def test_concept_tables_refuse_rows_in_another_order(backbone, digits):
    table = _table(digits, "train")
    shuffled = FeatureTable(X=table.X, teacher=table.teacher, proba=table.proba, y=table.y,
                            index=table.index[::-1].copy(), feature_names=table.feature_names,
                            class_names=table.class_names)
    with pytest.raises(HybridError, match="split 'train'.*extract the features again"):
        concept_tables(backbone, digits, {"train": shuffled}, n_concepts=2)


def test_prototypes_rank_images_by_concept_value():
    values = np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.9]])
    np.testing.assert_array_equal(prototypes(values, top_k=2), [[1, 2], [0, 2]])


@pytest.mark.parametrize("shape", [(20, 8, 8), (20, 8, 8, 3)], ids=["grey", "rgb"])
def test_gallery_strips_decode(shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    maps = rng.random((20, 3, 4, 4)).astype(np.float32)
    gallery = prototype_gallery(images, maps.mean(axis=(2, 3)), maps, top_k=5)
    assert list(gallery) == ["concept_00", "concept_01", "concept_02"]
    for png in gallery.values():
        strip = PIL.Image.open(io.BytesIO(png))
        assert strip.format == "PNG" and strip.size == ((5 * 8 + 4) * 8, 64)  # 8x8 tiles 1 pixel apart, x8
