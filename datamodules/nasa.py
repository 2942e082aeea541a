"""NASA's micrograph segmentation benchmark: Super1..4 (γ′ precipitates) and EBC1..3 (coating oxide).

Layout under ``root`` (the folder holding the set folders; default ``$MICROSEG_DATA`` or ``./data``)::

    <root>/<Set>/{train,val,test[,different_test]}/<name>.tif
    <root>/<Set>/{train,val,test[,different_test]}_annot/<mask name>.tif

Each set is a few lines: its folder, its mask decoder and its crop policy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datamodules.base import Sample, SegmentationDataModule, read_pairs
from datamodules.io import DataError, default_root, pair_by_name
from datamodules.masks import (
    EBC_MERGED,
    EBC_WITH_CRACK,
    SUPER_CLASSES,
    SUPER_COLORS,
    decode_indices,
    decode_super,
)
from datamodules.transforms import Preset

#: our split name -> NASA's folder name
SPLIT_FOLDERS = {"train": "train", "val": "val", "test": "test", "test_ood": "different_test"}


class NASABenchmark(SegmentationDataModule):
    """One NASA set: reads ``<root>/<folder>/<split>`` + ``<split>_annot``; see the subclasses."""

    folder: str = ""
    has_ood: bool = False

    def __init__(self, root: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root) if root else default_root()
        self.dataset_name = self.folder.lower()
        if self.has_ood:
            self.test_set_names = ["test", "test_ood"]

    def mask_names(self, image: Path) -> list[str]:
        """File names a mask of ``image`` may have."""
        return [image.name]

    def decode(self, raw: np.ndarray, source: Path) -> np.ndarray:
        """Class indices from a raw mask array (``source`` names the file in errors)."""
        raise NotImplementedError

    def set_dir(self) -> Path:
        path = self.root / self.folder
        if not path.is_dir():
            raise DataError(
                f"{path}: data set folder not found; run `python -m experiments data download "
                f"--dataset {self.dataset_name} --root {self.root}` (add --from FILE if offline) "
                "or set MICROSEG_DATA / data.root to the folder holding the sets"
            )
        return path

    def load_split(self, split: str) -> list[Sample]:
        base, name = self.set_dir(), SPLIT_FOLDERS[split]
        pairs = pair_by_name(base / name, base / f"{name}_annot", self.mask_names)
        return read_pairs(pairs, self.decode, intensity=self.intensity)


class SuperBenchmark(NASABenchmark):
    """Super sets: masks ``<stem>_mask.tif`` are RGBA overlays; training on whole 512² images."""

    def __init__(
        self, root: str | None = None, crop_size: int | None = None, augment: Preset = "super", **kwargs
    ) -> None:
        super().__init__(
            root=root,
            crop_size=crop_size,
            augment=augment,
            class_names=SUPER_CLASSES,
            class_colors=SUPER_COLORS,
            **kwargs,
        )

    def mask_names(self, image: Path) -> list[str]:
        return [f"{image.stem}_mask{image.suffix}", f"{image.stem}_mask.tif"]

    def decode(self, raw: np.ndarray, source: Path) -> np.ndarray:
        return decode_super(raw, source)


class EBCBenchmark(NASABenchmark):
    """EBC sets: index masks with the image's name; training on random 512² crops of 1024² images.

    Args:
        keep_crack: keep crack (index 2) as a third class instead of merging it into oxide.
    """

    def __init__(
        self,
        root: str | None = None,
        crop_size: int | None = 512,
        keep_crack: bool = False,
        augment: Preset = "ebc",
        **kwargs,
    ) -> None:
        names = ["background", "oxide", "crack"] if keep_crack else ["background", "oxide"]
        super().__init__(root=root, crop_size=crop_size, augment=augment, class_names=names, **kwargs)
        self.keep_crack = keep_crack

    def decode(self, raw: np.ndarray, source: Path) -> np.ndarray:
        return decode_indices(raw, EBC_WITH_CRACK if self.keep_crack else EBC_MERGED, source)


class Super1(SuperBenchmark):
    """Super-1: full training data (10 / 4 / 4)."""

    folder = "Super1"


class Super2(SuperBenchmark):
    """Super-2: few-shot (4 train), plus a differently prepared test set as ``test_ood``."""

    folder, has_ood = "Super2", True


class Super3(SuperBenchmark):
    """Super-3: one-shot (1 train image), plus ``test_ood``."""

    folder, has_ood = "Super3", True


class Super4(SuperBenchmark):
    """Super-4: out-of-distribution test (other alloy, etching, imaging)."""

    folder = "Super4"


class EBC1(EBCBenchmark):
    """EBC-1: full training data."""

    folder = "EBC1"


class EBC2(EBCBenchmark):
    """EBC-2: few-shot (4 train)."""

    folder = "EBC2"


class EBC3(EBCBenchmark):
    """EBC-3: one/few-shot, harder."""

    folder = "EBC3"


NASA_SETS: dict[str, type[NASABenchmark]] = {
    cls.folder.lower(): cls for cls in (Super1, Super2, Super3, Super4, EBC1, EBC2, EBC3)
}
