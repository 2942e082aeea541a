"""Synthetic micrographs: deterministic, exact masks, and the DataModule batch contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.measure import label, regionprops

from datamodules import Synthetic
from datamodules.synthetic import generate


@pytest.mark.parametrize("kind", ["super", "ebc"])
def test_same_seed_same_sample_other_seed_other_sample(kind):
    image, mask = generate(kind, 3, "train", 5, 96)
    again_image, again_mask = generate(kind, 3, "train", 5, 96)
    assert np.array_equal(image, again_image) and np.array_equal(mask, again_mask)
    assert not np.array_equal(image, generate(kind, 4, "train", 5, 96)[0])
    assert not np.array_equal(mask, generate(kind, 3, "val", 5, 96)[1])
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert mask.shape == (96, 96) and mask.dtype == np.uint8


def test_super_is_a_fair_stand_in_for_super1_at_half_resolution():
    """Phase fractions, tertiary counts and sizes, and the low contrasts measured on Super1 (scale 0.5)."""
    fractions, counts, areas = [], [], []
    for i in range(4):
        image, mask = generate("super", 0, "train", i, 256)
        fractions.append(np.bincount(mask.ravel(), minlength=3) / mask.size)
        tertiary = label(mask == 2)
        counts.append(tertiary.max())
        areas += [r.area for r in regionprops(tertiary)]
        grey = image[..., 0].astype(float)
        matrix, secondary, tert = (grey[mask == c].mean() for c in range(3))
        assert tert < secondary < matrix < secondary + 25  # darker phases, but no toy contrast
    matrix, secondary, tertiary = np.mean(fractions, axis=0)
    assert 0.4 < secondary < 0.6 and 0.01 < tertiary < 0.04  # Super1 train: 0.488 and 0.022
    assert min(counts) >= 40 and max(counts) <= 150  # Super1 at half size: 73-125 per image
    assert 10 < np.mean(areas) < 30 and max(areas) < 100  # separate small discs, not merged blobs


def test_super_shows_the_same_field_of_view_at_any_size():
    small, large = (generate("super", 0, "train", 0, size)[1] for size in (128, 512))
    for c in (1, 2):
        assert abs((small == c).mean() - (large == c).mean()) < 0.5 * (large == c).mean()


def test_ebc_layers_are_ordered_top_to_bottom():
    image, mask = generate("ebc", 0, "train", 0, 128)
    oxide_rows = np.nonzero((mask > 0).any(axis=1))[0]
    assert oxide_rows.min() > 0 and oxide_rows.max() < 127  # coating above, substrate below
    assert (mask == 2).any()  # thin cracks ...
    column = mask[:, np.nonzero((mask == 2).any(axis=0))[0][0]]
    assert set(np.unique(column)) <= {0, 1, 2}
    # ... and cracks lie inside the oxide band only
    rows_with_crack = np.nonzero((mask == 2).any(axis=1))[0]
    assert oxide_rows.min() <= rows_with_crack.min() and rows_with_crack.max() <= oxide_rows.max()


@pytest.mark.parametrize(
    ("kind", "keep_crack", "classes"), [("super", False, 3), ("ebc", False, 2), ("ebc", True, 3)]
)
def test_datamodule_contract(kind, keep_crack, classes):
    dm = Synthetic(
        kind=kind, size=64, num_train=3, num_val=2, num_test=1, batch_size=2, keep_crack=keep_crack
    )
    assert dm.num_classes == classes == len(dm.class_names) == len(dm.class_colors)
    assert dm.dataset_name == "synthetic" and dm.test_set_names == ["test"]
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (2, 64, 64) and batch["mask"].dtype == torch.int64
    assert int(batch["mask"].max()) < classes
    assert len(batch["name"]) == 2
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 1


def test_datamodule_is_deterministic_across_instances():
    a, b = (Synthetic(size=48, num_val=2, seed=7) for _ in range(2))
    first, second = a.dataset("val")[1], b.dataset("val")[1]
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["mask"], second["mask"])


def test_scale_and_repeats():
    dm = Synthetic(size=64, num_train=2, scale=0.5, train_repeats=3, batch_size=6)
    dm.setup("fit")
    assert len(dm.dataset("train")) == 6
    assert dm.dataset("val")[0]["image"].shape == (3, 32, 32)


def test_loader_settings_reach_the_dataloader():
    dm = Synthetic(
        size=32, num_train=2, num_workers=1, persistent_workers=True, pin_memory=False, batch_size=2
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.persistent_workers, loader.batch_size) == (1, True, 2)
    assert next(iter(loader))["image"].shape == (2, 3, 32, 32)


def test_augmentation_repeats_under_a_torch_seed():
    dm = Synthetic(size=32, num_train=1)
    torch.manual_seed(0)
    first = [dm.dataset("train")[0]["image"] for _ in range(2)]
    torch.manual_seed(0)
    again = [dm.dataset("train")[0]["image"] for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_workers_draw_different_augmentations():
    dm = Synthetic(size=32, num_train=1, train_repeats=8, num_workers=2, batch_size=1)
    images = [b["image"] for b in dm.train_dataloader()]  # workers alternate: 0, 1, 0, 1, ...
    assert not all(torch.equal(a, b) for a, b in zip(images[0::2], images[1::2], strict=True))
