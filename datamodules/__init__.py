"""LightningDataModules: the NASA benchmark sets, MicroLite, a lab's own folder, synthetic micrographs."""

from datamodules.base import SegmentationDataModule
from datamodules.folder import FolderSegmentation
from datamodules.io import DataError
from datamodules.microlite import MicroLite
from datamodules.nasa import EBC1, EBC2, EBC3, Super1, Super2, Super3, Super4
from datamodules.synthetic import Synthetic

__all__ = [
    "EBC1",
    "EBC2",
    "EBC3",
    "DataError",
    "FolderSegmentation",
    "MicroLite",
    "SegmentationDataModule",
    "Super1",
    "Super2",
    "Super3",
    "Super4",
    "Synthetic",
]
