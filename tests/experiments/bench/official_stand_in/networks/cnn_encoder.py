"""Stand-in for the official `networks/cnn_encoder.py`: the CNN encoder asks smp for ImageNet weights.

Like the paper's code it imports `get_encoder` into its own namespace and downloads weights when asked
for `imagenet`, so a test can check that the bench builds it without any download.
"""

from __future__ import annotations

from segmentation_models_pytorch.encoders import get_encoder
from torch import nn


def cnn_encoder(name: str, weights: str | None) -> nn.Module:
    return get_encoder(name=name, in_channels=3, depth=5, weights=weights)
