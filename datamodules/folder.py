"""FolderSegmentation: a lab's own micrographs from one YAML, no code.

Two layouts under ``root``:

* split folders: ``train/images``, ``train/masks``, ``val/...``, ``test/...`` (``test`` optional: val is reused);
* one folder: ``images/`` + ``masks/``, split by ``split_fractions`` with a fixed seed.

A mask has the image's stem (any extension) or ``<stem>_mask``. ``classes`` lists the classes in
order (position = class id, index 0 is background); each entry is ``{name, index}`` (the pixel value
in an index mask) or ``{name, color: [r, g, b]}`` (an RGB colour mask). For example::

    data:
      class_path: datamodules.FolderSegmentation
      init_args:
        root: /lab/micrographs
        classes:
          - {name: matrix, index: 0}
          - {name: pore, index: 255}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from datamodules.base import Sample, SegmentationDataModule, read_pairs
from datamodules.io import DataError, pair_by_name
from datamodules.masks import decode_colors, decode_indices
from datamodules.transforms import Preset

SPLITS = ("train", "val", "test")


def _parse_classes(
    classes: list[dict[str, Any]],
) -> tuple[list[str], list[tuple[int, int, int]] | None, dict]:
    """Names, colours (colour masks) or ``{pixel value: class id}`` (index masks) from the YAML list."""
    if not classes:
        raise DataError("data.classes: empty; list the classes, e.g. [{name: background, index: 0}, ...]")
    names, colors, mapping = [], [], {}
    for position, entry in enumerate(classes):
        if "name" not in entry or ("index" in entry) == ("color" in entry):
            raise DataError(
                f"data.classes[{position}] = {entry}: each class needs a name and exactly one of "
                "`index` (pixel value) or `color` ([r, g, b])"
            )
        names.append(str(entry["name"]))
        if "color" in entry:
            colors.append(tuple(int(c) for c in entry["color"]))
        else:
            mapping[int(entry["index"])] = position
    if colors and mapping:
        raise DataError("data.classes: mixes `index` and `color` entries; use one kind for all classes")
    return names, (colors or None), mapping


class FolderSegmentation(SegmentationDataModule):
    """Segmentation data from folders of images and masks (see the module docstring for layouts).

    Args:
        root: folder holding the split folders, or ``images/`` + ``masks/``.
        classes: ordered class list; ``{name, index}`` or ``{name, color: [r, g, b]}`` per class.
        split_fractions: train/val/test fractions for the one-folder layout.
        split_seed: seed of that split, so it is the same on every run.
        name: the dataset name used in run folders and results.
    """

    def __init__(
        self,
        root: str,
        classes: list[dict[str, Any]],
        split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
        split_seed: int = 0,
        name: str = "folder",
        crop_size: int | None = None,
        augment: Preset = "basic",
        **kwargs,
    ) -> None:
        names, colors, mapping = _parse_classes(classes)
        super().__init__(
            class_names=names, class_colors=colors, crop_size=crop_size, augment=augment, **kwargs
        )
        self.root = Path(root)
        self.dataset_name = name
        self.colors, self.mapping = colors, mapping
        self.split_fractions, self.split_seed = split_fractions, split_seed

    @staticmethod
    def mask_names(image: Path) -> list[str]:
        """Same stem with any image extension, or ``<stem>_mask``."""
        suffixes = [image.suffix, ".png", ".tif", ".tiff", ".bmp", ".jpg"]
        return [f"{stem}{s}" for stem in (image.stem, f"{image.stem}_mask") for s in suffixes]

    def _pairs(self, split: str) -> list[tuple[Path, Path]]:
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data root not found; set data.init_args.root to your data folder")
        if (self.root / "train").is_dir():
            folder = self.root / (split if split != "test" or (self.root / "test").is_dir() else "val")
            return pair_by_name(folder / "images", folder / "masks", self.mask_names)
        if not (self.root / "images").is_dir():
            raise DataError(
                f"{self.root}: expected train/images + train/masks (and val/, test/) or images/ + masks/; "
                "arrange your files in one of these layouts"
            )
        pairs = pair_by_name(self.root / "images", self.root / "masks", self.mask_names)
        order = np.random.default_rng(self.split_seed).permutation(len(pairs))
        fractions = np.asarray(self.split_fractions, float) / sum(self.split_fractions)
        n_train, n_val = (int(round(f * len(pairs))) for f in fractions[:2])
        n_val = max(1, n_val) if len(pairs) > n_train else n_val
        bounds = {
            "train": (0, n_train),
            "val": (n_train, n_train + n_val),
            "test": (n_train + n_val, len(pairs)),
        }
        start, stop = bounds[split]
        chosen = [pairs[i] for i in sorted(order[start:stop])]
        if not chosen:
            raise DataError(
                f"{self.root / 'images'}: split {split!r} is empty with {len(pairs)} images and fractions "
                f"{tuple(self.split_fractions)}; add images or change data.split_fractions"
            )
        return chosen

    def decode(self, raw: np.ndarray, source: Path) -> np.ndarray:
        if self.colors is not None:
            return decode_colors(raw, self.colors, source)
        return decode_indices(raw, self.mapping, source)

    def load_split(self, split: str) -> list[Sample]:
        return read_pairs(
            self._pairs(split), self.decode, color=self.colors is not None, intensity=self.intensity
        )
