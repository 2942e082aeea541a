"""The intensity rules on cases with a known answer: 8-bit untouched, 12-bit in 16-bit words, floats, NaN."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from datamodules.intensity import INTENSITY_RULES, to_uint8
from datamodules.io import DataError, read_image

TWELVE_BIT = np.tile(np.arange(4096, dtype=np.uint16), (4, 1))


@pytest.mark.parametrize("rule", INTENSITY_RULES)
def test_eight_bit_images_are_never_changed(rule):
    image = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    assert np.array_equal(to_uint8(image, rule), image)


@pytest.mark.parametrize(("rule", "top"), [("percentile", 255), ("bit_depth", 255), ("full", 16)])
def test_twelve_bit_data_in_a_sixteen_bit_word(rule, top):
    out = to_uint8(TWELVE_BIT, rule)
    assert out.dtype == np.uint8 and out.min() == 0 and int(out.max()) == top


def test_percentile_clips_hot_pixels_and_bit_depth_does_not():
    image = np.full((100, 100), 1000, np.uint16)
    image[:, 50:] = 3000
    image[0, 0] = 65535  # one hot pixel
    stretched = to_uint8(image, "percentile")
    assert stretched[50, 10] == 0 and stretched[50, 90] == 255  # the two phases span the range
    assert to_uint8(image, "bit_depth")[50, 90] == round(3000 * 255 / 65535)  # the hot pixel sets 16 bits


def test_a_few_particles_on_a_flat_background_are_not_erased():
    """0.5th and 99.5th percentile are equal here; min-max takes over instead of a black image."""
    image = np.zeros((100, 100), np.uint16)
    image[10:13, 10:13] = 2000  # 9 of 10,000 pixels
    out = to_uint8(image, "percentile")
    assert out[11, 11] == 255 and out[50, 50] == 0


def test_floats_by_rule():
    image = np.linspace(-1.0, 7.0, 64, dtype=np.float32).reshape(8, 8)
    assert to_uint8(image, "bit_depth").max() == 255 and to_uint8(image, "bit_depth")[0, 0] == 0
    assert to_uint8(np.full((4, 4), 0.5, np.float32), "full")[0, 0] == 128  # 0-1 as stored


def test_nan_pixels_are_warned_about_and_read_as_the_darkest_value(tmp_path):
    """Corpus case: a float TIFF with NaNs made a NaN percentile and an all-black (all-matrix) input."""
    image = np.ones((40, 40), np.float32) * 0.2
    image[10:30, 10:30] = 0.9
    image[:, :3] = np.nan  # the undefined border of a registered image
    path = tmp_path / "registered.tif"
    tifffile.imwrite(path, image)
    with pytest.warns(UserWarning, match=r"registered\.tif: 120 pixel\(s\) \(7\.5 %\) are NaN"):
        out = read_image(path)
    assert out[20, 20, 0] == 255 and out[35, 35, 0] == 0 and out[5, 1, 0] == 0


def test_an_image_of_only_nan_is_an_error(tmp_path):
    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, np.full((8, 8), np.nan, np.float32))
    with pytest.raises(DataError, match=r"empty\.tif: every pixel is NaN"):
        read_image(path)


def test_unknown_rule_lists_the_rules():
    with pytest.raises(ValueError, match="percentile, bit_depth, full"):
        to_uint8(TWELVE_BIT, "auto")
