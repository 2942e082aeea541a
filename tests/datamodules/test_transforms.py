"""Presets: NASA's pipelines as their notebooks write them, strict albumentations, eval never random."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from datamodules.transforms import PRESETS, RENAMED, eval_transform, rescale, train_transform

# NASA's training pipelines as written in nasa/pretrained-microscopy-models (HEAD f50b568), for the
# albumentations 1.1.0 of their requirements_frozen.txt: (1.1.0 name, p, arguments, with the 1.1.0
# defaults they rely on spelt out). Super: examples/multiclass_segmentation_example.ipynb,
# get_training_augmentation(). EBC: examples/binary_segmentation_example.ipynb at c845a82 (the newest
# copy whose blob is readable), get_training_augmentation(prob=0.3, power=1).
SHARPEN_OR_BLUR = [
    ("Sharpen", 1, {"alpha": (0.2, 0.5), "lightness": (0.5, 1.0)}),
    ("Blur", 1, {"blur_limit": 3}),
]
NASA_SUPER = [
    ("Flip", 0.75, {}),
    ("RandomRotate90", 1, {}),
    ("GaussNoise", 0.5, {"var_limit": (10.0, 50.0), "mean": 0}),
    (
        "OneOf",
        0.5,
        [
            ("CLAHE", 1, {"clip_limit": 4.0, "tile_grid_size": (8, 8)}),
            ("RandomBrightness", 1, {"limit": 0.25}),
            ("RandomGamma", 1, {"gamma_limit": (80, 120)}),
        ],
    ),
    ("OneOf", 0.5, SHARPEN_OR_BLUR),  # MotionBlur is commented out there
    (
        "OneOf",
        0.5,
        [
            ("RandomContrast", 1, {"limit": 0.3}),
            ("HueSaturationValue", 1, {"hue_shift_limit": 20, "sat_shift_limit": 30, "val_shift_limit": 20}),
        ],
    ),
]
NASA_EBC = [
    ("HorizontalFlip", 0.5, {}),
    ("RandomCrop", 1, {"height": 512, "width": 512}),
    ("GaussNoise", 0.5, {"var_limit": (10.0, 50.0), "mean": 0}),
    ("RandomBrightnessContrast", 0.3, {"brightness_limit": 0.2, "contrast_limit": 0.2}),
    ("OneOf", 0.3, SHARPEN_OR_BLUR),
]


def _limit(x: float) -> tuple[float, float]:
    """albumentations' symmetric range of a scalar limit."""
    return (-x, x)


def assert_is_nasa_op(ours, nasa: tuple) -> None:
    """Our albumentations-2 op does what NASA's albumentations-1.1.0 op does (name, p, arguments)."""
    name, p, args = nasa
    assert ours.p == p, (name, ours)
    if name == "OneOf" or name == "Flip":
        assert type(ours) is A.OneOf
        if name == "Flip":  # 1.1.0 Flip: horizontal, vertical or both, equally likely
            args = [("HorizontalFlip", 1, {}), ("VerticalFlip", 1, {}), ("Both", 1, {})]
        assert len(ours.transforms) == len(args)
        for child, spec in zip(ours.transforms, args, strict=True):
            assert_is_nasa_op(child, spec)
        return
    if name == "Both":
        assert [type(t) for t in ours.transforms] == [A.HorizontalFlip, A.VerticalFlip]
        assert all(t.p == 1 for t in ours.transforms)
        return
    brightness_contrast = {
        "RandomBrightness": (args.get("limit"), 0),
        "RandomContrast": (0, args.get("limit")),
        "RandomBrightnessContrast": (args.get("brightness_limit"), args.get("contrast_limit")),
    }
    if name in brightness_contrast:
        brightness, contrast = brightness_contrast[name]
        assert type(ours) is A.RandomBrightnessContrast
        assert ours.brightness_limit == _limit(brightness) and ours.contrast_limit == _limit(contrast)
        assert ours.brightness_by_max
        return
    assert type(ours).__name__ == name
    if name == "GaussNoise":  # 1.1.0: variance on the 0-255 scale; 2.x: std as a fraction of 255
        low, high = args["var_limit"]
        assert ours.std_range == pytest.approx((low**0.5 / 255, high**0.5 / 255))
        assert ours.mean_range == (args["mean"], args["mean"]) and ours.per_channel
    elif name == "CLAHE":  # 1.1.0: a scalar clip limit x means (1, x)
        assert ours.clip_limit == (1, args["clip_limit"]) and ours.tile_grid_size == args["tile_grid_size"]
    elif name == "HueSaturationValue":
        assert ours.hue_shift_limit == _limit(args["hue_shift_limit"])
        assert ours.sat_shift_limit == _limit(args["sat_shift_limit"])
        assert ours.val_shift_limit == _limit(args["val_shift_limit"])
    elif name == "Blur":
        assert ours.blur_limit == (args["blur_limit"], args["blur_limit"])
    elif name == "Sharpen":
        assert (ours.alpha, ours.lightness, ours.method) == (args["alpha"], args["lightness"], "kernel")
    else:
        assert {k: getattr(ours, k) for k in args} == args


def _ops(preset: str, crop_size: int | None) -> list:
    """The preset's ops without normalisation and tensor conversion, and without the crop's padding."""
    ops = list(train_transform(preset, crop_size).transforms)
    assert [type(t).__name__ for t in ops[-2:]] == ["Normalize", "ToTensorV2"]
    return [t for t in ops[:-2] if type(t) is not A.PadIfNeeded]


@pytest.mark.parametrize(
    ("preset", "crop_size", "nasa"), [("nasa_super", None, NASA_SUPER), ("nasa_ebc", 512, NASA_EBC)]
)
def test_nasa_presets_are_nasas_pipelines(preset, crop_size, nasa):
    ours = _ops(preset, crop_size)
    assert len(ours) == len(nasa), [type(t).__name__ for t in ours]
    for op, spec in zip(ours, nasa, strict=True):
        assert_is_nasa_op(op, spec)


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_former_preset_names_warn_and_build_the_same_pipeline(old):
    with pytest.warns(FutureWarning, match=RENAMED[old]):
        renamed = train_transform(old)
    assert repr(renamed) == repr(train_transform(RENAMED[old]))


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match="nasa_super, nasa_ebc, strong, upright, basic"):
        train_transform("nasa")


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


@pytest.mark.parametrize("preset", sorted(PRESETS))
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


@pytest.mark.parametrize("make", [lambda: train_transform("strong", 16), eval_transform])
def test_presets_are_strict_about_misspelt_keys(make):
    with pytest.raises(ValueError, match="msk"):
        make()(image=np.zeros((16, 16, 3), np.uint8), msk=np.zeros((16, 16), np.uint8))


def test_eval_crop_is_the_fixed_box():
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    mask = np.arange(40 * 60).reshape(40, 60) % 3
    out = eval_transform(crop=(10, 5, 42, 37))(image=image, mask=mask.astype(np.uint8))
    assert out["image"].shape == (3, 32, 32)
    np.testing.assert_array_equal(out["mask"], mask[5:37, 10:42])
    assert torch.equal(out["image"], eval_transform()(image=image[5:37, 10:42])["image"])


def test_rescale_bilinear_image_nearest_mask():
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    mask = np.random.default_rng(1).integers(0, 3, (40, 60)).astype(np.uint8)
    small_image, small_mask = rescale(image, mask, 0.5)
    assert small_image.shape == (20, 30, 3) and small_mask.shape == (20, 30)
    assert set(np.unique(small_mask)) <= {0, 1, 2}
    assert rescale(image, mask, 1.0)[0] is image
