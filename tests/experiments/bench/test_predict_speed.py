"""bench --predict: the synthetic micrograph is written band by band, and a run reports what predict did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from experiments.bench import predict_speed, train_step
from lightning_modules.window_grid import WindowGrid


def test_synthetic_micrograph_has_discs_where_expected(tmp_path):
    predict_speed.write_micrograph(tmp_path / "m.tif", 500, band=64)
    image = tifffile.imread(tmp_path / "m.tif")
    assert image.shape == (500, 500) and image.dtype == np.uint8
    assert image[100, 100] > 150 and image[0, 0] < 100  # a disc centre every 200 px, matrix between


def test_unknown_model_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="unknown model 'unnet'"):
        predict_speed.net_spec("unnet", "resnet18")


@pytest.mark.slow
def test_bench_predict_runs_predict_and_compares_with_the_minimum(tmp_path, capsys):
    argv = ["--predict", "160", "--predict-models", "unet", "--encoder", "resnet18", "--device", "cpu"]
    argv += ["--predict-tile", "64", "--predict-dir", str(tmp_path), "--json", str(tmp_path / "r.json")]
    assert train_step.main(argv) == 0
    (row,) = json.loads((tmp_path / "r.json").read_text())
    grid = WindowGrid.of(160, 160, 64, 0.25)
    assert row["windows"] == grid.count == 9 and row["overlap_factor"] == pytest.approx(9 * 64 * 64 / 160**2)
    assert row["seconds"] > 0 and row["ratio"] == pytest.approx(row["seconds"] / row["minimum_seconds"])
    assert row["peak_rss_mb"] >= row["model_rss_mb"] > 0
    assert (tmp_path / "out_unet_160" / "synthetic_160_mask.png").is_file()
    assert "unet (resnet18)" in capsys.readouterr().out
