"""Huge micrographs in bounded memory: read a TIFF band by band, write masks and maps as tiled BigTIFFs.

A stitched SEM mosaic of 16k x 16k px is 768 MB as uint8 RGB and 3 GB as the float tensor a network
sees, so it is never decoded whole. `TiffRows` reads any band of rows of the first page: memory-mapped
when the pixels are stored uncompressed in one block (`tifffile.memmap`; pages already read are
released from the resident set, ``madvise(MADV_DONTNEED)``), else by decoding only the
tiles or strips the band touches (tifffile's zarr view of the page, for tiled, striped and compressed
TIFF/BigTIFF/OME-TIFF). The intensity rule's bounds come from a regular sample of about
`SAMPLE_PIXELS` pixels (exact for ``bit_depth``/``full`` and 8-bit data; the percentiles of the
sample for ``percentile``). `resampled_source` brings the bands to the training resolution on the fly.
`tiles` regroups finished rows into the tiles `tifffile.imwrite` writes,
so a float map goes to disk without ever being whole in memory. `thumbnail_step` picks the stride of
the downsampled overlay and uncertainty pictures.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F

from datamodules.intensity import intensity_bounds, to_uint8
from datamodules.io import DataError
from datamodules.pixel_size import Calibration, read_calibration
from lightning_modules.inference import RowSource

#: TIFF inputs above this many pixels (4096 x 4096) are read and segmented in strips
STRIP_PIXELS = 4096 * 4096
#: masks above this many pixels (8192 x 8192) are written as tiled BigTIFF and measured by area only
HUGE_PIXELS = 8192 * 8192
#: longest side of the overlay and uncertainty pictures of an image read in strips
THUMBNAIL_SIDE = 4096
#: pixels sampled for the intensity rule's bounds
SAMPLE_PIXELS = 1 << 22
#: side of the tiles of the TIFFs written here
TIFF_TILE = 256


def tiff_shape(path: Path) -> tuple[int, int] | None:
    """(height, width) of a TIFF's first page read from its header, or None for other files."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return int(page.imagelength), int(page.imagewidth)
    except (OSError, ValueError, tifffile.TiffFileError):
        return None  # the ordinary reader reports what is wrong with the file


def read_in_strips(path: Path) -> bool:
    """Whether ``path`` is a TIFF too large to decode whole (`STRIP_PIXELS`)."""
    shape = tiff_shape(path)
    return shape is not None and shape[0] * shape[1] > STRIP_PIXELS


class TiffRows:
    """Bands of rows of a TIFF's first page as uint8 RGB, by the intensity rule of the whole image."""

    def __init__(self, path: Path, intensity: str) -> None:
        self.path = path
        self._tif = tifffile.TiffFile(path)
        page = self._tif.pages.first
        self.calibration: Calibration | None = read_calibration(self._tif)
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        self.planar = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and page.samplesperpixel > 1
        if len(page.shape) != (2 if page.samplesperpixel == 1 else 3) or page.samplesperpixel > 4:
            self.close()
            raise DataError(
                f"{path}: unsupported image layout {page.shape} (expected grey, RGB or RGBA); "
                "export a single 2-D image (one channel or three)"
            )
        if page.is_contiguous:
            self._pixels = tifffile.memmap(path, page=0, mode="r")
        else:
            self._pixels = _zarr_view(page, path)
        self.intensity = intensity
        self.bounds = None if page.dtype == np.uint8 else intensity_bounds(self._sample(), intensity, path)

    def _raw(self, first: int, stop: int, step: int = 1) -> np.ndarray:
        """Rows ``first:stop:step`` as (rows, W, channels) in the file's type (a copy)."""
        if self.planar:
            band = np.moveaxis(np.array(self._pixels[:, first:stop:step]), 0, -1)
        else:
            band = np.array(self._pixels[first:stop:step])
        if isinstance(self._pixels, np.memmap):
            # the pages just read stay in the page cache but leave this process's resident set
            self._pixels._mmap.madvise(mmap.MADV_DONTNEED)
        return band[..., None] if band.ndim == 2 else band

    def _sample(self) -> np.ndarray:
        """About `SAMPLE_PIXELS` pixels on a regular grid, read band by band (alpha dropped)."""
        step = max(1, math.ceil(math.sqrt(self.height * self.width / SAMPLE_PIXELS)))
        band = step * max(1, 1024 // step)
        parts = [
            self._raw(top, min(top + band, self.height), step)[:, ::step]
            for top in range(0, self.height, band)
        ]
        sample = np.concatenate(parts)
        return sample[..., :1] if sample.shape[-1] in (1, 2) else sample[..., :3]

    def rows(self, first: int, stop: int, step: int = 1) -> np.ndarray:
        """Rows ``first:stop:step`` as uint8 (rows, W, 3)."""
        band = self._raw(first, stop, step)
        band = band[..., :1] if band.shape[-1] in (1, 2) else band[..., :3]
        if self.bounds is not None:
            low, high = self.bounds
            band = np.nan_to_num(band.astype(np.float32), nan=low, posinf=high, neginf=low)
        band = to_uint8(band, self.intensity, self.path, self.bounds)
        return np.repeat(band, 3, axis=-1) if band.shape[-1] == 1 else band

    def thumbnail(self, step: int) -> np.ndarray:
        """Every ``step``-th row and column as uint8 RGB, read band by band."""
        band = step * max(1, 1024 // step)
        parts = [
            self.rows(top, min(top + band, self.height), step)[:, ::step]
            for top in range(0, self.height, band)
        ]
        return np.concatenate(parts)

    def close(self) -> None:
        self._tif.close()

    def __enter__(self) -> TiffRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _zarr_view(page: tifffile.TiffPage, path: Path):
    """An array view of a tiled/striped/compressed page that decodes only the segments a slice touches."""
    try:
        import zarr
    except ImportError as err:
        raise DataError(
            f"{path}: a compressed or tiled TIFF this large is read in strips, which needs zarr; "
            "pip install 'zarr>=3' (Python 3.11+), or save the image uncompressed"
        ) from err
    return zarr.open_array(page.aszarr(), mode="r")


def resampled_source(read: RowSource, height: int, width: int, size: tuple[int, int]) -> RowSource:
    """``read`` (rows of a (height, width) image) resampled to ``size`` = (h, w) band by band.

    Per axis, box means when shrinking (the bins of adaptive average pooling) and bilinear
    interpolation when enlarging: what `resize_image` does (area / bilinear), though not bit for bit,
    since OpenCV weighs fractional pixels at the bin edges and rounds to 8 bits.
    """
    out_h, out_w = size

    def columns(rows: torch.Tensor) -> torch.Tensor:
        if out_w == width:
            return rows
        if out_w < width:
            return F.adaptive_avg_pool2d(rows[None], (rows.shape[1], out_w))[0]
        return F.interpolate(rows[None], size=(rows.shape[1], out_w), mode="bilinear")[0]

    def source(first: int, stop: int) -> torch.Tensor:
        index = np.arange(first, stop)
        if out_h == height:
            return columns(read(first, stop))
        if out_h < height:
            starts, ends = index * height // out_h, -(-(index + 1) * height // out_h)
            band = read(int(starts[0]), int(ends[-1]))
            sums = F.pad(band.cumsum(dim=1), (0, 0, 1, 0))
            lo = int(starts[0])
            means = (sums[:, ends - lo] - sums[:, starts - lo]) / torch.from_numpy(ends - starts)[
                None, :, None
            ]
            return columns(means)
        pos = np.maximum((index + 0.5) * (height / out_h) - 0.5, 0)
        below = np.floor(pos).astype(np.int64)
        above = np.minimum(below + 1, height - 1)
        band = read(int(below[0]), int(above[-1]) + 1)
        frac = torch.from_numpy(pos - below).float()[None, :, None]
        low, high = band[:, below - below[0]], band[:, above - below[0]]
        return columns(low + (high - low) * frac)

    return source


def thumbnail_step(height: int, width: int) -> int:
    """The stride that brings the longest side to at most `THUMBNAIL_SIDE` pixels."""
    return max(1, math.ceil(max(height, width) / THUMBNAIL_SIDE))


def tiles(rows: Iterator[np.ndarray], width: int, tile: int = TIFF_TILE) -> Iterator[np.ndarray]:
    """Bands of rows of any heights, regrouped into (tile, tile) tiles in row-major order (edges zero-padded)."""
    pending: list[np.ndarray] = []
    held = 0
    for band in rows:
        pending.append(band)
        held += len(band)
        while held >= tile:
            block = np.concatenate(pending)
            yield from _split(block[:tile], width, tile)
            pending, held = [block[tile:]], held - tile
    if held:
        yield from _split(np.concatenate(pending), width, tile)


def _split(block: np.ndarray, width: int, tile: int) -> Iterator[np.ndarray]:
    for left in range(0, width, tile):
        part = block[:, left : left + tile]
        if part.shape != (tile, tile):
            padded = np.zeros((tile, tile), block.dtype)
            padded[: part.shape[0], : part.shape[1]] = part
            part = padded
        yield part


def write_tiled(path: Path, data: np.ndarray | Iterator[np.ndarray], shape: tuple[int, int], dtype) -> None:
    """A tiled, zlib-compressed BigTIFF of ``shape``: from an array, or from `tiles` of its rows."""
    if isinstance(data, np.ndarray):
        data = tiles(iter(np.array_split(data, max(1, len(data) // 1024))), shape[1])
    tifffile.imwrite(
        path,
        data,
        shape=shape,
        dtype=dtype,
        tile=(TIFF_TILE, TIFF_TILE),
        bigtiff=True,
        compression="zlib",
        compressionargs={"level": 1},
        photometric="minisblack",
    )
