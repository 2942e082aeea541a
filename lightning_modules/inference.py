"""The tiled inference engine: segment images of any size, strip by strip, with a network trained on crops.

Windows go where `lightning_modules.window_grid.WindowGrid` puts them, weighted by its raised-cosine
ramps (they add up to one, so the blend leaves no seam).

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
from itertools import chain

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lightning_modules.window_grid import WindowGrid

#: ``source(first, stop)``: rows ``first:stop`` of the network input, a (3, rows, W) tensor, or of
#: pixels a ``prepare`` function turns into it window batch by window batch (`normalise_pixels`)
RowSource = Callable[[int, int], torch.Tensor]
Prepare = Callable[[torch.Tensor], torch.Tensor]
#: rows of logits reduced to class and uncertainty at a time
REDUCE_ROWS = 64
#: flips averaged by test-time augmentation: none, left-right, up-down, both (dims of a (B, C, H, W) batch)
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))


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
    prepare: Prepare | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Blended logits, top to bottom: ``(first_row, logits (num_classes, rows, width))`` on ``device``.

    The logits accumulate in one preallocated (num_classes, window height, width) buffer; a strip is a
    view of it, **valid until the next one is requested**: the buffer is then shifted in place (the
    rows later windows still add to move to the front, the rest is zeroed). A consumer that keeps a
    strip across bands must copy it. So one band of logits is alive, never one per band in flight.
    ``prepare`` turns each stacked batch of windows into network input, so a band can stay as
    compact pixels (uint8: a quarter of the float input) until its windows run.
    """
    device = torch.device(device)
    col_w = [w.to(device)[None, :] for w in grid.col_weights]
    acc = torch.zeros(num_classes, grid.win_h, grid.width, device=device)
    lo = 0  # image row of acc's first row: where the current band starts
    bar = tqdm(total=grid.count, desc="windows", unit="win", disable=not progress, leave=False)
    for i, top in enumerate(grid.rows):
        band = source(top, top + grid.win_h).to(device)
        row_w = grid.row_weights[i].to(device)[:, None]
        for first in range(0, len(grid.cols), batch_size):
            chunk = grid.cols[first : first + batch_size]
            batch = torch.stack([band[:, :, c : c + grid.win_w] for c in chunk])
            batch = prepare(batch) if prepare else batch
            out = _forward(net, batch, tta)
            if out.shape[1:] != (num_classes, grid.win_h, grid.win_w):
                raise RuntimeError(
                    f"network returned {tuple(out.shape[1:])} for a {grid.win_h}x{grid.win_w} window, "
                    f"expected ({num_classes}, {grid.win_h}, {grid.win_w})"
                )
            for k, left in enumerate(chunk):
                weight = row_w * col_w[first + k]
                acc[:, :, left : left + grid.win_w] += out[k] * weight
            bar.update(len(chunk))
        del band, batch, out  # the next band is read before this one would be replaced
        done = grid.rows[i + 1] if i + 1 < len(grid.rows) else grid.height
        yield lo, acc[:, : done - lo]
        kept = grid.win_h - (done - lo)  # rows the next windows overlap
        if kept > 0:
            acc[:, :kept] = acc[:, done - lo :].clone()  # source and target may overlap
        acc[:, kept:].zero_()
        lo = done
    bar.close()


def resample_strips(
    strips: Iterator[tuple[int, torch.Tensor]], source_height: int, size: tuple[int, int]
) -> Iterator[tuple[int, torch.Tensor]]:
    """Strips of logits resampled (bilinear, as ``F.interpolate(align_corners=False)``) to ``size`` = (H, W).

    Rows are interpolated by hand from the two source rows each needs, as soon as both have arrived;
    columns by ``F.interpolate`` with the row count unchanged (an exact copy along rows). Incoming
    strips may be reused by their producer once the next is requested (`logit_strips`), so the rows
    a later output row still needs are copied; a strip handed on is valid until the next request.
    """
    height, width = size
    strips = iter(strips)
    first = next(strips, None)
    if first is None:
        return
    if first[1].shape[2] == width and source_height == height:
        yield first
        del first  # not held while the next band is computed
        yield from strips
        return
    pos = ((torch.arange(height, dtype=torch.float64) + 0.5) * (source_height / height) - 0.5).clamp(min=0)
    below = pos.floor().long()
    above = (below + 1).clamp(max=source_height - 1)
    frac = (pos - below).float()
    below_list, above_list = below.tolist(), above.tolist()
    tail, tail_lo, next_row = first[1][:, :0], 0, 0  # rows kept from earlier strips (own copies)
    for lo, strip in chain([first], strips):
        buffer, stop = torch.cat([tail, strip], dim=1), lo + strip.shape[1]  # image rows tail_lo:stop
        end = bisect_right(above_list, stop - 1, lo=next_row)
        if end > next_row:
            rows = (below[next_row:end] - tail_lo, above[next_row:end] - tail_lo, frac[next_row:end])
            yield next_row, _interpolate_rows(buffer, *rows, width)
            next_row = end
        if end < height:  # keep the rows a later output row needs (none, if it starts beyond)
            drop = min(below_list[end], stop) - tail_lo
            tail, tail_lo = buffer[:, drop:].clone(), tail_lo + drop
        del buffer  # not held while the next band is computed


def _interpolate_rows(
    buffer: torch.Tensor, below: torch.Tensor, above: torch.Tensor, frac: torch.Tensor, width: int
) -> torch.Tensor:
    """Rows blended from ``buffer``'s rows ``below`` and ``above`` by ``frac``, then columns to ``width``."""
    device = buffer.device
    low, high = buffer[:, below.to(device)], buffer[:, above.to(device)]
    rows = low + (high - low) * frac.to(device)[None, :, None]
    return F.interpolate(rows[None], size=(rows.shape[1], width), mode="bilinear")[0]


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
    prepare: Prepare | None = None,
) -> Iterator[Strip]:
    """Segment a network input of ``network_size`` = (h, w) read band by band from ``source``.

    The logits are resampled to ``size`` = (H, W) (default: ``network_size``) before the argmax, so the
    mask matches the image pixel for pixel. Strips are `REDUCE_ROWS` high (fewer at a band's end), so
    their float maps stay small. Memory: one band of logits, never a map of the whole image.
    """
    grid = WindowGrid.of(*network_size, tile=tile, overlap=overlap)
    strips = logit_strips(net, source, grid, num_classes, batch_size, device, tta, progress, prepare)
    for row, logits in resample_strips(strips, network_size[0], size or network_size):
        for top in range(0, logits.shape[1], REDUCE_ROWS):  # small float temporaries on a wide strip
            yield _reduced(row + top, logits[:, top : top + REDUCE_ROWS])
        del logits  # not held while the next band is computed


def _reduced(row: int, logits: torch.Tensor) -> Strip:
    """The class mask and uncertainty of a few rows of logits (C, rows, W)."""
    mask = logits.argmax(0).to(torch.uint8).cpu().numpy()
    return Strip(row, mask, normalised_entropy(logits, dim=0).cpu().numpy())


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
    logits = torch.empty(num_classes, *image.shape[1:])
    for row, strip in logit_strips(net, source, grid, num_classes, batch_size, device, progress=progress):
        logits[:, row : row + strip.shape[1]] = strip  # a copy: the strip's buffer is reused
    return logits


def normalise(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """A uint8 RGB image ``(H, W, 3)`` → a ``(3, H, W)`` float tensor normalised as `eval_transform` does."""
    return normalise_pixels(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), mean, std)


def normalise_pixels(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 pixels ``(..., 3, H, W)`` → float, ``(x / 255 - mean) / std`` per channel (element by element,
    so a band normalised whole or window batch by window batch gives the same bits)."""
    tensor = pixels.float()  # the one copy
    mean_t, std_t = (torch.tensor(v, device=tensor.device)[:, None, None] for v in (mean, std))
    return tensor.div_(255.0).sub_(mean_t).div_(std_t)


def normalised_entropy(logits: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Per-pixel uncertainty in [0, 1]: the entropy of the softmax over classes (``dim``, the class axis
    of (C, H, W) or (B, C, H, W) logits) divided by its maximum, log(C). 0 = one class certain,
    1 = all classes equally likely."""
    log_p = torch.log_softmax(logits.float(), dim=dim)
    entropy = -(log_p.exp() * log_p).sum(dim=dim)
    return (entropy / math.log(logits.shape[dim])).clamp(0.0, 1.0)
