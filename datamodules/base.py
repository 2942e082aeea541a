"""SegmentationDataModule: the loaders and attributes every segmentation data set shares.

A subclass says what one split holds (:meth:`load_split` → sources: file pairs, generated or decoded
samples); this class decides where the decoded samples live (``datamodules/samples.py``: in memory when
the split fits the memory budget, as the tiny benchmark sets do, so an epoch costs only augmentation;
else decoded per sample), applies the train/eval presets and builds the loaders with the batch dicts of
``docs/design.md``.

Images of different sizes (a lab's own micrographs; 90° rotations of non-square ones) batch as follows.
Training pads each batch to its largest image, with masks padded by ``IGNORE_INDEX``, which counts in
neither loss nor metrics. Validation, test and predict batch only images of the same size, so nothing
is padded: padding changes a sample's own predictions (random-init nets, 350/351/358x512 images padded
to 358x512: U-Net-ResNet18 logits change by up to 6 in the last 244 of 350 rows, Swin-Unet's in every
row, flipping 2 % of its pixels), and a test score must not depend on ``eval_batch_size``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, default_collate

from datamodules.class_kinds import resolve_kinds
from datamodules.decoded_cache import DecodedCache, decoding_fingerprint
from datamodules.intensity import DEFAULT_RULE, INTENSITY_RULES, IntensityRule
from datamodules.io import DataError
from datamodules.pixel_size import parse_pixel_size
from datamodules.samples import (
    FilePair,
    LazySamples,
    Sample,
    SampleReader,
    Source,
    Storage,
    StoragePlan,
    memory_budget,
    plan_storage,
    read_in_memory,
    sample_sizes,
)
from datamodules.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preset,
    eval_transform,
    train_transform,
)

PALETTE = ((0, 0, 0), (0, 0, 255), (255, 0, 0), (0, 255, 0), (255, 255, 0), (255, 0, 255), (0, 255, 255))
#: mask value of padded pixels, which belong to no image (docs/design.md; lightning_modules.losses skips it)
IGNORE_INDEX = 255


def read_pairs(
    pairs: Iterable[tuple[Path, Path]],
    decode: Callable[[np.ndarray, Path], np.ndarray],
    color: bool = False,
    intensity: str = DEFAULT_RULE,
) -> list[FilePair]:
    """Image/mask file pairs as sources; ``decode(raw mask, mask path)`` gives class indices of the image's
    size, ``intensity`` is the rule that turns the image into 8 bits (`datamodules.intensity`)."""
    return [
        FilePair(image_path.stem, image_path, mask_path, decode, color, intensity)
        for image_path, mask_path in pairs
    ]


def common_pixel_nm(sizes: Sequence[float | None], split: str) -> float | None:
    """The pixel side (nm) all of a split's files record (within 1 %), else None (with a warning when
    they differ)."""
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
    """Samples (a list, or :class:`LazySamples` decoding on access) through an albumentations pipeline;
    ``repeats`` lengthens tiny training sets.

    Albumentations keeps its own random state, which `seed_everything` does not reach and which forked
    DataLoader workers would all inherit unchanged (same augmentations in every worker and epoch). So
    each sample re-seeds the pipeline from torch's RNG, which Lightning seeds in the main process and
    the DataLoader seeds anew per worker and per epoch: runs repeat, workers differ.
    """

    def __init__(self, samples: Sequence[Sample], transform, repeats: int = 1) -> None:
        self.samples, self.transform, self.repeats = samples, transform, max(1, repeats)

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


def pad_collate(items: list[dict]) -> dict:
    """Batch dicts of any image sizes: each image and mask padded at the bottom and right to the largest.

    Padded image pixels are 0 (the normalised mean), padded mask pixels ``IGNORE_INDEX``. Samples of one
    size are stacked as ``default_collate`` stacks them (in shared memory in a worker), unpadded.
    """
    shapes = {tuple(item["mask"].shape) for item in items}
    if len(shapes) == 1:
        return default_collate(items)
    height, width = (max(size) for size in zip(*shapes, strict=True))
    image = items[0]["image"].new_zeros(len(items), items[0]["image"].shape[0], height, width)
    mask = items[0]["mask"].new_full((len(items), height, width), IGNORE_INDEX)
    for k, item in enumerate(items):
        h, w = item["mask"].shape
        image[k, :, :h, :w] = item["image"]
        mask[k, :h, :w] = item["mask"]
    return {"image": image, "mask": mask, "name": [item["name"] for item in items]}


class SizeGroupedBatches(Dataset):
    """Evaluation batches of up to ``batch_size`` images that all have the same size: item ``i`` is a batch.

    Images keep their order within a size; sizes come in the order they first appear. Being a dataset of
    whole batches (a DataLoader with ``batch_size=None``), a distributed sampler over it gives every image
    to exactly one process, and Lightning, which replaces the sampler of per-image loaders under DDP with
    one that pads by repeating images, leaves it alone.
    """

    def __init__(self, dataset: Dataset, sizes: Sequence[tuple[int, int]], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {batch_size}")
        groups: dict[tuple[int, int], list[int]] = {}
        for index, size in enumerate(sizes):
            groups.setdefault(tuple(size), []).append(index)
        self.dataset = dataset
        self.batches = [g[i : i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        return pad_collate([self.dataset[i] for i in self.batches[index]])


class SegmentationDataModule(L.LightningDataModule):
    """Base of every segmentation DataModule (NASA sets, folders, synthetic).

    Args:
        batch_size: training batch size (images of different sizes are padded, see the module docstring).
        eval_batch_size: validation/test/predict batch size; a batch holds images of one size only.
        num_workers, persistent_workers, pin_memory: passed to every DataLoader.
        scale: resize factor applied once to every split (e.g. 0.5 for fast CPU runs).
        crop_size: random square training crop (after ``scale``); ``None`` trains on whole images.
        train_repeats: how many times the training split is repeated per epoch (one-shot sets).
        augment: training preset of datamodules/transforms.py: ``nasa_super`` / ``nasa_ebc`` (NASA's
            pipelines), ``strong``, ``upright`` or ``basic`` (ours).
        storage: ``auto`` holds a split in memory when its decoded size fits ``memory_budget`` and reads
            it per sample otherwise; ``memory`` / ``lazy`` force one.
        memory_budget: GiB of decoded samples one process may hold (``None``: a quarter of the machine's
            or cgroup's memory, divided among the processes of this node).
        cache_dir: keep decoded samples there as ``.npy`` files (memory-mapped when read lazily).
        class_kinds: ``matrix`` / ``particles`` / ``layer`` per class, how `measure` treats it
            (``datamodules.class_kinds``; ``None`` entries take the default).
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
        storage: Storage = "auto",
        memory_budget: float | None = None,
        cache_dir: str | None = None,
        class_kinds: Sequence[str | None] | None = None,
        intensity: IntensityRule = DEFAULT_RULE,
        pixel_size: str | None = None,
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if storage not in ("auto", "memory", "lazy"):
            raise ValueError(f"storage must be auto, memory or lazy, got {storage!r}")
        if memory_budget is not None and memory_budget < 0:
            raise ValueError(f"memory_budget is in GiB and must be >= 0, got {memory_budget}")
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
        self.class_kinds = resolve_kinds(class_kinds, self.class_names, "data")
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.scale, self.crop_size = scale, crop_size
        self.train_repeats, self.augment = train_repeats, augment
        self.test_set_names = ["test"]
        self.storage, self.memory_budget, self.cache_dir = storage, memory_budget, cache_dir
        self.storage_plans: dict[str, StoragePlan] = {}  # as logged
        self._cache: dict[str, Sequence[Sample]] = {}
        self._sources: dict[str, Sequence[Source]] = {}

    @property
    def pixel_size_nm(self) -> float | None:
        """Side in nm of a pixel as the network sees it (after ``scale``): from ``pixel_size``, else from
        the training files' metadata once they are listed (`setup`; headers only); None when unknown."""
        if self.pixel_size is not None:
            return self.pixel_size.nm / self.scale
        if "train" not in self._sources:
            return None
        found = common_pixel_nm([s.recorded_pixel_nm() for s in self._sources["train"]], "train")
        return found / self.scale if found else None

    # -- what a subclass provides -------------------------------------------------------------
    def load_split(self, split: str) -> Sequence[Source]:
        """Sources of ``split`` (``train``, ``val``, ``test`` or a name in ``test_set_names``)."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------
    def samples(self, split: str) -> Sequence[Sample]:
        """The split's samples, rescaled: decoded once and kept in memory, or decoded on each access."""
        if split not in self._cache:
            label = f"{self.dataset_name} {split}"
            sources = self._sources[split] = self.load_split(split)
            processes = self.trainer.num_devices if self.trainer is not None else 1
            budget, origin = memory_budget(self.memory_budget, processes)
            held = sum(p.decoded_bytes for p in self.storage_plans.values() if p.mode == "memory")
            plan = plan_storage(sources, self.scale, self.storage, budget - held, origin, label)
            rank_zero_info(f"{label}: {plan.reason}")
            self.storage_plans[split] = plan
            cache = DecodedCache(self.cache_dir, decoding_fingerprint(self)) if self.cache_dir else None
            reader = SampleReader(self.scale, cache)
            if plan.mode == "memory":
                self._cache[split] = read_in_memory(sources, reader, label)
            else:
                self._cache[split] = LazySamples(sources, reader)
        return self._cache[split]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into spawned DataLoader workers (macOS, Windows) through the sources' ``decode``: the
        settings travel, not the trainer or splits already decoded."""
        return {**self.__dict__, "trainer": None, "_cache": {}}

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
        """Plan and (in memory) decode the splits the stage needs, so bad files fail before training starts.

        A lazily read split checks every file header now (missing, unreadable, mask of another size);
        a pixel-level problem (a mask value outside the classes) shows when that sample is first read.
        """
        splits = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": self.test_set_names,
            "predict": ["test"],
        }
        for split in splits.get(stage or "", ["train", "val", *self.test_set_names]):
            self.samples(split)

    def _settings(self) -> dict:
        return {
            "num_workers": self.num_workers,
            "persistent_workers": self.persistent_workers,
            "pin_memory": self.pin_memory,
        }

    def _eval_loader(self, split: str) -> DataLoader:
        sizes = sample_sizes(self.samples(split))
        batches = SizeGroupedBatches(self.dataset(split), sizes, self.eval_batch_size)
        sampler = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning's DistributedSampler pads val/test so every rank gets as many images, counting
            # some twice; this sampler gives each batch to exactly one rank (IoU equals one process's)
            sampler = UnrepeatedDistributedSampler(batches, shuffle=False)
        return DataLoader(batches, batch_size=None, sampler=sampler, **self._settings())

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset("train"),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=False,
            collate_fn=pad_collate,
            **self._settings(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self._eval_loader(name) for name in self.test_set_names]
        return loaders if len(loaders) > 1 else loaders[0]

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
