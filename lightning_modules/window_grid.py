"""Where the windows of the tiled engine (`lightning_modules.inference`) go and how they are blended.

Windows overlap and their logits are blended with raised-cosine ramps that fall towards a window's
inner edges (where the network lacks context) and stay flat at the image border. In a regular grid
the ramps of two neighbours add up to exactly one (sin² + cos²), so the blend leaves no seam and a
network whose receptive field fits in the overlap gives the same logits as on the whole image. The
last window of a row or column ends at the border and overlaps more; each window's weights are
therefore divided by the 1-D sums of all profiles (the weight map is their outer product), so the
weights add to one everywhere and no weight map of the image is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows covering ``length``; the last window ends exactly at the border."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    return [*starts, length - window]


def _ramp_profile(window: int, ramp: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D weights: 1 in the middle, a raised-cosine ramp (never exactly 0) on the inner sides."""
    profile = torch.ones(window)
    ramp = min(ramp, window // 2)
    if ramp > 0:
        rise = torch.sin(0.5 * math.pi * (torch.arange(ramp) + 0.5) / ramp) ** 2
        if ramp_start:
            profile[:ramp] = rise
        if ramp_end:
            profile[-ramp:] = rise.flip(0)
    return profile


def blend_weights(starts: list[int], length: int, window: int, ramp: int) -> list[torch.Tensor]:
    """One weight profile per window start along one axis, divided by the sum of all profiles there."""
    profiles = [_ramp_profile(window, ramp, s > 0, s + window < length) for s in starts]
    total = torch.zeros(max(length, window))
    for start, profile in zip(starts, profiles, strict=True):
        total[start : start + window] += profile
    return [profile / total[start : start + window] for start, profile in zip(starts, profiles, strict=True)]


@dataclass(frozen=True)
class WindowGrid:
    """Where the windows of a (height, width) image go, and how much each contributes to each pixel."""

    height: int
    width: int
    win_h: int
    win_w: int
    rows: list[int]
    cols: list[int]
    row_weights: list[torch.Tensor]
    col_weights: list[torch.Tensor]

    @classmethod
    def of(cls, height: int, width: int, tile: int = 512, overlap: float = 0.25) -> WindowGrid:
        """``tile`` is the window side (clipped to the image), ``overlap`` the fraction shared by neighbours."""
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if tile < 16:
            raise ValueError(f"tile must be at least 16 px, got {tile}")
        win_h, win_w = min(tile, height), min(tile, width)
        ramp_h, ramp_w = round(win_h * overlap), round(win_w * overlap)
        rows = window_starts(height, win_h, max(1, win_h - ramp_h))
        cols = window_starts(width, win_w, max(1, win_w - ramp_w))
        row_w = blend_weights(rows, height, win_h, ramp_h)
        col_w = blend_weights(cols, width, win_w, ramp_w)
        return cls(height, width, win_h, win_w, rows, cols, row_w, col_w)

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)
