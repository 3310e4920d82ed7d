"""Pixel attributions through Captum: saliency, Integrated Gradients and Grad-CAM.

Captum implements the methods; this module gives them one call shape for hybrid: a forward
function (the classifier, or one embedding dimension of the backbone), a batch of images, a
target per image, and back come non-negative maps of shape (n, height, width) at input
resolution, computed in batches so memory stays bounded however many images are asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
from torch import nn

from .registry import Registry

__all__ = ["METHODS", "attribute", "cam_layer"]

METHODS = Registry("attribution method")


def cam_layer(backbone: nn.Module) -> nn.Module:
    """The convolutional layer Grad-CAM reads: ``backbone.cam_layer``, else the last Conv2d."""
    layer = getattr(backbone, "cam_layer", None)
    if layer is not None:
        return layer
    convolutions = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    if not convolutions:
        raise ValueError(f"{type(backbone).__name__} has no Conv2d layer for Grad-CAM")
    return convolutions[-1]


def attribute(forward: Callable, inputs: torch.Tensor, method: str, target,
              layer: nn.Module | None = None, batch_size: int = 128,
              internal_batch_size: int = 256, n_steps: int = 32) -> np.ndarray:
    """Attribution maps of ``forward``'s output ``target`` on ``inputs``.

    Parameters
    ----------
    forward : callable
        Maps a batch of images to scores of shape (batch, n_outputs).
    inputs : Tensor of shape (n, channels, height, width)
        Normalized images, on the device ``forward`` runs on.
    method : {"saliency", "integrated_gradients", "gradcam"}
        A name in :data:`METHODS`.
    target : int or Tensor of shape (n,)
        The output to explain for each image (a class, or an embedding dimension).
    layer : nn.Module, default=None
        The convolution Grad-CAM reads (see :func:`cam_layer`); required for ``gradcam``.
    batch_size : int, default=128
        Images per forward/backward pass.
    internal_batch_size : int, default=256
        Integrated Gradients: interpolation steps evaluated per pass (bounds memory).
    n_steps : int, default=32
        Integrated Gradients: steps from the all-zero (mean image) baseline.

    Returns
    -------
    ndarray of shape (n, height, width), float32
        Non-negative relevance: absolute gradients summed over channels (saliency),
        positive IG attributions summed over channels, or ReLU'd Grad-CAM upsampled
        bilinearly to the input size.
    """
    explain = METHODS.get(method)
    if method == "gradcam" and layer is None:
        raise ValueError("gradcam needs the convolution layer to read (see cam_layer)")
    targets = _targets(target, len(inputs), inputs.device)
    maps = [explain(forward, inputs[i:i + batch_size].detach().clone().requires_grad_(True),
                    targets[i:i + batch_size], layer=layer,
                    internal_batch_size=internal_batch_size, n_steps=n_steps)
            for i in range(0, len(inputs), batch_size)]
    return torch.cat(maps).detach().float().cpu().numpy() if maps else \
        np.zeros((0, *inputs.shape[2:]), np.float32)


def _targets(target, n: int, device) -> torch.Tensor:
    if isinstance(target, (int, np.integer)):
        return torch.full((n,), int(target), dtype=torch.long, device=device)
    return torch.as_tensor(target, dtype=torch.long, device=device)


@METHODS.register("saliency")
def _saliency(forward, x, target, **_):
    """Absolute input gradients, summed over channels."""
    return Saliency(forward).attribute(x, target=target, abs=True).sum(dim=1)


@METHODS.register("integrated_gradients")
def _integrated_gradients(forward, x, target, internal_batch_size, n_steps, **_):
    """Positive IG attributions from the zero (mean image) baseline, summed over channels."""
    maps = IntegratedGradients(forward).attribute(
        x, baselines=torch.zeros_like(x), target=target, n_steps=n_steps,
        internal_batch_size=internal_batch_size)
    return maps.clamp(min=0).sum(dim=1)


@METHODS.register("gradcam")
def _gradcam(forward, x, target, layer, **_):
    """ReLU'd Grad-CAM of ``layer``, upsampled bilinearly to the input size."""
    cam = LayerGradCam(forward, layer).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")[:, 0]
