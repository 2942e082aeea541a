"""SegmentationDataModule: the loaders and attributes every segmentation data set shares.

A subclass says how to read one split (:meth:`load_split` → decoded ``(name, image, mask)`` triples);
this class caches the decoded split in memory (the benchmark sets are tiny, so an epoch costs only
augmentation), applies the train/eval presets and builds the loaders with the batch dicts of
``docs/design.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from datamodules.intensity import DEFAULT_RULE, INTENSITY_RULES, IntensityRule
from datamodules.io import DataError, check_same_size, read_mask, read_micrograph
from datamodules.pixel_size import parse_pixel_size
from datamodules.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preset,
    eval_transform,
    rescale,
    train_transform,
)

PALETTE = ((0, 0, 0), (0, 0, 255), (255, 0, 0), (0, 255, 0), (255, 255, 0), (255, 0, 255), (0, 255, 255))


@dataclass(frozen=True)
class Sample:
    """One decoded pair: ``image`` uint8 (H, W, 3), ``mask`` uint8 (H, W) class indices, and the pixel
    side in nm that the image's file records (``None`` when it records none)."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    pixel_nm: float | None = None


def read_pairs(
    pairs: Iterable[tuple[Path, Path]],
    decode: Callable[[np.ndarray, Path], np.ndarray],
    color: bool = False,
    intensity: str = DEFAULT_RULE,
) -> list[Sample]:
    """Read image/mask file pairs; ``decode(raw mask, mask path)`` gives class indices of the image's size."""
    samples = []
    for image_path, mask_path in pairs:
        micrograph = read_micrograph(image_path, intensity)
        mask = decode(read_mask(mask_path, color=color), mask_path)
        check_same_size(micrograph.image, mask, image_path, mask_path)
        calibration = micrograph.calibration
        pixel_nm = calibration.size.nm if calibration else None
        samples.append(Sample(image_path.stem, micrograph.image, mask, pixel_nm))
    return samples


def common_pixel_nm(samples: Sequence[Sample], split: str) -> float | None:
    """The pixel side (nm) all samples share (within 1 %), else None (with a warning when they differ)."""
    sizes = [s.pixel_nm for s in samples]
    if not sizes or None in sizes:
        return None
    low, high = min(sizes), max(sizes)
    if high > 1.01 * low:
        warnings.warn(
            f"the {split} images record pixel sizes from {low:g} to {high:g} nm, so no training pixel "
            "size is stored and `predict` resamples by `scale` only; set data.init_args.pixel_size if "
            "they really share one",
            stacklevel=2,
        )
        return None
    return float(np.median(sizes))


class SegmentationDataset(Dataset):
    """In-memory samples through an albumentations pipeline; ``repeats`` lengthens tiny training sets.

    Albumentations keeps its own random state, which `seed_everything` does not reach and which forked
    DataLoader workers would all inherit unchanged (same augmentations in every worker and epoch). So
    each sample re-seeds the pipeline from torch's RNG, which Lightning seeds in the main process and
    the DataLoader seeds anew per worker and per epoch: runs repeat, workers differ.
    """

    def __init__(self, samples: Sequence[Sample], transform, repeats: int = 1) -> None:
        self.samples, self.transform, self.repeats = list(samples), transform, max(1, repeats)

    def __len__(self) -> int:
        return len(self.samples) * self.repeats

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index % len(self.samples)]
        self.transform.set_random_seed(int(torch.randint(2**31 - 1, ()).item()))
        out = self.transform(image=sample.image, mask=sample.mask)
        return {
            "image": out["image"].float(),
            "mask": torch.as_tensor(out["mask"]).long(),
            "name": sample.name,
        }


class SegmentationDataModule(L.LightningDataModule):
    """Base of every segmentation DataModule (NASA sets, folders, synthetic).

    Args:
        batch_size: training batch size.
        eval_batch_size: validation/test batch size; 1 suits whole images of differing sizes.
        num_workers, persistent_workers, pin_memory: passed to every DataLoader.
        scale: resize factor applied once to every split (e.g. 0.5 for fast CPU runs).
        crop_size: random square training crop (after ``scale``); ``None`` trains on whole images.
        train_repeats: how many times the training split is repeated per epoch (one-shot sets).
        augment: training preset of datamodules/transforms.py: ``nasa_super`` / ``nasa_ebc`` (NASA's
            pipelines), ``strong``, ``upright`` or ``basic`` (ours).
        intensity: how 16-bit and float images become 8-bit (`datamodules.intensity`); stored in
            the checkpoint so that `predict` reads images the same way.
        pixel_size: the side of one pixel of the images on disk (``"4.2nm"``), when their files do not
            record it (a recorded one is read from the training images); with ``scale`` it gives the
            resolution stored in the checkpoint, to which `predict` resamples its inputs.
    """

    dataset_name: str = "segmentation"

    def __init__(
        self,
        class_names: Sequence[str],
        class_colors: Sequence[Sequence[int]] | None = None,
        batch_size: int = 4,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        persistent_workers: bool = False,
        pin_memory: bool = False,
        scale: float = 1.0,
        crop_size: int | None = None,
        train_repeats: int = 1,
        augment: Preset = "basic",
        intensity: IntensityRule = DEFAULT_RULE,
        pixel_size: str | None = None,
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        try:
            self.pixel_size = parse_pixel_size(pixel_size)
        except ValueError as err:
            raise DataError(f"data.pixel_size: {err}") from err
        if intensity not in INTENSITY_RULES:
            raise DataError(
                f"data.intensity: {intensity!r} is not a rule; use one of {', '.join(INTENSITY_RULES)}"
            )
        self.intensity = intensity
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        colors = class_colors or [PALETTE[i % len(PALETTE)] for i in range(self.num_classes)]
        self.class_colors = [tuple(int(c) for c in color) for color in colors]
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.scale, self.crop_size = scale, crop_size
        self.train_repeats, self.augment = train_repeats, augment
        self.test_set_names = ["test"]
        self._cache: dict[str, list[Sample]] = {}

    @property
    def pixel_size_nm(self) -> float | None:
        """Side in nm of a pixel as the network sees it (after ``scale``): from ``pixel_size``, else from
        the training files' metadata once they are read (`setup`); None when unknown."""
        if self.pixel_size is not None:
            return self.pixel_size.nm / self.scale
        if "train" not in self._cache:
            return None
        found = common_pixel_nm(self._cache["train"], "train")
        return found / self.scale if found else None

    # -- what a subclass provides -------------------------------------------------------------
    def load_split(self, split: str) -> list[Sample]:
        """Decoded samples of ``split`` (``train``, ``val``, ``test`` or a name in ``test_set_names``)."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------
    def samples(self, split: str) -> list[Sample]:
        """The split's samples, decoded and rescaled once, then kept in memory."""
        if split not in self._cache:
            scaled = []
            for s in self.load_split(split):
                image, mask = rescale(s.image, s.mask, self.scale)
                scaled.append(Sample(s.name, image, mask, s.pixel_nm))
            self._cache[split] = scaled
        return self._cache[split]

    def train_transform(self):
        return train_transform(self.augment, self.crop_size, self.mean, self.std)

    def eval_transform(self):
        return eval_transform(self.mean, self.std)

    def dataset(self, split: str) -> SegmentationDataset:
        """The dataset a loader of ``split`` reads (training augmentation only for ``train``)."""
        if split == "train":
            return SegmentationDataset(self.samples(split), self.train_transform(), self.train_repeats)
        return SegmentationDataset(self.samples(split), self.eval_transform())

    def setup(self, stage: str | None = None) -> None:
        """Decode (and cache) the splits the stage needs, so bad files fail before training starts."""
        splits = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": self.test_set_names,
            "predict": ["test"],
        }
        for split in splits.get(stage or "", ["train", "val", *self.test_set_names]):
            self.samples(split)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler = None
        if not shuffle and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning's DistributedSampler pads val/test so every rank gets as many images, counting
            # some twice; this sampler gives each image to exactly one rank (IoU equals one process's)
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=False,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self._loader(name, self.eval_batch_size, shuffle=False) for name in self.test_set_names]
        return loaders if len(loaders) > 1 else loaders[0]

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
