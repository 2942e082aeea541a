"""`measure` end to end: the files it writes, masks from elsewhere (0/255, 16-bit), kinds, folder statistics."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import stats

from datamodules.pixel_size import PixelSize, parse_pixel_size
from experiments.apply import measure as measure_cmd
from experiments.apply.imageio import read_index_mask, write_index_mask
from experiments.apply.measurements import measure_mask
from experiments.bench import shapes

NAMES = ["matrix", "secondary", "tertiary"]
KINDS = ["matrix", "particles", "particles"]
#: (row, col, radius, class)
DISCS = [(40, 40, 25, 1), (40, 130, 18, 1), (45, 210, 12, 1), (140, 50, 30, 1), (140, 150, 20, 1),
         (220, 40, 10, 1), (230, 120, 8, 2), (230, 200, 15, 2), (150, 225, 9, 2)]  # fmt: skip


def disc_mask() -> np.ndarray:
    mask = np.zeros((270, 260), dtype=np.int64)
    for row, col, radius, cls in DISCS:
        mask[shapes.discs(mask.shape, [(row, col)], radius)] = cls
    return mask


def _rows(path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_discs_count_diameter_and_area_fraction():
    result = measure_mask(disc_mask(), NAMES, KINDS)
    summary = result["summary"]
    for cls, name in ((1, "secondary"), (2, "tertiary")):
        radii = sorted(r for _, _, r, c in DISCS if c == cls)
        assert summary["particles"][name]["count"] == len(radii)
        measured = sorted(row["equivalent_diameter_px"] for row in result["particles"][name])
        for true_radius, diameter in zip(radii, measured, strict=True):
            assert diameter == pytest.approx(2 * true_radius, rel=0.02)
        true_fraction = sum(math.pi * r**2 for r in radii) / disc_mask().size
        assert summary["area_fraction"][name] == pytest.approx(true_fraction, abs=0.005)
        assert all(row["aspect_ratio"] == pytest.approx(1.0, abs=0.05) for row in result["particles"][name])
    assert sum(summary["area_fraction"].values()) == pytest.approx(1.0)


def test_ellipse_in_physical_units():
    mask = shapes.ellipse((100, 100), 30, 10, 0.0, (50, 50)).astype(np.int64)
    result = measure_mask(mask, NAMES[:2], KINDS[:2], PixelSize(2.0, "nm"))
    (row,) = result["particles"]["secondary"]
    assert row["aspect_ratio"] == pytest.approx(3.0, rel=0.03)
    assert row["equivalent_diameter_nm"] == pytest.approx(2 * row["equivalent_diameter_px"])
    assert row["area_nm2"] == pytest.approx(4 * row["area_px"])
    entry = result["summary"]["particles"]["secondary"]
    assert entry["number_density_per_nm2"] == pytest.approx(1 / (mask.size * 4))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4.2nm", PixelSize(4.2, "nm")), ("0.5 um", PixelSize(0.5, "µm")), ("1.3µm", PixelSize(1.3, "µm")),
     ("2 nm/px", PixelSize(2.0, "nm")), ("1e-3 mm", PixelSize(1e-3, "mm"))],
)  # fmt: skip
def test_parse_pixel_size(text, expected):
    assert parse_pixel_size(text) == expected


def test_pixel_size_without_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="has no unit.*4.2nm"):
        parse_pixel_size("4.2")
    with pytest.raises(ValueError, match="unknown unit"):
        parse_pixel_size("4.2 parsecs")


def test_measure_command_writes_csv_json_and_pictures(tmp_path, capsys):
    write_index_mask(disc_mask(), tmp_path / "a_mask.png")
    argv = ["--masks", str(tmp_path), "--pixel-size", "4.2nm", "--class-names", *NAMES, "--quiet"]
    assert measure_cmd.main(argv) == 0
    summary = json.loads((tmp_path / "a_measurements.json").read_text())
    assert summary["particles"]["secondary"]["count"] == 6
    assert summary["pixel_size"] == {"value": 4.2, "unit": "nm"}
    assert summary["settings"]["split"] is True and summary["class_kinds"]["tertiary"] == "particles"
    rows = _rows(tmp_path / "a_particles.csv")
    assert len(rows) == len(DISCS) and {"equivalent_diameter_nm", "touches_border", "in_statistics"} <= set(
        rows[0]
    )
    bins = _rows(tmp_path / "a_size_secondary.csv")
    assert sum(int(b["count"]) for b in bins) == 6 and "bin_low_nm" in bins[0]
    for picture in ("a_size_secondary.png", "a_particles_secondary.png", "size_secondary.png"):
        assert (tmp_path / picture).stat().st_size > 0, picture
    header = (tmp_path / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("image,fraction_matrix") and "mean_diameter_nm_secondary" in header
    out = capsys.readouterr().out
    assert "classes from --class-names" in out and "secondary (particles)" in out

    # a second run in the same folder reads only the mask, not the pictures the first one wrote
    assert measure_cmd.main(argv) == 0

    assert measure_cmd.main(["--masks", str(tmp_path), "--pixel-size", "4.2"]) == 2
    assert "has no unit" in capsys.readouterr().err
    single = tmp_path / "single"
    assert (
        measure_cmd.main(["--masks", str(tmp_path / "a_mask.png"), "--output", str(single), *argv[2:]]) == 0
    )
    assert (single / "a_measurements.json").is_file()  # one mask file, not only folders
    assert measure_cmd.main([*argv, "--output", str(tmp_path / "a_mask.png")]) == 2
    assert "cannot write into" in capsys.readouterr().err


def test_layer_classes_and_the_thickness_files(tmp_path):
    band = shapes.tilted_band((120, 300), 25, 8).astype(np.uint8)
    write_index_mask(band, tmp_path / "b_mask.png")
    argv = ["--masks", str(tmp_path), "--class-names", "substrate", "oxide", "--quiet"]
    assert measure_cmd.main([*argv, "--layer-classes", "oxide"]) == 0
    summary = json.loads((tmp_path / "b_measurements.json").read_text())
    assert summary["layers"]["oxide"]["thickness_px"]["mean"] == pytest.approx(25, rel=0.03)
    rows = _rows(tmp_path / "b_thickness.csv")
    assert len(rows) > 200 and {"piece", "position_px", "row", "col", "thickness_px"} <= set(rows[0])
    assert (tmp_path / "b_thickness_oxide.png").is_file()
    assert measure_cmd.main([*argv, "--layer-classes", "oxyde"]) == 2


def test_sixteen_bit_mask_with_values_0_1000_2000_makes_three_classes(tmp_path, capsys):
    """Issue 14: such a mask made 2,001 classes and a 6,002-column summary.csv."""
    mask = np.zeros((60, 80), np.uint16)
    mask[10:30, 10:30], mask[35:50, 40:70] = 1000, 2000
    tifffile.imwrite(tmp_path / "s.tif", mask)
    assert measure_cmd.main(["--masks", str(tmp_path), "--quiet"]) == 0
    assert "values in the masks: 0=class_0 (matrix), 1000=class_1000 (particles)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "s_measurements.json").read_text())
    assert list(summary["area_fraction"]) == ["class_0", "class_1000", "class_2000"]
    assert len((tmp_path / "summary.csv").read_text().splitlines()[0].split(",")) < 30


def test_class_values_map_a_0_255_mask_and_unexpected_values_name_the_file(tmp_path, capsys):
    """Issue 14: a 0/255 mask gave 767 columns, and the suggested fix (256 --class-names) cannot be done."""
    pores = np.zeros((50, 50), np.uint8)
    pores[10:20, 10:20] = 255
    Image.fromarray(pores).save(tmp_path / "good.png")
    odd = pores.copy()
    odd[30:35, 30:35] = 128
    Image.fromarray(odd).save(tmp_path / "odd.png")
    assert (
        measure_cmd.main(["--masks", str(tmp_path), "--class-values", "0=matrix", "255=pore", "--quiet"]) == 1
    )
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert (
        len(failed) == 1 and "odd.png" in failed[0] and "128" in failed[0] and "--class-values" in failed[0]
    )
    summary = json.loads((tmp_path / "good_measurements.json").read_text())
    assert summary["area_fraction"] == {"matrix": pytest.approx(0.96), "pore": pytest.approx(0.04)}
    assert summary["particles"]["pore"]["count"] == 1

    assert measure_cmd.main(["--masks", str(tmp_path), "--class-values", "0:matrix"]) == 2
    assert "VALUE=NAME" in capsys.readouterr().err


def test_an_image_is_not_taken_for_a_mask(tmp_path, capsys):
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64).astype(np.uint8)).save(
        tmp_path / "photo.png"
    )
    assert measure_cmd.main(["--masks", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "photo.png" in err and "--class-values" in err


def test_kinds_come_from_classes_json(tmp_path):
    """`predict` writes the checkpoint's kinds into classes.json; `measure` needs no flag for the oxide."""
    write_index_mask(shapes.tilted_band((100, 200), 20, 0).astype(np.uint8), tmp_path / "e_mask.png")
    classes = {"class_names": ["background", "oxide"], "class_kinds": ["matrix", "layer"]}
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    assert measure_cmd.main(["--masks", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "e_measurements.json").read_text())
    assert "oxide" in summary["layers"] and not summary["particles"]
    assert measure_cmd.main(["--masks", str(tmp_path), "--quiet", "--layer-classes"]) == 0
    summary = json.loads((tmp_path / "e_measurements.json").read_text())
    assert "oxide" in summary["particles"] and not summary["layers"]


def test_folder_summary_gives_the_t_interval_over_images(tmp_path):
    fractions = [0.10, 0.20, 0.15]
    for i, fraction in enumerate(fractions):
        mask = np.zeros((40, 50), np.uint8)
        mask.ravel()[: int(fraction * mask.size)] = 1
        write_index_mask(mask, tmp_path / f"m{i}_mask.png")
    assert measure_cmd.main(["--masks", str(tmp_path), "--class-names", "matrix", "phase", "--quiet"]) == 0
    row = next(r for r in _rows(tmp_path / "folder_summary.csv") if r["class"] == "phase")
    half = stats.t.ppf(0.975, 2) * np.std(fractions, ddof=1) / np.sqrt(3)
    assert float(row["fraction_mean"]) == pytest.approx(0.15)
    assert float(row["fraction_ci95_low"]) == pytest.approx(0.15 - half)
    assert float(row["fraction_ci95_high"]) == pytest.approx(0.15 + half)
    assert int(row["images"]) == 3


@pytest.mark.real_data
def test_oxide_thickness_on_real_ebc_masks(nasa_root):
    """On NASA's EBC1 test masks the oxide runs across the image: its thickness normal to the layer is
    at most its vertical extent (equal only where the layer is level), and close to it (the layers are
    nearly level)."""
    for path in sorted((nasa_root / "EBC1" / "test_annot").glob("*.tif")):
        mask = np.minimum(read_index_mask(path), 1)  # crack -> oxide
        layer = measure_mask(mask, ["substrate", "oxide"], ["matrix", "layer"])["summary"]["layers"]["oxide"]
        assert layer["extent_along"] == "columns" and layer["coverage"] == 1.0, path.name
        assert layer["axis_extent_px"]["mean"] * mask.shape[1] == pytest.approx(int((mask == 1).sum()))
        thickness, extent = layer["thickness_px"]["mean"], layer["axis_extent_px"]["mean"]
        assert 0.85 * extent < thickness < extent, path.name
        assert layer["positions"] > 0.9 * mask.shape[1]
