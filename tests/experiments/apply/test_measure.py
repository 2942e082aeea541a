"""Measurements on synthetic masks whose truth is known: discs of given radii, an oxide band of given thickness."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from datamodules.pixel_size import PixelSize, parse_pixel_size
from experiments.apply import measure as measure_cmd
from experiments.apply.imageio import read_index_mask, write_index_mask
from experiments.apply.measurements import layer_thickness, measure_mask

NAMES = ["matrix", "secondary", "tertiary"]
#: (row, col, radius, class)
DISCS = [
    (40, 40, 25, 1),
    (40, 130, 18, 1),
    (45, 210, 12, 1),
    (140, 50, 30, 1),
    (140, 150, 20, 1),
    (220, 40, 10, 1),
    (230, 120, 8, 2),
    (230, 200, 15, 2),
    (150, 225, 9, 2),
]


def disc_mask() -> np.ndarray:
    mask = np.zeros((270, 260), dtype=np.int64)
    rows, cols = np.mgrid[:270, :260]
    for row, col, radius, cls in DISCS:
        mask[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = cls
    return mask


def test_discs_count_diameter_and_area_fraction():
    result = measure_mask(disc_mask(), NAMES)
    summary = result["summary"]
    for cls, name in ((1, "secondary"), (2, "tertiary")):
        radii = sorted(r for _, _, r, c in DISCS if c == cls)
        assert summary["particles"][name]["count"] == len(radii)
        measured = sorted(row["equivalent_diameter_px"] for row in result["particles"][name])
        for true_radius, diameter in zip(radii, measured, strict=True):
            assert diameter == pytest.approx(2 * true_radius, rel=0.02)
        true_fraction = sum(math.pi * r**2 for r in radii) / disc_mask().size
        # within 0.5 percentage points of the analytic disc areas (the digitised discs differ slightly)
        assert summary["area_fraction"][name] == pytest.approx(true_fraction, abs=0.005)
        assert all(row["aspect_ratio"] == pytest.approx(1.0, abs=0.05) for row in result["particles"][name])
    assert sum(summary["area_fraction"].values()) == pytest.approx(1.0)


def test_ellipse_aspect_ratio_and_physical_units():
    mask = np.zeros((100, 100), dtype=np.int64)
    rows, cols = np.mgrid[:100, :100]
    mask[((rows - 50) / 10) ** 2 + ((cols - 50) / 30) ** 2 <= 1] = 1
    result = measure_mask(mask, NAMES[:2], PixelSize(2.0, "nm"))
    (row,) = result["particles"]["secondary"]
    assert row["aspect_ratio"] == pytest.approx(3.0, rel=0.03)
    assert row["equivalent_diameter_nm"] == pytest.approx(2 * row["equivalent_diameter_px"])
    assert row["area_nm2"] == pytest.approx(4 * row["area_px"])
    assert not row["touches_border"]


def oxide_band(width: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """An EBC-like mask: an oxide band whose top and thickness vary along the columns."""
    cols = np.arange(width)
    top = 40 + 6 * np.sin(2 * np.pi * cols / 120)
    thickness = 25 + 10 * np.sin(2 * np.pi * cols / 75 + 1.0)
    centres = np.arange(120)[:, None] + 0.5
    mask = ((centres >= top) & (centres < top + thickness)).astype(np.int64)
    return mask, thickness


def test_oxide_band_thickness_profile_within_one_pixel():
    mask, truth = oxide_band()
    profile, along = layer_thickness(mask, 1)
    assert along == "columns"
    assert np.abs(profile - truth).max() <= 1
    vertical, along = layer_thickness(mask.T, 1)
    assert along == "rows" and np.array_equal(vertical, profile)

    summary = measure_mask(mask, ["substrate", "oxide"], PixelSize(0.5, "µm"))["summary"]
    layer = summary["layers"]["oxide"]
    assert layer["thickness_px"]["mean"] == pytest.approx(truth.mean(), abs=1)
    assert layer["thickness_px"]["min"] == pytest.approx(truth.min(), abs=1)
    assert layer["thickness_px"]["max"] == pytest.approx(truth.max(), abs=1)
    assert layer["thickness_px"]["std"] == pytest.approx(truth.std(), abs=0.5)
    assert layer["thickness_µm"]["mean"] == pytest.approx(0.5 * layer["thickness_px"]["mean"])
    assert layer["coverage"] == 1.0
    assert "oxide" not in summary["particles"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.2nm", PixelSize(4.2, "nm")),
        ("0.5 um", PixelSize(0.5, "µm")),
        ("1.3µm", PixelSize(1.3, "µm")),
        ("2 nm/px", PixelSize(2.0, "nm")),
        ("1e-3 mm", PixelSize(1e-3, "mm")),
    ],
)
def test_parse_pixel_size(text, expected):
    assert parse_pixel_size(text) == expected


def test_pixel_size_without_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="has no unit.*4.2nm"):
        parse_pixel_size("4.2")
    with pytest.raises(ValueError, match="unknown unit"):
        parse_pixel_size("4.2 parsecs")


def test_too_few_class_names_is_a_clear_error():
    with pytest.raises(ValueError, match="class index 2 .*--class-names"):
        measure_mask(disc_mask(), NAMES[:2])


def test_measure_command_writes_csv_json_and_plots(tmp_path, capsys):
    write_index_mask(disc_mask(), tmp_path / "a_mask.png")
    band, _ = oxide_band()
    ebc = tmp_path / "ebc"
    ebc.mkdir()
    write_index_mask(band, ebc / "b_mask.png")

    argv = ["--masks", str(tmp_path), "--pixel-size", "4.2nm", "--class-names", *NAMES]
    assert measure_cmd.main(argv) == 0
    summary = json.loads((tmp_path / "a_measurements.json").read_text())
    assert summary["particles"]["secondary"]["count"] == 6
    assert summary["pixel_size"] == {"value": 4.2, "unit": "nm"}
    with (tmp_path / "a_particles.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(DISCS) and "equivalent_diameter_nm" in rows[0]
    assert (tmp_path / "a_size_secondary.png").stat().st_size > 0
    header = (tmp_path / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("image,fraction_matrix") and "mean_diameter_nm_secondary" in header

    assert measure_cmd.main(["--masks", str(ebc), "--class-names", "substrate", "oxide"]) == 0
    assert (ebc / "b_thickness_oxide.png").is_file()
    with (ebc / "b_thickness.csv").open() as f:
        assert len(list(csv.DictReader(f))) == band.shape[1]

    assert measure_cmd.main(["--masks", str(tmp_path), "--pixel-size", "4.2"]) == 2
    assert "has no unit" in capsys.readouterr().err


@pytest.mark.real_data
def test_oxide_thickness_on_real_ebc_masks(nasa_root):
    """On NASA's EBC1 test masks the layer runs along the columns and covers them all, so its mean
    thickness times the width is exactly the oxide area."""
    for path in sorted((nasa_root / "EBC1" / "test_annot").glob("*.tif")):
        mask = read_index_mask(path)
        mask[mask == 2] = 1  # crack -> oxide
        summary = measure_mask(mask, ["substrate", "oxide"])["summary"]
        layer = summary["layers"]["oxide"]
        assert layer["along"] == "columns" and layer["coverage"] == 1.0, path.name
        width = mask.shape[1]
        assert layer["thickness_px"]["mean"] * width == pytest.approx(int((mask == 1).sum()))
        assert 0 < layer["thickness_px"]["min"] <= layer["thickness_px"]["max"] < mask.shape[0]
