"""ResNet-18 (He et al., 2016) for 32x32 and larger images, written in plain torch.

The embedding is the global average of the last stage, 512 numbers after a ReLU, as in
torchvision's ``resnet18`` with its ``fc`` removed. Small images (CIFAR-sized) get the stem of
He et al.'s CIFAR experiments, a 3x3 convolution without max-pool, so a 32x32 image still
leaves a 4x4 map for Grad-CAM and concept discovery; large images get the ImageNet stem.
"""

from typing import Annotated, Literal

from annotated_types import Gt
from torch import nn

__all__ = ["ResNet", "resnet18"]

#: Images up to this size (the larger side, in pixels) take the CIFAR stem under ``stem="auto"``.
SMALL_IMAGE_MAX = 64


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (1x1 convolution when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A stem, four stages of :class:`BasicBlock` (the first keeps the resolution, each
    later one halves it and doubles the channels), then global average pooling.

    Parameters
    ----------
    in_channels : int
        Image channels (set from the data module).
    blocks : tuple of int, default=(2, 2, 2, 2)
        Blocks per stage; (2, 2, 2, 2) is ResNet-18.
    width : int, default=64
        Channels of the stem and first stage; ``num_features`` is ``8 * width``.
    stem : {"cifar", "imagenet"}, default="cifar"
        ``cifar``: 3x3 convolution, stride 1, no max-pool. ``imagenet``: 7x7 convolution,
        stride 2, then a 3x3 max-pool with stride 2 (images shrink by 4).
    zero_init_residual : bool, default=False
        Start every block's last BatchNorm at gamma 0, so each block begins as the identity
        (Goyal et al., 2017); helps large-batch training.
    """

    def __init__(self, in_channels: int, blocks=(2, 2, 2, 2), width: int = 64,
                 stem: str = "cifar", zero_init_residual: bool = False):
        super().__init__()
        self.stem = _stem(in_channels, width, stem)
        stages, channels = [], width
        for stage, count in enumerate(blocks):
            out_channels = width * 2 ** stage
            layers = [BasicBlock(channels, out_channels, stride=1 if stage == 0 else 2)]
            layers += [BasicBlock(out_channels, out_channels) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            channels = out_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = channels
        _initialize(self, zero_init_residual)

    @property
    def cam_layer(self) -> nn.Module:
        """The last stage: what Grad-CAM and concept discovery read (ends in a ReLU)."""
        return self.layer4

    def forward(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x)


def _stem(in_channels: int, width: int, kind: str) -> nn.Sequential:
    if kind == "cifar":
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                             nn.BatchNorm2d(width), nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                         nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, stride=2, padding=1))


def _initialize(model: nn.Module, zero_init_residual: bool) -> None:
    """torchvision's initialization: He-normal convolutions (fan out), BatchNorm at 1 and 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)


def resnet18(in_channels: int, stem: Literal["auto", "cifar", "imagenet"] = "auto",
             image_size: Annotated[int, Gt(0)] | None = None,
             width: Annotated[int, Gt(0)] = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 (see :class:`ResNet`): 512 features at the default ``width``.

    Parameters
    ----------
    in_channels : int
        Image channels (set from the data module).
    stem : {"auto", "cifar", "imagenet"}, default="auto"
        ``auto`` takes the CIFAR stem for images of at most 64 pixels a side, else the
        ImageNet stem; without ``image_size`` it takes the CIFAR stem (hybrid's data sets
        are 8 to 32 pixels).
    image_size : int, default=None
        The larger side of the images in pixels; only ``stem="auto"`` reads it.
    width : int, default=64
        Channels of the first stage; the embedding has ``8 * width``.
    zero_init_residual : bool, default=False

    Examples
    --------
    >>> import torch
    >>> resnet18(in_channels=3)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 512])
    """
    if stem == "auto":
        stem = "imagenet" if image_size is not None and image_size > SMALL_IMAGE_MAX else "cifar"
    return ResNet(in_channels, (2, 2, 2, 2), width, stem, zero_init_residual)
