"""LightningDataModules: the NASA benchmark sets, MicroLite, a lab's own folder, synthetic micrographs."""

from datamodules.microlite import MicroLite

__all__ = ["MicroLite"]
