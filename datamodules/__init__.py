"""LightningDataModules: the NASA benchmark sets, MicroLite, a lab's own folder, synthetic micrographs."""

from datamodules.base import SegmentationDataModule
from datamodules.nasa import EBC1, EBC2, EBC3, Super1, Super2, Super3, Super4

__all__ = ["EBC1", "EBC2", "EBC3", "SegmentationDataModule", "Super1", "Super2", "Super3", "Super4"]
