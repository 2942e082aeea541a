"""The tiled inference engine: segment images of any size, strip by strip, with a network trained on crops.

Windows overlap and their logits are blended with raised-cosine ramps that fall towards a window's
inner edges (where the network lacks context) and stay flat at the image border. In a regular grid
the ramps of two neighbours add up to exactly one (sin² + cos²), so the blend leaves no seam and a
network whose receptive field fits in the overlap gives the same logits as on the whole image. The
last window of a row or column ends at the border and overlaps more; each window's weights are
therefore divided by the 1-D sums of all profiles (the weight map is their outer product), so the
weights add to one everywhere and no weight map of the image is needed.

Windows run ``batch_size`` at a time and are blended on the device; nothing is read back to the host
until a band of rows is finished (`logit_strips`), so there is no per-window synchronisation. Only one
band of logits (a window's height by the image width) is held at a time: rows are handed on as soon
as no later window covers them, resampled to the output grid (`resample_strips`) and reduced to a
uint8 class mask and a per-pixel uncertainty (`segment_strips`). `segment` does this for an image in
memory; `experiments.apply.strips` feeds it a huge TIFF band by band.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

#: ``source(first, stop)``: rows ``first:stop`` of the normalised network input, a (3, rows, W) tensor
RowSource = Callable[[int, int], torch.Tensor]
#: rows of logits reduced to class and uncertainty at a time
REDUCE_ROWS = 64
#: flips averaged by test-time augmentation: none, left-right, up-down, both (dims of a (B, C, H, W) batch)
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))


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


def _forward(net: nn.Module, batch: torch.Tensor, tta: bool) -> torch.Tensor:
    """Logits of a batch of windows; with ``tta`` the mean over the `TTA_FLIPS`, each flipped back."""
    if not tta:
        return net(batch).float()
    total = None
    for dims in TTA_FLIPS:
        out = net(batch.flip(dims) if dims else batch).float()
        out = out.flip(dims) if dims else out
        total = out if total is None else total + out
    return total / len(TTA_FLIPS)


@torch.inference_mode()
def logit_strips(
    net: nn.Module,
    source: RowSource,
    grid: WindowGrid,
    num_classes: int,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    tta: bool = False,
    progress: bool = False,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Blended logits, top to bottom: ``(first_row, logits (num_classes, rows, width))`` on ``device``."""
    device = torch.device(device)
    col_w = [w.to(device)[None, :] for w in grid.col_weights]
    acc = torch.zeros(num_classes, 0, grid.width, device=device)
    lo = 0  # image row of acc's first row
    bar = tqdm(total=grid.count, desc="windows", unit="win", disable=not progress, leave=False)
    for i, top in enumerate(grid.rows):
        band = source(top, top + grid.win_h).to(device)
        grow = top + grid.win_h - (lo + acc.shape[1])
        if grow > 0:
            acc = torch.cat([acc, acc.new_zeros(num_classes, grow, grid.width)], dim=1)
        row_w = grid.row_weights[i].to(device)[:, None]
        for first in range(0, len(grid.cols), batch_size):
            chunk = grid.cols[first : first + batch_size]
            batch = torch.stack([band[:, :, c : c + grid.win_w] for c in chunk])
            out = _forward(net, batch, tta)
            if out.shape[1:] != (num_classes, grid.win_h, grid.win_w):
                raise RuntimeError(
                    f"network returned {tuple(out.shape[1:])} for a {grid.win_h}x{grid.win_w} window, "
                    f"expected ({num_classes}, {grid.win_h}, {grid.win_w})"
                )
            for k, left in enumerate(chunk):
                weight = row_w * col_w[first + k]
                acc[:, top - lo : top - lo + grid.win_h, left : left + grid.win_w] += out[k] * weight
            bar.update(len(chunk))
        done = grid.rows[i + 1] if i + 1 < len(grid.rows) else grid.height
        yield lo, acc[:, : done - lo]
        acc, lo = acc[:, done - lo :], done
    bar.close()


def resample_strips(
    strips: Iterator[tuple[int, torch.Tensor]], source_height: int, size: tuple[int, int]
) -> Iterator[tuple[int, torch.Tensor]]:
    """Strips of logits resampled (bilinear, as ``F.interpolate(align_corners=False)``) to ``size`` = (H, W).

    Rows are interpolated by hand from the two source rows each needs, as soon as both have arrived;
    columns by ``F.interpolate`` with the row count unchanged (an exact copy along rows).
    """
    height, width = size
    first_strip = next(strips, None)
    if first_strip is None:
        return
    if first_strip[1].shape[2] == width and source_height == height:
        yield first_strip
        yield from strips
        return
    pos = ((torch.arange(height, dtype=torch.float64) + 0.5) * (source_height / height) - 0.5).clamp(min=0)
    below = pos.floor().long()
    above = (below + 1).clamp(max=source_height - 1)
    frac = (pos - below).float()
    below_list, above_list = below.tolist(), above.tolist()
    buffer, buffer_lo, next_row = None, 0, 0
    for lo, strip in _chain(first_strip, strips):
        buffer = strip if buffer is None else torch.cat([buffer, strip], dim=1)
        end = bisect_right(above_list, lo + strip.shape[1] - 1, lo=next_row)
        if end == next_row:
            continue
        device = strip.device
        low = buffer[:, (below[next_row:end] - buffer_lo).to(device)]
        high = buffer[:, (above[next_row:end] - buffer_lo).to(device)]
        t = frac[next_row:end].to(device)[None, :, None]
        rows = low + (high - low) * t
        yield next_row, F.interpolate(rows[None], size=(end - next_row, width), mode="bilinear")[0]
        next_row = end
        if end < height:  # drop the rows no later output row needs (all of them, if it starts beyond)
            drop = min(below_list[end], lo + strip.shape[1]) - buffer_lo
            buffer, buffer_lo = buffer[:, drop:], buffer_lo + drop


def _chain(first, rest):
    yield first
    yield from rest


@dataclass
class Strip:
    """Finished rows of a segmentation: class indices and normalised softmax entropy (see `segment`)."""

    row: int
    mask: np.ndarray  # uint8 (rows, W)
    uncertainty: np.ndarray  # float32 (rows, W), 0-1


def segment_strips(
    net: nn.Module,
    source: RowSource,
    network_size: tuple[int, int],
    num_classes: int,
    size: tuple[int, int] | None = None,
    tile: int = 512,
    overlap: float = 0.25,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    tta: bool = False,
    progress: bool = False,
) -> Iterator[Strip]:
    """Segment a network input of ``network_size`` = (h, w) read band by band from ``source``.

    The logits are resampled to ``size`` = (H, W) (default: ``network_size``) before the argmax, so the
    mask matches the image pixel for pixel. Memory: one band of logits, never a map of the whole image.
    """
    grid = WindowGrid.of(*network_size, tile=tile, overlap=overlap)
    strips = logit_strips(net, source, grid, num_classes, batch_size, device, tta, progress)
    for row, logits in resample_strips(strips, network_size[0], size or network_size):
        mask = np.empty(logits.shape[1:], np.uint8)
        uncertainty = np.empty(logits.shape[1:], np.float32)
        for top in range(0, logits.shape[1], REDUCE_ROWS):  # small float temporaries on a wide strip
            rows = logits[:, top : top + REDUCE_ROWS]
            mask[top : top + REDUCE_ROWS] = rows.argmax(0).to(torch.uint8).cpu().numpy()
            uncertainty[top : top + REDUCE_ROWS] = normalised_entropy(rows, dim=0).cpu().numpy()
        yield Strip(row, mask, uncertainty)


def segment(
    net: nn.Module, image: torch.Tensor, num_classes: int, size: tuple[int, int] | None = None, **options
) -> tuple[np.ndarray, np.ndarray]:
    """``(mask uint8 (H, W), uncertainty float32 (H, W))`` of a normalised image tensor ``(3, h, w)``.

    ``size`` is the (H, W) to resample the logits to (the input's grid when the network saw it resized);
    ``options`` are those of `segment_strips` (tile, overlap, batch_size, device, tta, progress).
    """
    network_size = tuple(image.shape[1:])
    height, width = size or network_size
    mask = np.empty((height, width), np.uint8)
    uncertainty = np.empty((height, width), np.float32)
    source = lambda first, stop: image[:, first:stop]  # noqa: E731
    for strip in segment_strips(net, source, network_size, num_classes, size, **options):
        mask[strip.row : strip.row + len(strip.mask)] = strip.mask
        uncertainty[strip.row : strip.row + len(strip.mask)] = strip.uncertainty
    return mask, uncertainty


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
    """Blended logits ``(num_classes, H, W)`` (float32, on CPU) of a whole normalised image ``(3, H, W)``."""
    grid = WindowGrid.of(*image.shape[1:], tile=tile, overlap=overlap)
    source = lambda first, stop: image[:, first:stop]  # noqa: E731
    strips = logit_strips(net, source, grid, num_classes, batch_size, device, progress=progress)
    return torch.cat([logits.cpu() for _, logits in strips], dim=1)


def normalise(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """A uint8 RGB image ``(H, W, 3)`` → a ``(3, H, W)`` float tensor normalised as `eval_transform` does."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()  # the one copy
    return tensor.div_(255.0).sub_(torch.tensor(mean)[:, None, None]).div_(torch.tensor(std)[:, None, None])


def normalised_entropy(logits: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Per-pixel uncertainty in [0, 1]: the entropy of the softmax over classes (``dim``, the class axis
    of (C, H, W) or (B, C, H, W) logits) divided by its maximum, log(C). 0 = one class certain,
    1 = all classes equally likely."""
    log_p = torch.log_softmax(logits.float(), dim=dim)
    entropy = -(log_p.exp() * log_p).sum(dim=dim)
    return (entropy / math.log(logits.shape[dim])).clamp(0.0, 1.0)
