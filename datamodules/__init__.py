"""LightningDataModules: the NASA benchmark sets, MicroLite, a lab's own folder, synthetic micrographs.

Names resolve on first use (PEP 562), so light tools such as ``python -m experiments data download``
import ``datamodules.download`` without loading Lightning; ``from datamodules import Super1`` and
``class_path: datamodules.Super1`` work as usual.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module defining it
_EXPORTS = {
    "SegmentationDataModule": "datamodules.base",
    "DataError": "datamodules.io",
    "Super1": "datamodules.nasa",
    "Super2": "datamodules.nasa",
    "Super3": "datamodules.nasa",
    "Super4": "datamodules.nasa",
    "EBC1": "datamodules.nasa",
    "EBC2": "datamodules.nasa",
    "EBC3": "datamodules.nasa",
    "FolderSegmentation": "datamodules.folder",
    "Synthetic": "datamodules.synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'datamodules' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
