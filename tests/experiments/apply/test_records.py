"""Where `measure` finds a mask's pixel size: --pixel-size, predict's predictions.json, the mask file itself."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from datamodules.pixel_size import Calibration, PixelSize
from experiments.apply import measure as measure_cmd
from experiments.apply.records import PREDICTIONS_FILE, image_entry, recorded_calibrations, write_predictions


def disc_mask() -> np.ndarray:
    mask = np.zeros((60, 60), np.uint8)
    rows, cols = np.mgrid[:60, :60]
    mask[(rows - 30) ** 2 + (cols - 30) ** 2 <= 10**2] = 1
    return mask


def test_measure_reads_a_tiff_masks_own_pixel_size(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a_mask.tif", disc_mask(), resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
    argv = ["--masks", str(tmp_path), "--class-names", "matrix", "pore"]
    assert measure_cmd.main(argv) == 0
    assert "pixel size 1 µm (TIFF XResolution (pixels per cm)): 1 image(s)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "a_measurements.json").read_text())
    assert (
        summary["particles"]["pore"]["equivalent_diameter_µm"]["mean"]
        == summary["particles"]["pore"]["equivalent_diameter_px"]["mean"]
    )


def test_without_any_pixel_size_measure_says_so(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a_mask.tif", disc_mask())
    assert measure_cmd.main(["--masks", str(tmp_path), "--class-names", "matrix", "pore"]) == 0
    assert "no pixel size: 1 image(s), lengths in px only (pass --pixel-size)" in capsys.readouterr().out


def test_records_round_trip_and_a_damaged_record_is_ignored(tmp_path):
    found = Calibration(PixelSize(4.2, "nm"), "OME-XML PhysicalSizeX")
    write_predictions(
        tmp_path, {"checkpoint": "x.ckpt"}, {"a": image_entry(found, input="a.tif"), "b": image_entry(None)}
    )
    recorded = recorded_calibrations(tmp_path)
    assert set(recorded) == {"a"} and recorded["a"].size == PixelSize(4.2, "nm")
    assert recorded["a"].source.startswith("OME-XML PhysicalSizeX, as recorded by predict")
    (tmp_path / PREDICTIONS_FILE).write_text("{not json")
    assert recorded_calibrations(tmp_path) == {}
