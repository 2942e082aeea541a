"""Albumentations presets: NASA's two training pipelines, our own, and an eval preset with no random op.

* ``nasa_super`` / ``nasa_ebc``: NASA's example notebooks exactly (``nasa/pretrained-microscopy-models``,
  ``examples/multiclass_segmentation_example.ipynb`` for Super, ``binary_segmentation_example.ipynb``
  for EBC), written for the albumentations 1.1.0 of their ``requirements_frozen.txt`` and translated
  here to albumentations 2 with the same operations, probabilities and parameters (each translation is
  commented). Two samplers differ between the versions: GaussNoise draws its σ uniformly (1.1.0: the
  variance, over the same range) and RandomGamma a real gamma (1.1.0: a whole percentage).
  A NASA data module's ``augment: nasa`` picks its material's pipeline.
* ours: ``strong``, flips and 90° rotations plus heavy photometric changes, each group with p=0.9 (the
  probabilities of smp's CamVid example); ``upright``, horizontal flips only (for cross-sections whose
  up/down matters) with noise, brightness/contrast and sharpen/blur; ``basic``, flips and
  brightness/contrast. ``strong`` and ``upright`` were called ``super`` and ``ebc``, and said to be
  NASA's, which they never were; the old names still work, with a warning.

All presets are ``A.Compose(..., strict=True)`` so a misspelt argument fails at construction.
Resizing by ``scale`` happens once when a split is cached (:func:`rescale`), not per sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Preset = Literal["nasa_super", "nasa_ebc", "strong", "upright", "basic", "super", "ebc"]
#: the presets' former names (neither was NASA's pipeline, whatever the old docstring said)
RENAMED = {"super": "strong", "ebc": "upright"}
#: albumentations 1.x GaussNoise default (variance 10-50 on 0-255) as albumentations 2.x std fractions
NOISE_STD = (10**0.5 / 255, 50**0.5 / 255)
Box = tuple[int, int, int, int]


def _tail(mean: tuple[float, ...], std: tuple[float, ...]) -> list[A.BasicTransform]:
    return [A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()]


def _crop(crop_size: int | None) -> list[A.BasicTransform]:
    """A random square crop, reflect-padded first when the image is smaller than the crop."""
    if crop_size is None:
        return []
    return [
        A.PadIfNeeded(min_height=crop_size, min_width=crop_size, border_mode=cv2.BORDER_REFLECT_101),
        A.RandomCrop(height=crop_size, width=crop_size),
    ]


def _flip(p: float) -> A.OneOf:
    """albumentations 1.1.0 ``Flip(p)``: horizontal, vertical or both, each a third of the time."""
    both = A.Sequential([A.HorizontalFlip(p=1), A.VerticalFlip(p=1)], p=1)
    return A.OneOf([A.HorizontalFlip(p=1), A.VerticalFlip(p=1), both], p=p)


def _nasa_super(crop: list[A.BasicTransform]) -> list[A.BasicTransform]:
    """NASA's Super pipeline (multiclass notebook, ``get_training_augmentation``); NASA does not crop."""
    return [
        *crop,
        _flip(p=0.75),
        A.RandomRotate90(p=1),
        A.GaussNoise(std_range=NOISE_STD, p=0.5),  # albu.GaussNoise(p=0.5): var_limit (10, 50)
        A.OneOf(
            [
                A.CLAHE(p=1),
                A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0, p=1),  # RandomBrightness
                A.RandomGamma(p=1),
            ],
            p=0.5,
        ),
        A.OneOf([A.Sharpen(p=1), A.Blur(blur_limit=3, p=1)], p=0.5),  # MotionBlur commented out there
        A.OneOf(
            [
                A.RandomBrightnessContrast(brightness_limit=0, contrast_limit=0.3, p=1),  # RandomContrast
                A.HueSaturationValue(p=1),
            ],
            p=0.5,
        ),
    ]


def _nasa_ebc(crop: list[A.BasicTransform]) -> list[A.BasicTransform]:
    """NASA's EBC pipeline (binary notebook, ``get_training_augmentation(prob=0.3, power=1)``).

    NASA crops 512² right after the flip; here the crop is the data module's ``crop_size`` (512 unless
    ``scale`` asks for a smaller one), at the same place.
    """
    return [
        A.HorizontalFlip(p=0.5),  # "only horizontal to preserve orientation"
        *crop,
        A.GaussNoise(std_range=NOISE_STD, p=0.5),
        A.RandomBrightnessContrast(p=0.3),
        A.OneOf([A.Sharpen(alpha=(0.2, 0.5), p=1), A.Blur(blur_limit=3, p=1)], p=0.3),
    ]


def _sharpen_or_blur(p: float) -> A.OneOf:
    return A.OneOf([A.Sharpen(p=1.0), A.Blur(blur_limit=3, p=1.0), A.MotionBlur(blur_limit=3, p=1.0)], p=p)


def _strong(crop: list[A.BasicTransform]) -> list[A.BasicTransform]:
    return [
        *crop,
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.GaussNoise(std_range=NOISE_STD, p=0.2),
        A.OneOf([A.CLAHE(p=1.0), A.RandomBrightnessContrast(p=1.0), A.RandomGamma(p=1.0)], p=0.9),
        _sharpen_or_blur(p=0.9),
        A.OneOf([A.RandomBrightnessContrast(p=1.0), A.HueSaturationValue(p=1.0)], p=0.9),
    ]


def _upright(crop: list[A.BasicTransform]) -> list[A.BasicTransform]:
    return [
        *crop,
        A.HorizontalFlip(p=0.5),
        A.GaussNoise(std_range=NOISE_STD, p=0.2),
        A.RandomBrightnessContrast(p=0.9),
        _sharpen_or_blur(p=0.9),
    ]


def _basic(crop: list[A.BasicTransform]) -> list[A.BasicTransform]:
    return [*crop, A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomBrightnessContrast(p=0.5)]


#: preset name -> its transforms around the random crop
PRESETS: dict[str, Callable[[list[A.BasicTransform]], list[A.BasicTransform]]] = {
    "nasa_super": _nasa_super,
    "nasa_ebc": _nasa_ebc,
    "strong": _strong,
    "upright": _upright,
    "basic": _basic,
}


def resolve_preset(preset: str) -> str:
    """A preset's current name; a former name warns once with the new one, an unknown one raises."""
    if preset in RENAMED:
        warnings.warn(
            f"augment: {preset!r} is now called {RENAMED[preset]!r} (it never was NASA's pipeline; "
            "NASA's are 'nasa_super' / 'nasa_ebc', or 'nasa' on a NASA data set)",
            FutureWarning,
            stacklevel=3,
        )
        return RENAMED[preset]
    if preset not in PRESETS:
        raise ValueError(f"unknown augment preset {preset!r}; use one of {', '.join(PRESETS)}")
    return preset


def train_transform(
    preset: Preset = "basic",
    crop_size: int | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> A.Compose:
    """Training augmentation: the preset's geometric + photometric ops around an optional random crop."""
    ops = PRESETS[resolve_preset(preset)](_crop(crop_size))
    return A.Compose([*ops, *_tail(mean, std)], strict=True)


def eval_transform(
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    crop: Box | None = None,
) -> A.Compose:
    """Validation/test: the whole image (or the fixed ``crop`` box x_min, y_min, x_max, y_max), normalised.

    Never a random op.
    """
    ops = [A.Crop(*crop)] if crop is not None else []
    return A.Compose([*ops, *_tail(mean, std)], strict=True)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(height, width)`` times ``scale``, rounded, at least one pixel."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An image resized to ``(height, width)``: area averaging to shrink, bilinear to enlarge.

    Training (`rescale`) and `predict` both resize with this, so a model sees the same pixels in both.
    """
    if image.shape[:2] == tuple(size):
        return image
    interp = cv2.INTER_AREA if size[0] * size[1] < image.shape[0] * image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (size[1], size[0]), interpolation=interp)


def rescale(image: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image (`resize_image`) and its mask (nearest) by ``scale``; identity at 1."""
    if scale == 1.0:
        return image, mask
    height, width = scaled_size(*mask.shape[:2], scale)
    return resize_image(image, (height, width)), cv2.resize(
        mask, (width, height), interpolation=cv2.INTER_NEAREST
    )
