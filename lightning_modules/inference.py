"""Sliding-window inference: segment images of any size with a network trained on fixed crops.

Windows overlap and their logits are blended with raised-cosine ramps that fall towards a window's
inner edges (where the network lacks context) and stay flat at the image border. In a regular grid
the ramps of two neighbours add up to exactly one (sin² + cos²), so the blend leaves no seam and a
network whose receptive field fits in the overlap gives the same logits as on the whole image.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm


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
    """One weight profile per window start along one axis."""
    return [_ramp_profile(window, ramp, s > 0, s + window < length) for s in starts]


@torch.inference_mode()
def sliding_window_logits(
    net: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    tile: int = 512,
    overlap: float = 0.25,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """Logits ``(num_classes, H, W)`` (float32, on CPU) for a normalised image ``(3, H, W)``.

    ``tile`` is the window side (clipped to the image), ``overlap`` the fraction of a window shared
    with its neighbour; windows are run ``batch_size`` at a time on ``device``.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if tile < 16:
        raise ValueError(f"tile must be at least 16 px, got {tile}")
    _, height, width = image.shape
    win_h, win_w = min(tile, height), min(tile, width)
    ramp_h, ramp_w = round(win_h * overlap), round(win_w * overlap)
    rows = window_starts(height, win_h, max(1, win_h - ramp_h))
    cols = window_starts(width, win_w, max(1, win_w - ramp_w))
    row_w = blend_weights(rows, height, win_h, ramp_h)
    col_w = blend_weights(cols, width, win_w, ramp_w)
    windows = [(i, j) for i in range(len(rows)) for j in range(len(cols))]

    logits = torch.zeros(num_classes, height, width)
    weight = torch.zeros(1, height, width)
    bar = tqdm(total=len(windows), desc="windows", unit="win", disable=not progress, leave=False)
    for first in range(0, len(windows), batch_size):
        chunk = windows[first : first + batch_size]
        batch = torch.stack(
            [image[:, rows[i] : rows[i] + win_h, cols[j] : cols[j] + win_w] for i, j in chunk]
        )
        out = net(batch.to(device)).float().cpu()
        if out.shape[1:] != (num_classes, win_h, win_w):
            raise RuntimeError(
                f"network returned {tuple(out.shape[1:])} for a {win_h}x{win_w} window, "
                f"expected ({num_classes}, {win_h}, {win_w})"
            )
        for (i, j), window_logits in zip(chunk, out, strict=True):
            w = (row_w[i][:, None] * col_w[j][None, :])[None]
            logits[:, rows[i] : rows[i] + win_h, cols[j] : cols[j] + win_w] += window_logits * w
            weight[:, rows[i] : rows[i] + win_h, cols[j] : cols[j] + win_w] += w
        bar.update(len(chunk))
    bar.close()
    return logits / weight


def normalise(image, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """An RGB float image ``(H, W, 3)`` in 0-1 (numpy) → a normalised ``(3, H, W)`` tensor."""
    tensor = torch.as_tensor(image, dtype=torch.float32).permute(2, 0, 1)
    return (tensor - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def normalised_entropy(logits: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Per-pixel uncertainty in [0, 1]: the entropy of the softmax over classes (``dim``, the class axis
    of (C, H, W) or (B, C, H, W) logits) divided by its maximum, log(C). 0 = one class certain,
    1 = all classes equally likely."""
    log_p = torch.log_softmax(logits.float(), dim=dim)
    entropy = -(log_p.exp() * log_p).sum(dim=dim)
    return (entropy / math.log(logits.shape[dim])).clamp(0.0, 1.0)
