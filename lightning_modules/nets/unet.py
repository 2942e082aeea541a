"""UNet (Ronneberger et al.) with any smp encoder: a thin builder over `segmentation_models_pytorch.Unet`."""

from __future__ import annotations

from collections.abc import Sequence

import segmentation_models_pytorch as smp
import torch

from lightning_modules.nets.blocks import crop, pad_to_multiple
from lightning_modules.nets.cnn_encoder import micronet_checkpoint_filter


class AnySizeSmp:
    """Mixin for an smp decoder model: any H, W (pads to the encoder's stride, crops the logits back).

    Built without pretrained weights; `lightning_modules.weights.load_weights` loads them.
    """

    encoder_parts = {"cnn": "encoder"}

    def __init__(
        self,
        num_classes: int,
        encoder_name: str = "resnet34",
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    ) -> None:
        super().__init__(
            encoder_name=encoder_name,
            encoder_weights=None,
            decoder_channels=tuple(decoder_channels),
            classes=num_classes,
        )
        self.encoder_name = encoder_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return crop(super().forward(pad_to_multiple(x, self.encoder.output_stride)), size)


class UNet(AnySizeSmp, smp.Unet):
    """smp U-Net that takes any input size."""


def checkpoint_filter(state_dict: dict, net: AnySizeSmp, part: str = "cnn") -> dict:
    """CNN encoder weights (NASA MicroNet / smp ImageNet layout) -> `encoder.*` keys of `net`."""
    return micronet_checkpoint_filter(state_dict, net.encoder, prefix="encoder.")
