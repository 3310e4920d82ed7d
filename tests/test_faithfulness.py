"""Deletion and insertion curves on toy models whose answer depends on known pixels."""

import numpy as np
import pytest
import torch

from hybrid.faithfulness import deletion_insertion, random_maps, summarize


class _SumLogit(torch.nn.Module):
    """Logits (weight * mean of ``region``'s pixels, 0): class 0 depends on ``region`` only."""

    def __init__(self, region: torch.Tensor, weight: float = 1.0):
        super().__init__()
        self.region, self.weight = region, weight

    def forward(self, x):
        score = self.weight * x[:, :, self.region].mean(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def _sigmoid(values):
    return 1 / (1 + np.exp(-np.asarray(values, dtype=np.float64)))


def test_exact_curves_on_a_2x2_image():
    model = _SumLogit(torch.ones(2, 2, dtype=torch.bool), weight=4.0)  # logit = sum of pixels
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    result = deletion_insertion(model, image, image[:, 0], target=0, steps=4)
    assert result["fractions"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(result["deletion"], [_sigmoid([10, 6, 3, 1, 0])], rtol=1e-6)
    np.testing.assert_allclose(result["insertion"], [_sigmoid([0, 4, 7, 9, 10])], rtol=1e-6)
    deletion = _sigmoid([10, 6, 3, 1, 0])
    expected_auc = 0.25 * (deletion[1:] + deletion[:-1]).sum() / 2
    np.testing.assert_allclose(result["deletion_auc"], [expected_auc], rtol=1e-6)


def test_ties_are_broken_row_by_row_and_the_target_is_per_image():
    model = _SumLogit(torch.tensor([[True, False], [False, False]]), weight=1.0)
    images = torch.ones(2, 1, 2, 2)
    result = deletion_insertion(model, images, np.zeros((2, 2, 2)), target=[0, 1], steps=4)
    # the top-left pixel (the whole region) goes first; class 1 moves the opposite way
    np.testing.assert_allclose(result["deletion"][0], _sigmoid([1, 0, 0, 0, 0]), rtol=1e-6)
    np.testing.assert_allclose(result["deletion"][1], 1 - _sigmoid([1, 0, 0, 0, 0]), rtol=1e-6)


@pytest.fixture
def region_task():
    """Positive 8x8 images and a model reading the 4x4 top-left block only."""
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[:4, :4] = True
    images = torch.from_numpy(np.random.default_rng(0).uniform(0.5, 1.5, (40, 1, 8, 8)))
    maps = region.double().expand(40, 8, 8) + 0.1 * torch.rand(40, 8, 8, dtype=torch.float64)
    return _SumLogit(region, weight=5.0), images.float(), maps.numpy()


def test_maps_ranking_the_region_first_beat_random_maps(region_task):
    model, images, maps = region_task
    good = summarize(deletion_insertion(model, images, maps, target=0))
    chance = summarize(deletion_insertion(model, images, random_maps(maps.shape, seed=1), 0))
    assert good["deletion_auc"] < chance["deletion_auc"] - 0.1
    assert good["insertion_auc"] > chance["insertion_auc"] + 0.1
    assert good["n_images"] == 40


def test_batch_size_does_not_change_the_result(region_task):
    model, images, maps = region_task
    one, many = (deletion_insertion(model, images, maps, 0, steps=8, batch_size=size)
                 for size in (1, 256))
    for key in ("deletion", "insertion", "deletion_auc", "insertion_auc"):
        np.testing.assert_array_equal(one[key], many[key])


def test_random_maps_are_seeded():
    np.testing.assert_array_equal(random_maps((2, 3, 3), seed=4), random_maps((2, 3, 3), seed=4))
    assert not np.array_equal(random_maps((2, 3, 3), seed=4), random_maps((2, 3, 3), seed=5))


def test_wrong_map_shape_is_refused():
    with pytest.raises(ValueError, match="maps must have shape"):
        deletion_insertion(_SumLogit(torch.ones(2, 2, dtype=torch.bool)), torch.ones(1, 1, 2, 2),
                           np.ones((1, 3, 3)), 0)


def test_one_curve_alone_matches_both(region_task):
    model, images, maps = region_task
    both = deletion_insertion(model, images, maps, 0, steps=8)
    alone = deletion_insertion(model, images, maps, 0, steps=8, curves=("deletion",))
    assert "insertion" not in alone and set(summarize(alone)) == {"deletion_auc", "n_images"}
    np.testing.assert_array_equal(alone["deletion_auc"], both["deletion_auc"])
