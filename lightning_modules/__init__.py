"""LightningModules of the suite: training logic only, networks live in `lightning_modules.nets`."""

from lightning_modules.classification import ClassificationModule
from lightning_modules.segmentation import SegmentationModule
from lightning_modules.segmenters import CSUNet, HiFormer, SwinUnet, TransDeepLab, UNet, UNetPlusPlus

__all__ = [
    "CSUNet",
    "ClassificationModule",
    "HiFormer",
    "SegmentationModule",
    "SwinUnet",
    "TransDeepLab",
    "UNet",
    "UNetPlusPlus",
]
