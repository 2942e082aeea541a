"""The tiled engine: strip-wise resampling equals whole-image interpolation, bands stay one window high,
no host reads per window, test-time flips are deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_modules.inference import (
    WindowGrid,
    logit_strips,
    resample_strips,
    segment,
    sliding_window_logits,
)
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
