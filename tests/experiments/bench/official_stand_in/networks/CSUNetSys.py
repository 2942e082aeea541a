"""Stand-in for the official `networks/CSUNetSys.py`: a `CSUnetSys` of the official constructor interface.

It is our CS-UNet with the CNN encoder built by the stand-in `cnn_encoder` (weights as the caller asks),
so its FLOPs equal ours; `FORWARDS` > 1 repeats the forward, which a test uses to make the FLOPs differ.
"""

from __future__ import annotations

import torch

from lightning_modules.nets.cs_unet import CSUNet

from .cnn_encoder import cnn_encoder

FORWARDS = 1


class CSUnetSys(CSUNet):
    def __init__(
        self, img_size=224, num_classes=1000, depths=(2, 2, 2, 2), window_size=7, cnn="efficientnet-b4",
        weights="imagenet", **kwargs,
    ):  # fmt: skip
        print(f"CSUnetSys stand-in: depths {list(depths)}, {img_size}²")  # the official one prints too
        super().__init__(num_classes, encoder_name=cnn, depth=list(depths), window_size=window_size)
        self.cnn.encoder = cnn_encoder(cnn, weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(super(CSUnetSys, self).forward(x) for _ in range(FORWARDS)) / FORWARDS
