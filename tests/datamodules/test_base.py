"""SegmentationDataModule's batching of images of different sizes: padded training batches, one-size eval batches."""

from __future__ import annotations

import torch

from datamodules.base import IGNORE_INDEX, SizeGroupedBatches, pad_collate
from lightning_modules.losses import IGNORE_INDEX as LOSS_IGNORE_INDEX


def _item(h: int, w: int, value: float, name: str) -> dict:
    return {"image": torch.full((3, h, w), value), "mask": torch.ones(h, w, dtype=torch.long), "name": name}


def test_pad_collate_pads_masks_with_the_label_the_loss_ignores() -> None:
    batch = pad_collate([_item(4, 6, 1.0, "a"), _item(5, 3, 2.0, "b")])
    assert batch["image"].shape == (2, 3, 5, 6) and batch["mask"].shape == (2, 5, 6)
    assert batch["name"] == ["a", "b"]
    assert batch["image"][0, :, :4, :6].eq(1).all() and batch["image"][0, :, 4:].eq(0).all()
    assert batch["mask"][0, :4, :6].eq(1).all() and batch["mask"][0, 4:].eq(IGNORE_INDEX).all()
    assert batch["mask"][1, :, :3].eq(1).all() and batch["mask"][1, :, 3:].eq(IGNORE_INDEX).all()
    assert IGNORE_INDEX == LOSS_IGNORE_INDEX  # the one contract value (docs/design.md), on both sides


def test_pad_collate_stacks_images_of_one_size_unpadded() -> None:
    batch = pad_collate([_item(4, 6, 1.0, "a"), _item(4, 6, 2.0, "b")])
    assert batch["image"].shape == (2, 3, 4, 6) and not batch["mask"].eq(IGNORE_INDEX).any()


def test_eval_batches_hold_one_size_and_every_image_once() -> None:
    sizes = [(4, 6), (5, 3), (4, 6), (4, 6), (5, 3), (2, 2), (4, 6)]
    items = [_item(h, w, float(i), f"im{i}") for i, (h, w) in enumerate(sizes)]
    batches = SizeGroupedBatches(items, sizes, batch_size=2)
    assert batches.batches == [[0, 2], [3, 6], [1, 4], [5]]
    names = [name for i in range(len(batches)) for name in batches[i]["name"]]
    assert sorted(names) == sorted(item["name"] for item in items)
    assert all(not batches[i]["mask"].eq(IGNORE_INDEX).any() for i in range(len(batches)))
