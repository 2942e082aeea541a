"""Albumentations presets: NASA's training protocol per family, and an eval preset with no random op.

All presets are ``A.Compose(..., strict=True)`` so a misspelt argument fails at construction.
Resizing by ``scale`` happens once when a split is cached (:func:`rescale`), not per sample.
"""

from __future__ import annotations

from typing import Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Preset = Literal["super", "ebc", "basic"]
#: albumentations 1.x GaussNoise default (variance 10-50 on 0-255) as albumentations 2.x std fractions
NOISE_STD = (10**0.5 / 255, 50**0.5 / 255)


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


def _photometric(preset: Preset) -> list[A.BasicTransform]:
    """NASA's example notebooks: Super gets the full set, EBC a lighter one (no CLAHE/gamma/HSV)."""
    if preset == "super":
        return [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.GaussNoise(std_range=NOISE_STD, p=0.2),
            A.OneOf([A.CLAHE(p=1.0), A.RandomBrightnessContrast(p=1.0), A.RandomGamma(p=1.0)], p=0.9),
            A.OneOf(
                [A.Sharpen(p=1.0), A.Blur(blur_limit=3, p=1.0), A.MotionBlur(blur_limit=3, p=1.0)], p=0.9
            ),
            A.OneOf([A.RandomBrightnessContrast(p=1.0), A.HueSaturationValue(p=1.0)], p=0.9),
        ]
    if preset == "ebc":
        return [
            A.HorizontalFlip(p=0.5),
            A.GaussNoise(std_range=NOISE_STD, p=0.2),
            A.RandomBrightnessContrast(p=0.9),
            A.OneOf(
                [A.Sharpen(p=1.0), A.Blur(blur_limit=3, p=1.0), A.MotionBlur(blur_limit=3, p=1.0)], p=0.9
            ),
        ]
    return [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomBrightnessContrast(p=0.5)]


def train_transform(
    preset: Preset = "basic",
    crop_size: int | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> A.Compose:
    """Training augmentation: optional random crop, then the preset's geometric + photometric ops."""
    return A.Compose([*_crop(crop_size), *_photometric(preset), *_tail(mean, std)], strict=True)


def eval_transform(
    mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> A.Compose:
    """Validation/test: the whole image at full size, only normalised (never a random op)."""
    return A.Compose(_tail(mean, std), strict=True)


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
