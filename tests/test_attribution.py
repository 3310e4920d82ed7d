"""Captum attributions through hybrid's one call shape."""

import numpy as np
import pytest
import torch

from hybrid.attribution import METHODS, attribute, cam_layer
from hybrid.backbones import BACKBONES
from hybrid.classifier import ImageClassifier
from hybrid.errors import ConfigError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ImageClassifier(BACKBONES.create("tiny_cnn", in_channels=1), num_classes=3).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("method", METHODS.names())
def test_maps_have_input_size_are_non_negative_and_batching_free(model, images, method):
    layer = cam_layer(model.backbone)
    targets = torch.arange(10) % 3
    whole = attribute(model, images, method, targets, layer=layer, batch_size=128)
    one_by_one = attribute(model, images, method, targets, layer=layer, batch_size=1,
                           internal_batch_size=5)
    assert whole.shape == (10, 8, 8) and whole.dtype == np.float32 and whole.min() >= 0
    np.testing.assert_allclose(whole, one_by_one, rtol=1e-4, atol=1e-6)


def test_saliency_is_the_absolute_input_gradient(model, images):
    x = images[:2].clone().requires_grad_(True)
    model(x)[torch.arange(2), torch.tensor([0, 2])].sum().backward()
    expected = x.grad.abs().sum(dim=1).numpy()
    np.testing.assert_allclose(attribute(model, images[:2], "saliency", torch.tensor([0, 2])),
                               expected, rtol=1e-5)


def test_an_embedding_dimension_can_be_the_target(model, images):
    maps = attribute(model.backbone, images, "integrated_gradients", 3)
    assert maps.shape == (10, 8, 8) and np.isfinite(maps).all()


def test_cam_layer_is_the_last_convolution_block(model):
    assert cam_layer(model.backbone) is model.backbone.features[-3]
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3))
    assert cam_layer(plain) is plain[2]
    with pytest.raises(ValueError, match="no Conv2d"):
        cam_layer(torch.nn.Linear(2, 2))


def test_bad_method_and_missing_layer(model, images):
    with pytest.raises(ConfigError, match="unknown attribution method 'lime'; choose from"):
        attribute(model, images, "lime", 0)
    with pytest.raises(ValueError, match="gradcam needs the convolution layer"):
        attribute(model, images, "gradcam", 0)


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS.names())
def test_cuda_maps_match_cpu(model, images, method):
    layer = cam_layer(model.backbone)
    cpu = attribute(model, images, method, 1, layer=layer)
    model.cuda()
    try:
        gpu = attribute(model, images.cuda(), method, 1, layer=cam_layer(model.backbone))
    finally:
        model.cpu()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-5)
