"""Presets: strict albumentations, eval never random, crop/pad and rescale behave."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from datamodules.transforms import eval_transform, rescale, train_transform


def _flatten(compose: A.Compose) -> list:
    out = []
    for t in compose.transforms:
        out.extend(_flatten(t) if hasattr(t, "transforms") else [t])
    return out


def test_eval_has_no_random_op():
    ops = _flatten(eval_transform())
    assert {type(t).__name__ for t in ops} == {"Normalize", "ToTensorV2"}
    image = np.random.default_rng(0).integers(0, 255, (33, 47, 3), dtype=np.uint8)
    mask = np.zeros((33, 47), np.uint8)
    first, second = eval_transform()(image=image, mask=mask), eval_transform()(image=image, mask=mask)
    assert torch.equal(first["image"], second["image"])
    assert first["image"].shape == (3, 33, 47)


@pytest.mark.parametrize("preset", ["super", "ebc", "basic"])
def test_train_presets_keep_mask_aligned_and_typed(preset):
    image = np.zeros((64, 80, 3), np.uint8)
    image[:, 40:] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    out = train_transform(preset, crop_size=32)(image=image, mask=mask)
    assert out["image"].shape == (3, 32, 32) and out["image"].dtype == torch.float32
    assert out["mask"].shape == (32, 32)
    # the bright half is the mask (up to photometric changes, which keep bright above dark)
    img = out["image"].mean(0)
    if 0 < out["mask"].sum() < 32 * 32:
        assert img[out["mask"] == 1].mean() > img[out["mask"] == 0].mean()


def test_crop_larger_than_image_pads():
    out = train_transform("basic", crop_size=64)(
        image=np.zeros((20, 30, 3), np.uint8), mask=np.zeros((20, 30), np.uint8)
    )
    assert out["image"].shape == (3, 64, 64) and out["mask"].shape == (64, 64)


@pytest.mark.parametrize("make", [lambda: train_transform("super", 16), eval_transform])
def test_presets_are_strict_about_misspelt_keys(make):
    with pytest.raises(ValueError, match="msk"):
        make()(image=np.zeros((16, 16, 3), np.uint8), msk=np.zeros((16, 16), np.uint8))


def test_rescale_bilinear_image_nearest_mask():
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    mask = np.random.default_rng(1).integers(0, 3, (40, 60)).astype(np.uint8)
    small_image, small_mask = rescale(image, mask, 0.5)
    assert small_image.shape == (20, 30, 3) and small_mask.shape == (20, 30)
    assert set(np.unique(small_mask)) <= {0, 1, 2}
    assert rescale(image, mask, 1.0)[0] is image
