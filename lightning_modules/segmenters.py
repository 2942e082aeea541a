"""One thin LightningModule per segmenter: typed network hyperparameters for configs and ``--model.help``.

Each wrapper only names its network and forwards the hyperparameters; all training logic is in
`SegmentationModule` (``**kwargs``: num_classes, class names/colours, mean/std, loss weights, optimizer).
``weights`` picks the pretraining: ``imagenet | micronet | imagenet-micronet | microlite | imagenet-microlite
| none | <path>``, or one per encoder part, e.g. ``{cnn: imagenet-micronet, swin: microlite}``;
``seed_decoder`` also seeds a Swin decoder from the Swin source (lightning_modules/weights.py).
A test checks that each wrapper's arguments match its network's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_modules.segmentation import SegmentationModule


def net_kwargs(arguments: dict[str, Any]) -> dict[str, Any]:
    """A wrapper's own arguments, less ``weights`` and the training ones, as YAML-friendly values for its net."""
    skip = {"self", "weights", "kwargs", "__class__"}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in arguments.items() if k not in skip}


class UNet(SegmentationModule):
    """U-Net (smp) on a CNN encoder."""

    net_name = "unet"

    def __init__(
        self,
        encoder_name: str = "resnet34",
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        weights: str | dict[str, str] = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(self.net_name, net_kwargs(locals()), weights=weights, **kwargs)


class UNetPlusPlus(UNet):
    """U-Net++ (smp) on a CNN encoder: NASA's benchmark architecture (same hyperparameters as UNet)."""

    net_name = "unetplusplus"


class SwinUnet(SegmentationModule):
    """Swin-Unet: Swin-T encoder, symmetric Swin decoder."""

    def __init__(
        self,
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        mlp: str = "mlp",
        drop_path_rate: float = 0.1,
        seed_decoder: bool = True,
        weights: str | dict[str, str] = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__("swin_unet", net_kwargs(locals()), weights=weights, **kwargs)


class CSUNet(SegmentationModule):
    """CS-UNet: CNN and Swin-T encoders side by side, fused skips, Swin decoder (the paper's model)."""

    def __init__(
        self,
        encoder_name: str = "resnet34",
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        mlp: str = "resmlp",
        drop_path_rate: float = 0.1,
        seed_decoder: bool = True,
        weights: str | dict[str, str] = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__("cs_unet", net_kwargs(locals()), weights=weights, **kwargs)


class HiFormer(SegmentationModule):
    """HiFormer: CNN and Swin-T pyramids joined by a double-level fusion (DLF) module."""

    def __init__(
        self,
        encoder_name: str = "resnet50",
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        drop_path_rate: float = 0.1,
        dlf_depth: Sequence[Sequence[int]] = ((1, 2, 0),),
        dlf_heads: Sequence[int] = (6, 12),
        dlf_mlp_ratio: float = 2.0,
        cross_pos_embed: bool = True,
        pos_embed_size: int = 512,
        decoder_channels: int = 128,
        weights: str | dict[str, str] = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__("hiformer", net_kwargs(locals()), weights=weights, **kwargs)


class TransDeepLab(SegmentationModule):
    """TransDeepLabv3+: Swin-T encoder, Swin spatial pyramid pooling, Swin decoder."""

    def __init__(
        self,
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        sspp_window_sizes: Sequence[int] = (8, 16, 32),
        sspp_depth: int = 2,
        decoder_depth: int = 2,
        decoder_last_depth: int = 6,
        decoder_heads: int = 3,
        drop_path_rate: float = 0.1,
        seed_decoder: bool = True,
        weights: str | dict[str, str] = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__("transdeeplab", net_kwargs(locals()), weights=weights, **kwargs)


#: NETS name -> its LightningModule wrapper
SEGMENTERS: dict[str, type[SegmentationModule]] = {
    "unet": UNet,
    "unetplusplus": UNetPlusPlus,
    "swin_unet": SwinUnet,
    "hiformer": HiFormer,
    "transdeeplab": TransDeepLab,
    "cs_unet": CSUNet,
}
