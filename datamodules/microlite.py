"""MicroLite-style micrograph classification from any ImageFolder tree (`<root>/<class>/<image>`).

Preprocessing follows the CS-UNet paper's MicroLite pipeline:

1. **Annotation removal**: SEM data bands and scale bars are cropped away (`scale_bars.specimen_rows`).
2. **Tiling** to `tile_size`² tiles. An image whose side is not a multiple of the tile gets evenly spaced,
   overlapping tiles that cover it edge to edge (never padding). An image with a side shorter than the
   tile is first resized up (bilinear, aspect kept) so that side equals the tile: padding would add a
   border the classifier could learn from, and the tile must stay square for Swin's windows.
3. **Split per source image**, stratified by class: all tiles of one image fall in one split, so
   validation accuracy is never measured on a neighbour tile of a training image.
4. **Augmentation** (train only, albumentations): flips, 90° rotations, brightness/contrast, gamma
   (photometric distortion of grey micrographs) and Gaussian noise; evaluation is never random.

Batches are `(image float32 (B, 3, H, W) ImageNet-normalised, label int64 (B,))`; `image_size` resizes
each tile (e.g. 224 for the paper's Swin-T, smaller for CPU smoke runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import lightning as L
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datamodules.io import read_image
from datamodules.scale_bars import specimen_rows

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def tile_starts(length: int, tile: int) -> list[int]:
    """Evenly spaced starts of tiles that cover `length` (overlapping when it is not a multiple)."""
    if length <= tile:
        return [0]
    n = -(-length // tile)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def load_specimen(path: Path, tile_size: int) -> np.ndarray:
    """Grey micrograph without annotation bands, resized up so that its shorter side is >= `tile_size`."""
    grey = np.asarray(Image.fromarray(read_image(path)).convert("L"))  # the suite's one reader, any bit depth
    top, bottom = specimen_rows(grey)
    grey = grey[top:bottom]
    h, w = grey.shape
    if min(h, w) < tile_size:
        scale = tile_size / min(h, w)
        size = (max(tile_size, round(w * scale)), max(tile_size, round(h * scale)))
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BILINEAR))
    return grey


@dataclass(frozen=True)
class Tile:
    """One training sample: a tile of a source image."""

    path: Path
    label: int
    top: int
    left: int


class TileDataset(Dataset):
    """Tiles of micrographs, cut on the fly from the annotation-free specimen."""

    def __init__(self, tiles: list[Tile], tile_size: int, transform: A.Compose) -> None:
        self.tiles, self.tile_size, self.transform = tiles, tile_size, transform

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        tile = self.tiles[index]
        grey = load_specimen(tile.path, self.tile_size)
        crop = grey[tile.top : tile.top + self.tile_size, tile.left : tile.left + self.tile_size]
        image = self.transform(image=np.repeat(crop[..., None], 3, axis=2))["image"]
        return image, tile.label


def split_images(
    files: dict[str, list[Path]], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[tuple[Path, int]]]:
    """Stratified split of source images (not tiles) into train/val/test, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    splits: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(sorted(files)):
        paths = [files[name][i] for i in rng.permutation(len(files[name]))]
        n_test = round(len(paths) * test_fraction)
        n_val = round(len(paths) * val_fraction)
        if len(paths) - n_test - n_val < 1:
            raise ValueError(
                f"class folder {name!r} has {len(paths)} images: too few for val_fraction={val_fraction} "
                f"and test_fraction={test_fraction}; add images or lower the fractions"
            )
        splits["test"] += [(p, label) for p in paths[:n_test]]
        splits["val"] += [(p, label) for p in paths[n_test : n_test + n_val]]
        splits["train"] += [(p, label) for p in paths[n_test + n_val :]]
    return splits


class MicroLite(L.LightningDataModule):
    """Micrograph classification over an ImageFolder tree (MicroLite, microlite-mini, a lab's own)."""

    def __init__(
        self,
        root: str | Path = "data/microlite",
        batch_size: int = 128,
        num_workers: int = 4,
        tile_size: int = 512,
        image_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        max_tiles_per_image: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root = Path(root)
        self.files = self._scan(self.root)
        self.class_names = sorted(self.files)
        self.num_classes = len(self.class_names)
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.dataset_name = "microlite"
        self.datasets: dict[str, TileDataset] = {}

    @staticmethod
    def _scan(root: Path) -> dict[str, list[Path]]:
        if not root.is_dir():
            raise FileNotFoundError(
                f"MicroLite root {root} is not a folder: pass an ImageFolder tree <root>/<class>/<image>"
            )
        files = {
            d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".")
        }
        files = {name: paths for name, paths in files.items() if paths}
        if len(files) < 2:
            raise ValueError(
                f"{root} holds {len(files)} class folder(s) with images; a classifier needs >= 2 "
                f"subfolders of {sorted(IMAGE_SUFFIXES)} files"
            )
        return files

    def transform(self, train: bool) -> A.Compose:
        """Train preset (random) or eval preset (deterministic), both ending in ImageNet normalisation."""
        size = self.hparams.image_size or self.hparams.tile_size
        ops: list = [A.Resize(size, size)]
        if train:
            ops += [
                A.HorizontalFlip(p=0.5),
                A.VerticalFlip(p=0.5),
                A.RandomRotate90(p=0.5),
                A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
                A.RandomGamma(gamma_limit=(80, 120), p=0.3),
                A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
            ]
        ops += [A.Normalize(mean=self.mean, std=self.std), ToTensorV2()]
        return A.Compose(ops, strict=True)

    def _tiles(self, items: list[tuple[Path, int]], rng: np.random.Generator) -> list[Tile]:
        size, cap = self.hparams.tile_size, self.hparams.max_tiles_per_image
        tiles = []
        for path, label in items:
            h, w = load_specimen(path, size).shape
            image_tiles = [
                Tile(path, label, top, left) for top in tile_starts(h, size) for left in tile_starts(w, size)
            ]
            if cap is not None and len(image_tiles) > cap:
                image_tiles = [
                    image_tiles[i] for i in sorted(rng.choice(len(image_tiles), cap, replace=False))
                ]
            tiles += image_tiles
        return tiles

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        splits = split_images(self.files, hp.val_fraction, hp.test_fraction, hp.seed)
        rng = np.random.default_rng(hp.seed)
        for name, items in splits.items():
            self.datasets[name] = TileDataset(
                self._tiles(items, rng), hp.tile_size, self.transform(name == "train")
            )

    def _loader(self, split: str) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            self.datasets[split],
            batch_size=hp.batch_size,
            shuffle=split == "train",
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            drop_last=split == "train" and len(self.datasets[split]) > hp.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
