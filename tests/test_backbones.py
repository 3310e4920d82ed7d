"""Backbones: the embedding contract over every registered one, ResNet-18's shapes, stems and
numerics, a training step and Grad-CAM through it, and the torchvision and timm adapters
(skipped where the package is not installed; CI installs neither)."""

import importlib
import sys

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hybrid.attribution import attribute, cam_layer
from hybrid.backbones import BACKBONES, ResNet, external, resnet18
from hybrid.classifier import ImageClassifier
from hybrid.concepts.discovery import layer_activations
from hybrid.config import check_params
from hybrid.errors import ConfigError
from hybrid.extraction import extract_table

# Backbones of optional packages: their tests skip without the package, and only ever ask
# for random weights.
OPTIONAL = ("torchvision", "timm")


def _optional(module: str):
    """``module``, or skip: not installed, or (a torchvision built for another torch) broken."""
    try:
        return importlib.import_module(module)
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"{module} does not import: {' '.join(str(exc).split())}")


def _build(name: str, in_channels: int):
    if name in OPTIONAL:
        _optional(name)
    return BACKBONES.create(name, in_channels=in_channels).eval()


@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_backbone_returns_embeddings_and_names_its_last_feature_map(name, channels):
    torch.manual_seed(0)
    backbone = _build(name, channels)
    x = torch.randn(2, channels, 32, 32)
    with torch.no_grad():
        embedding = backbone(x)
    assert embedding.shape == (2, backbone.num_features)
    assert any(module is backbone.cam_layer for module in backbone.modules())
    maps = layer_activations(backbone, None, x)
    assert maps.ndim == 4
    if name not in OPTIONAL:
        assert maps.min() >= 0, "concept discovery (NMF) reads this map"


@pytest.mark.parametrize("size, channels, final_map", [(32, 3, 4), (32, 1, 4), (64, 3, 8),
                                                      (64, 1, 8)])
def test_resnet18_embeds_512_features_with_the_cifar_stem_for_small_images(size, channels,
                                                                           final_map):
    torch.manual_seed(0)
    backbone = resnet18(in_channels=channels, image_size=size).eval()
    x = torch.randn(3, channels, size, size)
    with torch.no_grad():
        embedding = backbone(x)
    assert backbone.num_features == 512 and embedding.shape == (3, 512)
    assert embedding.min() >= 0, "the embedding is pooled after a ReLU"
    maps = layer_activations(backbone, None, x)
    assert maps.shape == (3, 512, final_map, final_map) and maps.min() >= 0
    assert not any(isinstance(m, nn.MaxPool2d) for m in backbone.stem)


@pytest.mark.parametrize("kwargs, stem", [
    ({}, "cifar"),  # the documented default without a size: hybrid's data sets are small
    ({"image_size": 64}, "cifar"),
    ({"image_size": 65}, "imagenet"),
    ({"image_size": 224, "stem": "cifar"}, "cifar"),
    ({"stem": "imagenet"}, "imagenet"),
])
def test_resnet18_stem_follows_the_image_size_unless_named(kwargs, stem):
    backbone = resnet18(in_channels=3, **kwargs)
    first = backbone.stem[0]
    assert (first.kernel_size, first.stride) == (((3, 3), (1, 1)) if stem == "cifar" else
                                                 ((7, 7), (2, 2)))
    assert isinstance(backbone.stem[-1], nn.MaxPool2d) == (stem == "imagenet")


def test_resnet18_imagenet_stem_quarters_the_image():
    backbone = resnet18(in_channels=3, image_size=96).eval()
    assert layer_activations(backbone, None, torch.randn(1, 3, 96, 96)).shape == (1, 512, 3, 3)


def test_resnet18_has_torchvisions_parameters():
    """torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in its fc."""
    count = sum(p.numel() for p in resnet18(in_channels=3, stem="imagenet").parameters())
    assert count == 11_689_512 - 513_000


def test_resnet18_matches_torchvision_on_its_weights():
    models = _optional("torchvision.models")
    torch.manual_seed(0)
    theirs = models.resnet18(weights=None).eval()
    theirs.fc = nn.Identity()
    ours = resnet18(in_channels=3, stem="imagenet").eval()
    stem = {"conv1": "stem.0", "bn1": "stem.1"}
    state = {}
    for key, value in theirs.state_dict().items():
        top, _, rest = key.replace("downsample", "shortcut").partition(".")
        state[f"{stem.get(top, top)}.{rest}"] = value
    ours.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_resnet18_initialization_is_torchvisions():
    backbone = resnet18(in_channels=3, width=8, zero_init_residual=True)
    assert isinstance(backbone, ResNet)
    blocks = [m for m in backbone.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8
    assert all(torch.all(block.bn2.weight == 0) for block in blocks)
    assert all(torch.all(block.bn1.weight == 1) for block in blocks)
    assert backbone.num_features == 64
    assert torch.all(resnet18(in_channels=3, width=8).layer1[0].bn2.weight == 1)


def test_resnet18_params_are_checked_like_any_config():
    check_params(BACKBONES.get("resnet18"), {"stem": "imagenet", "width": 32},
                 "model.backbone.params", supplied=("in_channels",))
    with pytest.raises(ConfigError, match="model.backbone.params.stem"):
        check_params(BACKBONES.get("resnet18"), {"stem": "large"}, "model.backbone.params",
                     supplied=("in_channels",))
    with pytest.raises(ConfigError, match="model.backbone.params.width"):
        check_params(BACKBONES.get("resnet18"), {"width": 0}, "model.backbone.params",
                     supplied=("in_channels",))


@pytest.fixture
def random_images():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 32, 32, generator=generator)
    y = torch.randint(0, 4, (16,), generator=generator)
    return TensorDataset(x, y, torch.arange(16))


def test_resnet18_trains_and_extracts_through_lightning(random_images):
    pl.seed_everything(0, verbose=False)
    model = ImageClassifier(resnet18(in_channels=3), num_classes=4)
    before = model.backbone.layer4[1].conv2.weight.detach().clone()
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
             "enable_model_summary": False, "accelerator": "cpu"}
    pl.Trainer(fast_dev_run=1, **quiet).fit(model, DataLoader(random_images, batch_size=8),
                                            DataLoader(random_images, batch_size=8))
    assert not torch.equal(before, model.backbone.layer4[1].conv2.weight)
    table = extract_table(pl.Trainer(**quiet), model.eval(),
                          DataLoader(random_images, batch_size=8), list("abcd"))
    assert table.X.shape == (16, 512) and table.proba.shape == (16, 4)
    np.testing.assert_array_equal(table.index, np.arange(16))


def test_resnet18_gradcam_and_concept_maps(random_images):
    torch.manual_seed(0)
    model = ImageClassifier(resnet18(in_channels=3), num_classes=4).eval()
    x = random_images.tensors[0][:4]
    assert cam_layer(model.backbone) is model.backbone.layer4
    maps = attribute(model, x, "gradcam", 1, layer=cam_layer(model.backbone))
    assert maps.shape == (4, 32, 32) and maps.min() >= 0


# --- the torchvision and timm adapters ------------------------------------------------------

@pytest.mark.parametrize("model, width", [("resnet18", 512), ("mobilenet_v3_small", 1024)])
@pytest.mark.parametrize("channels", [1, 3])
def test_torchvision_model_without_its_head(model, width, channels):
    _optional("torchvision")
    torch.manual_seed(0)
    backbone = BACKBONES.create("torchvision", in_channels=channels, model=model).eval()
    with torch.no_grad():
        embedding = backbone(torch.randn(2, channels, 64, 64))
    assert backbone.num_features == width and embedding.shape == (2, width)
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000
                   for m in backbone.modules()), "the ImageNet classifier is gone"


def test_torchvision_resnet_keeps_layer4_for_gradcam():
    _optional("torchvision")
    backbone = BACKBONES.create("torchvision", in_channels=3, model="resnet18")
    assert backbone.cam_layer is backbone.model.layer4


@pytest.mark.parametrize("params, message", [
    ({"model": "resnet5"}, "unknown model 'resnet5'; did you mean resnet50"),
    ({"model": "fasterrcnn_resnet50_fpn"}, "unknown model"),  # not a classifier
    ({"model": "squeezenet1_0"}, "has no Linear classifier"),
    ({"weights": "NOPE"}, "resnet18 has no weights 'NOPE'; choose from: DEFAULT, IMAGENET1K_V1"),
])
def test_torchvision_bad_params_are_config_errors(params, message):
    _optional("torchvision")
    with pytest.raises(ConfigError, match=message):
        BACKBONES.create("torchvision", in_channels=3, **params)


def test_torchvision_reads_one_or_three_channels():
    with pytest.raises(ConfigError, match="1- or 3-channel"):
        BACKBONES.create("torchvision", in_channels=4)


@pytest.mark.parametrize("channels", [1, 3])
def test_timm_model_pooled_features(channels):
    _optional("timm")
    torch.manual_seed(0)
    backbone = BACKBONES.create("timm", in_channels=channels, model="resnet18").eval()
    with torch.no_grad():
        embedding = backbone(torch.randn(2, channels, 64, 64))
    assert backbone.num_features == 512 and embedding.shape == (2, 512)
    assert backbone.cam_layer is backbone.model.layer4


def test_timm_unknown_model_suggests_names():
    _optional("timm")
    with pytest.raises(ConfigError, match="unknown model 'resnet5'; did you mean"):
        BACKBONES.create("timm", in_channels=3, model="resnet5")


@pytest.mark.parametrize("name", ["torchvision", "timm"])
def test_missing_package_says_how_to_install_it(name, monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, f"{name}.models", None)
    with pytest.raises(ConfigError, match=rf'pip install -e "\.\[{name}\]"'):
        BACKBONES.create(name, in_channels=3)


def test_package_built_for_another_torch_is_a_config_error(monkeypatch):
    def broken(module):
        raise RuntimeError("operator torchvision::nms\ndoes not exist")

    monkeypatch.setattr(external.importlib, "import_module", broken)
    with pytest.raises(ConfigError, match="does not import .operator torchvision::nms does not "
                                          "exist.; install the release built for this torch"):
        BACKBONES.create("torchvision", in_channels=3)
