"""Mask decoders on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.io import DataError
from datamodules.masks import EBC_MERGED, EBC_WITH_CRACK, decode_colors, decode_indices, decode_super


def test_super_pure_blue_and_red_only():
    rgba = np.zeros((2, 4, 4), np.uint8)
    rgba[0] = [(0, 0, 255, 255), (255, 0, 0, 255), (0, 0, 254, 255), (128, 128, 128, 255)]
    rgba[1] = [(0, 0, 255, 0), (255, 0, 0, 10), (255, 1, 0, 255), (0, 0, 0, 0)]
    assert decode_super(rgba).tolist() == [[1, 2, 0, 0], [1, 2, 0, 0]]
    assert decode_super(rgba).dtype == np.uint8


def test_super_rejects_single_channel():
    with pytest.raises(DataError, match="overlay.tif"):
        decode_super(np.zeros((4, 4), np.uint8), "overlay.tif")


def test_ebc_merges_crack_by_default_and_keeps_it_on_request():
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    assert decode_indices(mask, EBC_MERGED).tolist() == [[0, 1, 1], [1, 1, 0]]
    assert decode_indices(mask, EBC_WITH_CRACK).tolist() == mask.tolist()


def test_index_map_with_arbitrary_values_and_grey_rgb():
    mask = np.array([[0, 255], [128, 0]], np.uint8)
    out = decode_indices(np.repeat(mask[..., None], 3, -1), {0: 0, 128: 1, 255: 2})
    assert out.tolist() == [[0, 2], [1, 0]]


def test_colors_map_to_list_position():
    colors = [(0, 0, 0), (255, 255, 0), (10, 20, 30)]
    rgb = np.array([[(0, 0, 0), (10, 20, 30)], [(255, 255, 0), (0, 0, 0)]], np.uint8)
    assert decode_colors(rgb, colors).tolist() == [[0, 2], [1, 0]]
    rgba = np.concatenate([rgb, np.full((2, 2, 1), 255, np.uint8)], -1)
    assert decode_colors(rgba, colors).tolist() == [[0, 2], [1, 0]]
