"""Layer thickness normal to the layer, on bands whose thickness is known: tilted, curved, broken, holed."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.apply.layers import axis_extent, layer_profile
from experiments.apply.measurements import PixelSize, measure_mask
from experiments.bench import shapes


@pytest.mark.parametrize("thickness", [8, 12, 24])
def test_tilted_bands_within_three_percent_of_the_normal_thickness(thickness):
    """Against the thickness the digitised mask really has (area / centreline length; it differs from the
    nominal one by the pixel grid, up to 6 % for thin bands at 45°, see docs/measurements.md)."""
    for angle in (0, 15, 30, 45, 60, 75):
        for offset in (0.0, 0.37):
            shape = (160, 220) if angle < 50 else (220, 160)
            band = shapes.tilted_band(shape, thickness, angle, offset)
            measured = layer_profile(band).thickness
            truth = shapes.band_digitised_thickness(band, angle, offset)
            assert measured.mean() == pytest.approx(truth, rel=0.03), (angle, offset)
            assert abs(truth / thickness - 1) < 0.07
            assert np.median(measured) == pytest.approx(thickness, rel=0.08)


def test_the_issue_case_a_30_px_band_tilted_30_degrees():
    band = shapes.tilted_band((300, 400), 30, 30)
    summary = measure_mask(band.astype(np.int64), ["substrate", "oxide"], ["matrix", "layer"])["summary"]
    layer = summary["layers"]["oxide"]
    assert layer["thickness_px"]["mean"] == pytest.approx(30, rel=0.02)
    assert layer["thickness_px"]["median"] == pytest.approx(30, rel=0.02)
    # the vertical extent is kept, by its own name: 30 / cos 30° = 34.6
    assert layer["axis_extent_px"]["mean"] == pytest.approx(30 / np.cos(np.pi / 6), rel=0.01)
    assert layer["extent_along"] == "columns" and layer["coverage"] == 1.0


@pytest.mark.parametrize(("inner", "thickness"), [(40, 10), (90, 25)])
def test_curved_bands_within_five_percent(inner, thickness):
    crossing = shapes.annular_arc((240, 320), inner, thickness, (260, 150))  # leaves the image at two edges
    ending = shapes.annular_arc((240, 320), inner, thickness, (120, 160))
    ending[120:] = False  # a half ring ending inside the image: no two sides, measured on its skeleton
    for arc in (crossing, ending):
        profile = layer_profile(arc)
        assert profile.thickness.size > 20
        assert profile.thickness.mean() == pytest.approx(thickness, rel=0.05)


def test_holes_are_filled_and_the_layer_may_leave_the_image():
    band = shapes.tilted_band((120, 200), 20, 10)
    holed = band & ~shapes.tilted_band((120, 200), 6, 10)
    holed[:, :40] = band[:, :40]  # a long pore inside the oxide, not an interface
    holed[:, 160:] = band[:, 160:]
    assert layer_profile(holed).thickness.mean() == pytest.approx(
        layer_profile(band).thickness.mean(), rel=0.01
    )
    leaving = shapes.tilted_band((120, 200), 20, 40)  # leaves through the top and bottom edges
    profile = layer_profile(leaving)
    assert profile.thickness.size > 40 and profile.thickness.mean() == pytest.approx(20, rel=0.03)


def test_a_broken_layer_is_measured_piece_by_piece_and_specks_are_left_out():
    band = shapes.tilted_band((120, 300), 16, 0)
    band[:, 140:160] = False  # a gap: two pieces, neither separates the image
    band[10:14, 10:14] = True  # a speck of oxide away from the layer
    profile = layer_profile(band)
    assert set(np.unique(profile.piece)) == {1, 2} or len(np.unique(profile.piece)) == 2
    assert profile.thickness.mean() == pytest.approx(16, rel=0.04)
    assert profile.thickness.min() > 10  # no chord through the speck or along the layer
    assert np.all(np.diff(profile.position[profile.piece == profile.piece[0]]) >= 0)


def test_thickness_in_physical_units_and_vertical_layers():
    band = shapes.tilted_band((200, 120), 20, 90)  # runs top to bottom
    layer = measure_mask(band.astype(np.int64), ["bg", "oxide"], ["matrix", "layer"], PixelSize(0.5, "µm"))
    entry = layer["summary"]["layers"]["oxide"]
    assert entry["extent_along"] == "rows"
    assert entry["thickness_µm"]["mean"] == pytest.approx(0.5 * entry["thickness_px"]["mean"])
    assert entry["thickness_px"]["mean"] == pytest.approx(20, rel=0.03)
    extent, along = axis_extent(band)
    assert along == "rows" and np.all(extent == 20)


def test_an_empty_layer_class_gives_zeros_not_an_error():
    entry = measure_mask(np.zeros((30, 40), np.int64), ["bg", "oxide"], ["matrix", "layer"])["summary"]
    assert entry["layers"]["oxide"]["positions"] == 0 and entry["layers"]["oxide"]["coverage"] == 0.0
