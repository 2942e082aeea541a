"""Tiny stand-ins for the training tests: a 1-conv segmenter registered in NETS and a DataModule of
random batch dicts following docs/design.md."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_modules import nets


class TinyNet(nn.Module):
    """(B, 3, H, W) -> (B, num_classes, H, W) with one conv: enough to train and to be deterministic."""

    def __init__(self, num_classes: int = 3, width: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, num_classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def register_tiny(monkeypatch) -> None:
    """Make ``NETS["tiny"]`` available for the duration of a test."""
    monkeypatch.setattr(nets, "NETS", {**getattr(nets, "NETS", {}), "tiny": TinyNet}, raising=False)


class RandomSegmentation(Dataset):
    """Seeded random images whose mask is a threshold of the first channel (learnable)."""

    def __init__(self, n: int, size: int = 16, num_classes: int = 3, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=g)
        self.masks = torch.bucketize(self.images[:, 0].contiguous(), torch.tensor([-0.5, 0.5])).clamp_max(
            num_classes - 1
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "mask": self.masks[i], "name": f"img{i}"}


class TinyData(L.LightningDataModule):
    """The DataModule attributes of docs/design.md over `RandomSegmentation`."""

    def __init__(
        self, n_train: int = 4, n_val: int = 3, n_test: int = 3, ood: bool = False, batch_size: int = 2
    ):
        super().__init__()
        self.num_classes = 3
        self.class_names = ["matrix", "secondary", "tertiary"]
        self.class_colors = [(0, 0, 0), (0, 0, 255), (255, 0, 0)]
        self.mean, self.std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
        self.dataset_name = "tiny"
        self.test_set_names = ["test", "test_ood"] if ood else ["test"]
        self.sizes = {"train": n_train, "val": n_val, "test": n_test, "test_ood": n_test + 1}
        self.batch_size = batch_size

    def _loader(self, split: str, seed: int) -> DataLoader:
        data = RandomSegmentation(self.sizes[split], seed=seed)
        return DataLoader(data, batch_size=self.batch_size, shuffle=split == "train")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", 0)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", 1)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(name, 2 + i) for i, name in enumerate(self.test_set_names)]
