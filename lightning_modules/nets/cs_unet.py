"""CS-UNet (arXiv 2308.13917): a CNN encoder beside a Swin-T encoder with ResMLP, Swin-Unet-style decoder.

At each of the 4 scales (reductions 4, 8, 16, 32) the CNN map `(B, C, H, W)` is embedded by a linear
layer (+ LayerNorm) to the Swin width, `(B, H, W, C_swin)`. At /32 it is fused with the last Swin stage
(concat + linear) into the decoder's bottleneck; at /4../16 the decoder fuses its up-sampled map with
both the Swin and the embedded CNN map (concat + linear).

Weights: a Swin source fills the whole Swin encoder and, with `seed_decoder` (default), each decoder
stage from the encoder stage of its scale. The official `CSUnet.load_from` means to do the same (it is
Swin-Unet's `load_from`), but its keys lack the `encoder.`/`decoder.` prefixes of its own model, so
only the shared patch embedding loads there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightning_modules.nets.blocks import SkipFusion, crop, init_linear, nchw_to_nhwc, pad_to_multiple
from lightning_modules.nets.cnn_encoder import CNNEncoder, micronet_checkpoint_filter
from lightning_modules.nets.swin import SwinEncoder, mirror_blocks, swin_checkpoint_filter
from lightning_modules.nets.swin_unet import SwinUnetDecoder, mirrored_stages


class CSUNet(nn.Module):
    """CS-UNet: `(B,3,H,W)` -> `(B,num_classes,H,W)` at any H, W; encoders under `cnn` and `swin`."""

    encoder_parts = {"cnn": "cnn", "swin": "swin"}

    def __init__(
        self,
        num_classes: int,
        encoder_name: str = "resnet34",
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        mlp: str = "resmlp",
        drop_path_rate: float = 0.1,
        seed_decoder: bool = True,
    ) -> None:
        super().__init__()
        self.encoder_name = encoder_name
        self.seed_decoder = seed_decoder
        self.cnn = CNNEncoder(encoder_name)
        self.swin = SwinEncoder(
            depth, embed_dim, num_heads, window_size, mlp=mlp, drop_path_rate=drop_path_rate
        )
        widths = self.swin.out_channels
        self.embed = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(c, w), nn.LayerNorm(w))
                for c, w in zip(self.cnn.out_channels, widths, strict=True)
            ]
        )
        self.bottleneck = SkipFusion([widths[-1], widths[-1]], widths[-1])
        self.decoder = SwinUnetDecoder(
            num_classes,
            widths,
            self.swin.depths,
            num_heads,
            window_size,
            mlp,
            drop_path_rate,
            skips_per_scale=2,
        )
        self.divisor = max(self.cnn.divisor, self.swin.divisor)
        init_linear(self.embed)
        init_linear(self.bottleneck)

    @property
    def decoder_seeds(self) -> dict[str, str]:
        """Decoder stage <- encoder stage whose Swin blocks seed it (empty with `seed_decoder=False`)."""
        return mirrored_stages("decoder", "swin", len(self.swin.depths)) if self.seed_decoder else {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = pad_to_multiple(x, self.divisor)
        swin = self.swin(x)
        cnn = [embed(nchw_to_nhwc(f)) for embed, f in zip(self.embed, self.cnn(x), strict=True)]
        bottleneck = self.bottleneck(swin[-1], cnn[-1])
        logits = self.decoder(bottleneck, [[s, c] for s, c in zip(swin[:-1], cnn[:-1], strict=True)])
        return crop(logits, size)


def checkpoint_filter(state_dict: dict, net: CSUNet, part: str) -> dict:
    """`part="swin"`: Swin-T weights -> `swin.*` and the decoder seeds; `part="cnn"`: smp/MicroNet encoder
    -> `cnn.encoder.*`."""
    if part == "swin":
        return mirror_blocks(swin_checkpoint_filter(state_dict, net.swin, prefix="swin."), net.decoder_seeds)
    return micronet_checkpoint_filter(state_dict, net.cnn.encoder, prefix="cnn.encoder.")
