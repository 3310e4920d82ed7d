"""Backbones by name: ``BACKBONES.create(name, in_channels=..., **params)``.

Every backbone returns embeddings of shape (batch, ``num_features``) and names the module
whose output is its last feature map, ``cam_layer`` (Grad-CAM, concept discovery).

- ``small_cnn``, ``tiny_cnn``: small CNNs for digits-sized images (``tiny_cnn`` for tests).
- ``resnet18``: ResNet-18 in plain torch, 512 features; CIFAR stem for small images.
- ``torchvision``, ``timm``: any model of those packages without its classifier (optional
  extras; the package is imported only when a config names it).
"""

from ..registry import Registry
from .cnn import SmallCNN, small_cnn, tiny_cnn
from .external import ExternalBackbone, timm_model, torchvision_model
from .resnet import ResNet, resnet18

__all__ = ["BACKBONES", "ExternalBackbone", "ResNet", "SmallCNN", "resnet18", "small_cnn",
           "timm_model", "tiny_cnn", "torchvision_model"]

BACKBONES = Registry("backbone")
BACKBONES.register("small_cnn", small_cnn)
BACKBONES.register("tiny_cnn", tiny_cnn)
BACKBONES.register("resnet18", resnet18)
BACKBONES.register("torchvision", torchvision_model)
BACKBONES.register("timm", timm_model)
