"""Small convolutional backbones for small images.

The embedding contract (timm's): a backbone is an ``nn.Module`` whose ``forward`` returns the
penultimate-layer embedding of shape (batch, ``num_features``); the classifier head lives in
the LightningModule. Embeddings pass through a ReLU, so each dimension reads as "how strongly
this learned feature fires", which is what rules over embeddings talk about.
"""

from typing import Annotated

from annotated_types import Ge, Gt, Lt
from torch import nn

__all__ = ["SmallCNN", "small_cnn", "tiny_cnn"]


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Stages of two 3x3 conv blocks, max-pooled between stages, then a pooled linear embedding.

    Parameters
    ----------
    in_channels : int
        Image channels (set from the data module).
    widths : tuple of int, default=(32, 64)
        Channels of each stage; images shrink by 2 between stages.
    embedding_dim : int, default=64
        ``num_features``: the size of the embedding the surrogates read.
    dropout : float, default=0.1
        Dropout on the embedding during training.
    """

    def __init__(self, in_channels: int, widths=(32, 64), embedding_dim: int = 64,
                 dropout: float = 0.1):
        super().__init__()
        layers, channels = [], in_channels
        for stage, width in enumerate(widths):
            if stage:
                layers.append(nn.MaxPool2d(2))
            layers += [_conv_block(channels, width), _conv_block(width, width)]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embedding = nn.Sequential(nn.Linear(channels, embedding_dim), nn.ReLU(inplace=True),
                                       nn.Dropout(dropout))
        self.num_features = embedding_dim

    @property
    def cam_layer(self) -> nn.Module:
        """The last convolution block: what Grad-CAM reads (the finest map of the last stage)."""
        return self.features[-3]

    def forward(self, x):
        return self.embedding(self.features(x))


def small_cnn(in_channels: int, widths: list[Annotated[int, Gt(0)]] = (32, 64),
              embedding_dim: Annotated[int, Gt(0)] = 64,
              dropout: Annotated[float, Ge(0), Lt(1)] = 0.1) -> SmallCNN:
    """The default backbone for digits-sized images (see :class:`SmallCNN`)."""
    return SmallCNN(in_channels, tuple(widths), embedding_dim, dropout)


def tiny_cnn(in_channels: int, embedding_dim: Annotated[int, Gt(0)] = 8) -> SmallCNN:
    """A one-stage, 8-channel backbone that trains in a blink: for tests."""
    return SmallCNN(in_channels, (8,), embedding_dim, dropout=0.0)
