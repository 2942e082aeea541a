"""CNN image classifier: any smp encoder (timm's too, as `tu-<name>`) + global pooling + a linear head.

The CNN counterpart of `SwinClassifier` for the MicroLite classification pipeline: NASA's MicroNet
encoders were made this way, by classification pretraining of a CNN on micrographs. The encoder is
held under `encoder.` with smp's key names, so a checkpoint of this net loads as the `cnn` weights of
UNet, UNet++, CS-UNet and HiFormer (`micronet_checkpoint_filter` drops the `classification_head.`).
"""

from __future__ import annotations

import torch
from segmentation_models_pytorch.base import ClassificationHead
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from lightning_modules.nets.cnn_encoder import micronet_checkpoint_filter


class CNNClassifier(nn.Module):
    """smp encoder -> deepest map -> average pool -> dropout -> linear; `(B,3,H,W)` -> `(B, num_classes)`."""

    encoder_parts = {"cnn": "encoder"}

    def __init__(self, num_classes: int = 74, encoder_name: str = "resnet50", drop_rate: float = 0.0) -> None:
        super().__init__()
        self.encoder_name = encoder_name  # `load_weights` picks CNN weights (imagenet, micronet) by it
        self.encoder = get_encoder(encoder_name, weights=None)
        self.classification_head = ClassificationHead(
            self.encoder.out_channels[-1], num_classes, pooling="avg", dropout=drop_rate
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classification_head(self.encoder(x)[-1])


def checkpoint_filter(state_dict: dict, net: CNNClassifier, part: str = "cnn") -> dict:
    """CNN encoder weights (smp ImageNet, NASA MicroNet, another classifier) -> `encoder.*` of `net`."""
    return micronet_checkpoint_filter(state_dict, net.encoder, prefix="encoder.")
