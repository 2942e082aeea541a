"""UNet++ (Zhou et al.) with any smp encoder: a thin builder over `segmentation_models_pytorch.UnetPlusPlus`."""

from __future__ import annotations

import segmentation_models_pytorch as smp

from lightning_modules.nets.unet import AnySizeSmp, checkpoint_filter

__all__ = ["UNetPlusPlus", "checkpoint_filter"]


class UNetPlusPlus(AnySizeSmp, smp.UnetPlusPlus):
    """smp UNet++ that takes any input size (NASA's benchmark architecture)."""
