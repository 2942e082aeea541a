"""NASA's micrograph segmentation benchmark: Super1..4 (γ′ precipitates) and EBC1..3 (coating oxide).

Layout under ``root`` (the folder holding the set folders; default ``$MICROSEG_DATA`` or ``./data``)::

    <root>/<Set>/{train,val,test[,different_test]}/<name>.tif
    <root>/<Set>/{train,val,test[,different_test]}_annot/<mask name>.tif

Each set is a few lines: its folder, its mask decoder and its crop policy. ``augment: nasa`` trains
with NASA's pipeline of the set's material and ``eval_crop: nasa`` evaluates where NASA does (EBC: a
fixed 512² crop; Super: the whole image); the dataset configs of experiments/configs use both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
from datamodules.transforms import Box, Preset, eval_transform

#: our split name -> NASA's folder name
SPLIT_FOLDERS = {"train": "train", "val": "val", "test": "test", "test_ood": "different_test"}
#: NASA's EBC validation/test crop (x_min, y_min, x_max, y_max) of the 1024² images: 512² centred
#: horizontally and 100 px below the centre, "to more accurately capture where the oxide layer is"
#: (binary_segmentation_example.ipynb, get_validation_augmentation: ``albu.Crop(256, 256+100, 768, 768+100)``)
NASA_EBC_EVAL_CROP: Box = (256, 356, 768, 868)
NasaPreset = Preset | Literal["nasa"]
EvalCrop = Literal["nasa"] | tuple[int, int, int, int] | None


class NASABenchmark(SegmentationDataModule):
    """One NASA set: reads ``<root>/<folder>/<split>`` + ``<split>_annot``; see the subclasses.

    Args:
        augment: ``nasa`` = NASA's training pipeline of this material (``nasa_super`` or ``nasa_ebc``),
            or any preset of datamodules/transforms.py.
        eval_crop: ``nasa`` = evaluate validation and test where NASA does (``nasa_eval_crop``), or a
            box ``[x_min, y_min, x_max, y_max]`` in pixels of the original images, or ``None`` for the
            whole image. The box is scaled with ``scale``.
    """

    folder: str = ""
    has_ood: bool = False
    family: str = ""
    #: where NASA evaluates this material (``None``: the whole image)
    nasa_eval_crop: Box | None = None

    def __init__(
        self, root: str | None = None, augment: NasaPreset = "nasa", eval_crop: EvalCrop = None, **kwargs
    ) -> None:
        super().__init__(augment=f"nasa_{self.family}" if augment == "nasa" else augment, **kwargs)
        self.root = Path(root) if root else default_root()
        self.dataset_name = self.folder.lower()
        self.eval_crop = self.nasa_eval_crop if eval_crop == "nasa" else eval_crop
        box = self.eval_crop
        if box is not None and not (len(box) == 4 and 0 <= box[0] < box[2] and 0 <= box[1] < box[3]):
            raise ValueError(
                f"data.init_args.eval_crop {eval_crop!r}: give nasa, null or [x_min, y_min, x_max, y_max] "
                "with x_min < x_max and y_min < y_max"
            )
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

    def scaled_eval_crop(self) -> Box | None:
        """``eval_crop`` in pixels of the cached (rescaled) images."""
        if self.eval_crop is None:
            return None
        return tuple(round(v * self.scale) for v in self.eval_crop)  # type: ignore[return-value]

    def eval_transform(self):
        return eval_transform(self.mean, self.std, crop=self.scaled_eval_crop())

    def samples(self, split: str) -> list[Sample]:
        """The cached split; every evaluated image must hold ``eval_crop`` (checked when it is decoded)."""
        samples = super().samples(split)
        box = self.scaled_eval_crop()
        if split == "train" or box is None:
            return samples
        for sample in samples:
            h, w = sample.mask.shape
            if box[2] > w or box[3] > h:
                raise DataError(
                    f"{self.root / self.folder / SPLIT_FOLDERS[split]}: image {sample.name} is {w}x{h} px "
                    f"(after scale {self.scale}) and does not hold eval_crop {list(self.eval_crop)}; set "
                    "data.init_args.eval_crop to null (whole image) or a box [x_min, y_min, x_max, y_max] "
                    "inside the image"
                )
        return samples


class SuperBenchmark(NASABenchmark):
    """Super sets: masks ``<stem>_mask.tif`` are RGBA overlays; training on whole 512² images."""

    family = "super"

    def __init__(
        self, root: str | None = None, crop_size: int | None = None, augment: NasaPreset = "nasa", **kwargs
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

    family = "ebc"
    nasa_eval_crop = NASA_EBC_EVAL_CROP

    def __init__(
        self,
        root: str | None = None,
        crop_size: int | None = 512,
        keep_crack: bool = False,
        augment: NasaPreset = "nasa",
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
