"""The tiled engine: strip-wise resampling equals whole-image interpolation, bands stay one window high
in one reused buffer, no band outlives the next, no host reads per window, test-time flips are
deterministic."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_modules.inference import (
    REDUCE_ROWS,
    logit_strips,
    normalise,
    normalise_pixels,
    resample_strips,
    segment,
    segment_strips,
    sliding_window_logits,
)
from lightning_modules.window_grid import WindowGrid
from tests.experiments.apply.test_predict import WideContextNet
from tests.host_syncs import HostSyncCounter


def _source(image: torch.Tensor):
    return lambda first, stop: image[:, first:stop]


@pytest.mark.parametrize("size", [(300, 460), (97, 101), (151, 229), (40, 500)])
def test_strip_resampling_equals_whole_image_interpolation(size):
    torch.manual_seed(0)
    net = WideContextNet().eval()
    image = torch.randn(3, 150, 230)
    whole = sliding_window_logits(net, image, 3, tile=64, overlap=0.5)
    expected = F.interpolate(whole[None], size=size, mode="bilinear", align_corners=False)[0]
    strips = logit_strips(net, _source(image), WindowGrid.of(150, 230, 64, 0.5), 3)
    pieces = list(resample_strips(strips, 150, size))
    assert [row for row, _ in pieces] == sorted({row for row, _ in pieces})  # in order, none twice
    got = torch.cat([strip for _, strip in pieces], dim=1)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-5


def test_bands_are_at_most_one_window_high():
    """Memory holds one band of logits: every strip handed on is at most a window high."""
    image = torch.randn(3, 700, 90)
    grid = WindowGrid.of(700, 90, tile=64, overlap=0.25)
    strips = list(logit_strips(WideContextNet().eval(), _source(image), grid, 3, batch_size=2))
    assert len(strips) == len(grid.rows) > 10
    assert max(strip.shape[1] for _, strip in strips) <= grid.win_h
    assert sum(strip.shape[1] for _, strip in strips) == 700


def _blend_window_by_window(net, image: torch.Tensor, grid: WindowGrid) -> torch.Tensor:
    """The straightforward blend: each window alone, weighted into a map of the whole image."""
    logits = torch.zeros(3, grid.height, grid.width)
    with torch.inference_mode():
        for top, row_w in zip(grid.rows, grid.row_weights, strict=True):
            for left, col_w in zip(grid.cols, grid.col_weights, strict=True):
                window = image[None, :, top : top + grid.win_h, left : left + grid.win_w]
                weight = row_w[:, None] * col_w[None, :]
                logits[:, top : top + grid.win_h, left : left + grid.win_w] += net(window)[0] * weight
    return logits


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.6])
def test_the_reused_band_buffer_gives_the_whole_image_blend(overlap):
    """Strips copied as they come (valid until the next is requested) add up to the plain blend."""
    net = WideContextNet().eval()
    image = torch.randn(3, 230, 150)
    grid = WindowGrid.of(230, 150, tile=64, overlap=overlap)
    strips = [(row, strip.clone()) for row, strip in logit_strips(net, _source(image), grid, 3, batch_size=3)]
    assert [row for row, _ in strips] == grid.rows
    got = torch.cat([strip for _, strip in strips], dim=1)
    assert (got - _blend_window_by_window(net, image, grid)).abs().max() < 1e-5
    assert torch.equal(sliding_window_logits(net, image, 3, tile=64, overlap=overlap, batch_size=3), got)


def test_one_band_buffer_and_no_band_outlives_the_next():
    """Memory: every strip is a view of the same buffer, and a band is gone before the next is read."""
    image = torch.randn(3, 300, 120)
    grid = WindowGrid.of(300, 120, tile=64, overlap=0.25)
    bands: list[weakref.ref] = []

    def source(first: int, stop: int) -> torch.Tensor:
        assert all(band() is None for band in bands), "the previous band is still alive"
        band = image[:, first:stop].clone()
        bands.append(weakref.ref(band))
        return band

    storages = {
        strip.untyped_storage().data_ptr()
        for _, strip in logit_strips(WideContextNet().eval(), source, grid, 3)
    }
    assert len(bands) == len(grid.rows) > 4 and len(storages) == 1


def test_segment_strips_are_a_few_rows_high():
    """The float uncertainty handed on is `REDUCE_ROWS` high, not a band (a band x the width each)."""
    strips = list(
        segment_strips(WideContextNet().eval(), _source(torch.randn(3, 200, 90)), (200, 90), 3, tile=96)
    )
    assert max(len(s.mask) for s in strips) <= REDUCE_ROWS
    assert [s.row for s in strips] == list(np.cumsum([0] + [len(s.mask) for s in strips[:-1]]))
    assert sum(len(s.mask) for s in strips) == 200


def test_window_batches_normalised_as_the_whole_image():
    """uint8 bands normalised per window batch (`prepare`) give the bits of a normalised image."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (130, 170, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    net = WideContextNet().eval()
    expected = segment(net, normalise(pixels, mean, std), 3, tile=64, overlap=0.25)
    source = _source(torch.from_numpy(pixels).permute(2, 0, 1))
    prepare = lambda batch: normalise_pixels(batch, mean, std)  # noqa: E731
    strips = list(segment_strips(net, source, (130, 170), 3, tile=64, overlap=0.25, prepare=prepare))
    assert np.array_equal(np.concatenate([s.mask for s in strips]), expected[0])
    assert np.array_equal(np.concatenate([s.uncertainty for s in strips]), expected[1])


def test_no_host_reads_per_window():
    image = torch.randn(3, 200, 260)
    with HostSyncCounter() as syncs:
        segment(WideContextNet().eval(), image, 3, (300, 390), tile=64, batch_size=3)
    assert not syncs.origins, syncs.origins


def test_segment_mask_is_the_argmax_of_blended_logits():
    net = WideContextNet().eval()
    image = torch.randn(3, 120, 140)
    mask, uncertainty = segment(net, image, 3, tile=64, overlap=0.25)
    logits = sliding_window_logits(net, image, 3, tile=64, overlap=0.25)
    assert mask.dtype == np.uint8 and (mask == logits.argmax(0).numpy()).all()
    assert uncertainty.dtype == np.float32 and uncertainty.min() >= 0 and uncertainty.max() <= 1


def test_tta_is_deterministic_and_averages_flips():
    torch.manual_seed(1)
    net = WideContextNet().eval()
    image = torch.randn(3, 90, 110)
    first = segment(net, image, 3, tile=64, tta=True)
    second = segment(net, image, 3, tile=64, tta=True)
    assert all((a == b).all() for a, b in zip(first, second, strict=True))
    plain = segment(net, image, 3, tile=64)
    assert not np.allclose(first[1], plain[1])  # a random net is not flip-equivariant: the flips count


def test_window_grid_errors():
    with pytest.raises(ValueError, match="overlap"):
        WindowGrid.of(100, 100, 64, 1.0)
    with pytest.raises(ValueError, match="tile"):
        WindowGrid.of(100, 100, 8, 0.25)
