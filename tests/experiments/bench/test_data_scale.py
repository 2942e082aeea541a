"""`bench --data-scale`: the synthetic set it writes, one measurement, the table and the JSON report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from experiments.bench import data_scale
from experiments.bench import train_step as bench


def test_pool_files_all_differ_and_are_reused(tmp_path):
    pairs = data_scale.write_pool(tmp_path, data_scale.DISTINCT + 2, 32)
    images = [tifffile.imread(image) for image, _ in pairs]
    assert len({a.tobytes() for a in images}) == len(images)  # shifted copies, never the same file twice
    stamps = [image.stat().st_mtime_ns for image, _ in pairs]
    data_scale.write_pool(tmp_path, data_scale.DISTINCT + 2, 32)
    assert [image.stat().st_mtime_ns for image, _ in pairs] == stamps


@pytest.mark.parametrize("mode", ["memory", "lazy", "cached"])
def test_one_measurement_reports_the_set_it_read(tmp_path, mode):
    pairs = data_scale.write_pool(tmp_path / "pool", 3 + data_scale.VAL_IMAGES, 64)
    root = data_scale.make_set(tmp_path / "set", pairs, 3)
    result = data_scale.measure(root, mode, batches=1, batch_size=2, cache_dir=tmp_path / "cache")
    assert result.images == 3 and result.mode == mode
    assert result.decoded_gib * 2**30 == 3 * 64 * 64 * 4  # RGB image + mask, from the headers
    assert result.peak_rss_gib >= result.baseline_rss_gib > 0 and result.samples_per_s > 0
    assert len(list((tmp_path / "cache").glob("*.npy"))) == (2 * 3 if mode == "cached" else 0)


def test_table_shows_growth_over_the_smallest_set():
    rows = [
        data_scale.ScaleResult(50, "memory", 1.0, 10.0, 0.8, 1.0, 0.2),
        data_scale.ScaleResult(50, "lazy", 0.1, 5.0, 0.8, 0.9, 0.2),
        data_scale.ScaleResult(500, "memory", 9.0, 10.0, 0.8, 3.0, 2.0),
        data_scale.ScaleResult(500, "lazy", 0.5, 5.0, 0.8, 0.9, 2.0),
    ]
    lines = data_scale.table(rows).splitlines()
    assert "+2.00" in lines[3] and "+0.00" in lines[4]
    assert "at 50 images" in lines[-1]


@pytest.mark.slow
def test_bench_data_scale_runs_each_measurement_in_its_own_process(tmp_path, capsys):
    out = tmp_path / "scale.json"
    args = ["--data-scale", "2", "--data-scale-modes", "lazy", "--data-scale-size", "64", "--data-batches", "1"]  # fmt: skip
    code = bench.main([*args, "--data-scale-dir", str(tmp_path / "files"), "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    (row,) = report["data_scale"]
    assert row["images"] == 2 and row["mode"] == "lazy" and row["peak_rss_gib"] > 0
    assert report["size"] == 64 and "peak RSS GiB" in capsys.readouterr().out
    assert np.isfinite(row["samples_per_s"])
