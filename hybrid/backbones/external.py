"""Backbones from torchvision and timm, optional extras: ``pip install -e ".[torchvision]"``
or ``pip install -e ".[timm]"``.

Neither package is a dependency of hybrid; each adapter imports its package only when a config
names it. The adapter builds the model without its classifier and wraps it in
:class:`ExternalBackbone`, which keeps hybrid's backbone contract: ``forward`` returns the
embedding of shape (batch, ``num_features``), and ``cam_layer`` is the last feature map for
Grad-CAM and concept discovery. Weights are random unless asked for (``weights`` in
torchvision, ``pretrained`` in timm); pretrained weights are downloaded by the package itself,
when the backbone is built, and expect ImageNet's per-channel normalization, not hybrid's.
"""

import difflib
import importlib

from torch import nn

from ..errors import ConfigError

__all__ = ["ExternalBackbone", "timm_model", "torchvision_model"]

# Where torchvision keeps the classifier: the last Linear under one of these is replaced.
_TORCHVISION_HEADS = ("fc", "classifier", "head", "heads")
# torchvision's last feature maps: ResNets, RegNets, then the models built as `features`.
_TORCHVISION_FEATURE_MAPS = ("layer4", "trunk_output", "features")


class ExternalBackbone(nn.Module):
    """A third-party model whose classifier was removed, under hybrid's backbone contract.

    Parameters
    ----------
    model : nn.Module
        Maps images to embeddings of shape (batch, ``num_features``).
    num_features : int
    cam_layer_name : str
        Dotted name in ``model`` of the module whose output is the last feature map.
    grayscale_to_rgb : bool, default=False
        Repeat one-channel images three times, for models whose stem reads RGB.
    """

    def __init__(self, model: nn.Module, num_features: int, cam_layer_name: str,
                 grayscale_to_rgb: bool = False):
        super().__init__()
        self.model = model
        self.num_features = num_features
        self.cam_layer_name = cam_layer_name
        self.grayscale_to_rgb = grayscale_to_rgb

    @property
    def cam_layer(self) -> nn.Module:
        """The module Grad-CAM and concept discovery read. Concept discovery needs
        non-negative maps: true of ResNets, RegNets, VGG and MobileNetV2, whose last map
        ends in a ReLU."""
        return self.model.get_submodule(self.cam_layer_name)

    def forward(self, x):
        if self.grayscale_to_rgb:
            x = x.expand(-1, 3, -1, -1)
        return self.model(x)


def torchvision_model(in_channels: int, model: str = "resnet18",
                      weights: str | None = None) -> ExternalBackbone:
    """A torchvision classification model (``torchvision.models.get_model``) without its head.

    Parameters
    ----------
    in_channels : int
        Image channels (set from the data module): 3, or 1 (repeated to RGB).
    model : str, default="resnet18"
        A name of ``torchvision.models.list_models()`` whose classifier ends in a Linear
        layer (under ``fc``, ``classifier``, ``head`` or ``heads``).
    weights : str, default=None
        Random weights; or a weights name (``DEFAULT``, ``IMAGENET1K_V1``, ...), which
        torchvision downloads.

    Returns
    -------
    ExternalBackbone
        ``num_features`` is the width of the removed Linear layer's input (512 for resnet18).
    """
    if in_channels not in (1, 3):
        raise ConfigError(f"backbone 'torchvision' reads 1- or 3-channel images, got "
                          f"{in_channels} channels; timm models take any (in_chans)")
    models = _require("torchvision", "torchvision.models")
    _check_name(model, models.list_models(module=models), "torchvision.models.list_models()")
    try:
        network = models.get_model(model, weights=weights)
    except (ValueError, KeyError):
        valid = ["DEFAULT", *(w.name for w in models.get_model_weights(model))]
        raise ConfigError(f"key 'model.backbone.params.weights': {model} has no weights "
                          f"{weights!r}; choose from: {', '.join(valid)}") from None
    head = _last_linear(network, _TORCHVISION_HEADS)
    if head is None:
        raise ConfigError(f"key 'model.backbone.params.model': torchvision's {model!r} has no "
                          f"Linear classifier under {', '.join(_TORCHVISION_HEADS)}")
    num_features = network.get_submodule(head).in_features
    _replace(network, head, nn.Identity())
    names = dict(network.named_children())
    cam = next((name for name in _TORCHVISION_FEATURE_MAPS if name in names), None)
    return ExternalBackbone(network, num_features, cam or _last_conv(network),
                            grayscale_to_rgb=in_channels == 1)


def timm_model(in_channels: int, model: str = "resnet18",
               pretrained: bool = False) -> ExternalBackbone:
    """A timm model (``timm.create_model(model, num_classes=0, in_chans=in_channels)``): its
    pooled, pre-logits features.

    Parameters
    ----------
    in_channels : int
        Image channels (set from the data module), passed as ``in_chans``.
    model : str, default="resnet18"
        A name of ``timm.list_models()``.
    pretrained : bool, default=False
        Load timm's pretrained weights (downloaded from the Hugging Face Hub).

    Returns
    -------
    ExternalBackbone
        ``num_features`` is the model's ``head_hidden_size`` (its ``num_features`` in older
        timm releases).
    """
    timm = _require("timm", "timm")
    if not timm.is_model(model):
        _check_name(model, timm.list_models(), "timm.list_models()")
    network = timm.create_model(model, pretrained=pretrained, num_classes=0,
                                in_chans=in_channels)
    num_features = getattr(network, "head_hidden_size", None) or network.num_features
    feature_info = getattr(network, "feature_info", None) or [{}]
    cam = feature_info[-1].get("module")
    if cam is None or not _has_submodule(network, cam):
        cam = _last_conv(network)
    return ExternalBackbone(network, num_features, cam)


def _require(package: str, module: str):
    """Import ``module`` of an optional extra, or fail saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"backbone {package!r} needs the {package} package: "
                          f"pip install -e \".[{package}]\"") from None
    except RuntimeError as exc:  # a build for another torch: its operators fail to register
        raise ConfigError(f"backbone {package!r}: {package} is installed but does not import "
                          f"({_one_line(exc)}); install the release built for this torch") from None


def _check_name(model: str, valid: list[str], listing: str) -> None:
    if model in valid:
        return
    close = difflib.get_close_matches(model, valid, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"see {listing}"
    raise ConfigError(f"key 'model.backbone.params.model': unknown model {model!r}; {hint}")


def _last_linear(network: nn.Module, heads: tuple[str, ...]) -> str | None:
    linears = [name for name, module in network.named_modules()
               if isinstance(module, nn.Linear) and name.split(".")[0] in heads]
    return linears[-1] if linears else None


def _last_conv(network: nn.Module) -> str:
    convolutions = [name for name, module in network.named_modules()
                    if isinstance(module, nn.Conv2d)]
    if not convolutions:
        raise ConfigError(f"{type(network).__name__} has no Conv2d layer for Grad-CAM")
    return convolutions[-1]


def _has_submodule(network: nn.Module, name: str) -> bool:
    try:
        network.get_submodule(name)
    except AttributeError:
        return False
    return True


def _replace(network: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(network.get_submodule(parent), child, module)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
