"""predict's uncertainty maps and its strip-wise path for huge TIFFs (thresholds lowered to test sizes)."""

from __future__ import annotations

import csv
import json
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from scipy import ndimage

from experiments.apply import predict as predict_cmd
from experiments.apply import predict_strips, strips
from lightning_modules.inference import normalise
from tests.experiments.apply.test_predict import synthetic_micrograph
from tests.experiments.stand_in import brightness_ckpt  # noqa: F401  (fixture)


def _run(ckpt, image, out, *extra: str) -> int:
    return predict_cmd.main(
        ["--ckpt", str(ckpt), "--input", str(image), "--output", str(out), "--quiet", *extra]
    )


def _truth(height: int, width: int) -> np.ndarray:
    """The classes `synthetic_micrograph` draws: matrix, discs of radius 30, cores of radius 12."""
    rows, cols = np.mgrid[:height, :width]
    truth = np.zeros((height, width), np.uint8)
    for r in range(80, height - 60, 200):
        for c in range(80, width - 60, 200):
            truth[(rows - r) ** 2 + (cols - c) ** 2 <= 30**2] = 1
            truth[(rows - r) ** 2 + (cols - c) ** 2 <= 12**2] = 2
    return truth


def test_boundaries_are_more_uncertain_than_interiors(tmp_path, brightness_ckpt):  # noqa: F811
    tifffile.imwrite(tmp_path / "discs.tif", synthetic_micrograph(360, 420, 4))
    assert _run(brightness_ckpt, tmp_path / "discs.tif", tmp_path / "out", "--tile", "128") == 0
    uncertainty = tifffile.imread(tmp_path / "out" / "discs_uncertainty.tif")
    assert uncertainty.shape == (360, 420) and uncertainty.dtype == np.float32
    truth = _truth(360, 420)
    edges = ndimage.maximum_filter(truth, 3) != ndimage.minimum_filter(truth, 3)
    interior = ~ndimage.binary_dilation(edges, iterations=5)
    assert uncertainty[edges].mean() > 3 * uncertainty[interior].mean()
    assert Image.open(tmp_path / "out" / "discs_uncertainty.png").size == (420, 360)
    with (tmp_path / "out" / "summary.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert float(row["mean_uncertainty"]) == pytest.approx(float(uncertainty.mean()), rel=1e-4)


def test_tta_is_deterministic_and_changes_the_map(tmp_path, brightness_ckpt):  # noqa: F811
    image = synthetic_micrograph(200, 260, 1)
    image[:, :90] //= 2  # a flip now matters: the picture is not symmetric
    tifffile.imwrite(tmp_path / "a.tif", image)
    maps = []
    for name, extra in (("tta1", ["--tta"]), ("tta2", ["--tta"]), ("plain", [])):
        assert _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / name, "--tile", "64", *extra) == 0
        maps.append(tifffile.imread(tmp_path / name / "a_uncertainty.tif"))
    assert np.array_equal(maps[0], maps[1])
    assert maps[0].shape == maps[2].shape


@pytest.fixture
def small_thresholds(monkeypatch):
    """Read in strips above 10k px, huge above 50k px, pictures at most 100 px wide."""
    monkeypatch.setattr(strips, "STRIP_PIXELS", 10_000)
    monkeypatch.setattr(predict_strips, "HUGE_PIXELS", 50_000)
    monkeypatch.setattr(strips, "THUMBNAIL_SIDE", 100)


@pytest.mark.parametrize("layout", ["tiled", "striped", "plain"])
def test_strips_give_the_in_memory_result(tmp_path, brightness_ckpt, small_thresholds, monkeypatch, layout):  # noqa: F811
    image = synthetic_micrograph(200, 230, 1)
    options = {
        "tiled": {"tile": (64, 64), "compression": "zlib"},
        "striped": {"rowsperstrip": 16, "compression": "zlib"},
        "plain": {},
    }[layout]
    tifffile.imwrite(tmp_path / "a.tif", image, **options)
    assert _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / "strips", "--tile", "64") == 0
    record = json.loads((tmp_path / "strips" / "predictions.json").read_text())["images"]["a"]
    assert record["read_in_strips"]
    monkeypatch.setattr(strips, "STRIP_PIXELS", 10**9)
    assert _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / "memory", "--tile", "64") == 0
    by_strips = np.asarray(Image.open(tmp_path / "strips" / "a_mask.png"))
    in_memory = np.asarray(Image.open(tmp_path / "memory" / "a_mask.png"))
    assert (by_strips == in_memory).mean() > 0.999 and set(np.unique(in_memory)) == {0, 1, 2}
    maps = [tifffile.imread(tmp_path / name / "a_uncertainty.tif") for name in ("strips", "memory")]
    assert np.abs(maps[0] - maps[1]).max() < 1e-3
    assert Image.open(tmp_path / "strips" / "a_overlay.png").size == (77, 67)  # every 3rd pixel
    summaries = [json.loads((tmp_path / n / "a_measurements.json").read_text()) for n in ("strips", "memory")]
    assert (
        summaries[0]["particles"]["secondary"]["count"]
        == summaries[1]["particles"]["secondary"]["count"]
        == 1
    )


def test_a_huge_mask_is_a_tiled_bigtiff_measured_by_area(tmp_path, brightness_ckpt, small_thresholds, capsys):  # noqa: F811
    tifffile.imwrite(tmp_path / "mosaic.tif", synthetic_micrograph(250, 260, 1), tile=(64, 64))
    assert _run(brightness_ckpt, tmp_path / "mosaic.tif", tmp_path / "out", "--tile", "64") == 0
    out = tmp_path / "out"
    assert not (out / "mosaic_mask.png").exists()
    with tifffile.TiffFile(out / "mosaic_mask.tif") as tif:
        assert tif.is_bigtiff and tif.pages.first.is_tiled
        mask = tif.asarray()
    assert mask.shape == (250, 260) and mask.dtype == np.uint8
    summary = json.loads((out / "mosaic_measurements.json").read_text())
    assert summary["particles"] == {} and "not_measured" in summary
    assert summary["area_fraction"]["secondary"] == pytest.approx((mask == 1).mean())
    assert "only area fractions" in capsys.readouterr().err


@pytest.mark.parametrize("factor", ["0.5", "1.7"])
def test_strips_resample_as_the_in_memory_path(
    tmp_path,
    brightness_ckpt,  # noqa: F811
    small_thresholds,
    monkeypatch,
    factor,
):
    tifffile.imwrite(tmp_path / "a.tif", synthetic_micrograph(200, 230, 1), tile=(64, 64))
    assert (
        _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / "strips", "--tile", "64", "--resample", factor)
        == 0
    )
    record = json.loads((tmp_path / "strips" / "predictions.json").read_text())["images"]["a"]
    assert record["read_in_strips"] and record["network_input_px"] == [
        round(230 * float(factor)),
        round(200 * float(factor)),
    ]
    monkeypatch.setattr(strips, "STRIP_PIXELS", 10**9)
    assert (
        _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / "memory", "--tile", "64", "--resample", factor)
        == 0
    )
    masks = [np.asarray(Image.open(tmp_path / name / "a_mask.png")) for name in ("strips", "memory")]
    assert masks[0].shape == (200, 230) and set(np.unique(masks[1])) == {0, 1, 2}
    assert (masks[0] == masks[1]).mean() > 0.99  # OpenCV's area/bilinear resize differs only at bin edges


def test_a_folder_mixing_huge_and_ordinary_images_pools_what_was_measured(
    tmp_path,
    brightness_ckpt,  # noqa: F811
    small_thresholds,
):
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "a_small.tif", np.full((90, 100), 40, np.uint8))  # matrix only, in memory
    tifffile.imwrite(folder / "b_huge.tif", synthetic_micrograph(250, 260, 1))  # area only
    Image.fromarray((synthetic_micrograph(200, 230, 1) // 256).astype(np.uint8)).save(folder / "c_small.png")
    assert _run(brightness_ckpt, folder, tmp_path / "out", "--tile", "64") == 0
    rows = {r["class"]: r for r in json.loads((tmp_path / "out" / "folder_summary.json").read_text())}
    assert rows["secondary"]["kind"] == "particles" and rows["secondary"]["images"] == 3
    assert rows["secondary"]["count"] == 1  # c_small's particle; b_huge's was not counted, nor its area
    c_area = 200 * 230 + 90 * 100
    assert rows["secondary"]["number_density_per_px2"] == pytest.approx(1 / c_area, rel=0.5)


def test_memory_of_a_strip_run_does_not_grow_with_the_float_maps(tmp_path, brightness_ckpt, small_thresholds):  # noqa: F811
    """numpy's allocations (traced by tracemalloc): the mask (1 byte a pixel) and a band, never all strips."""
    height, width = 12000, 256
    tall = np.tile(synthetic_micrograph(200, width, 1) // 256, (60, 1)).astype(np.uint8)  # 8-bit: no sample
    tifffile.imwrite(tmp_path / "tall.tif", tall)
    tracemalloc.start()
    try:
        assert (
            _run(brightness_ckpt, tmp_path / "tall.tif", tmp_path / "out", "--tile", "64", "--no-measure")
            == 0
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (
        peak < 2.5 * height * width
    )  # the float32 uncertainty of every strip alone would be 4 bytes a pixel


def test_bands_stay_uint8_unless_resampled(tmp_path):
    """At the image's own resolution a band is 1 byte a channel (not 4); its windows get the same bits."""
    grey = synthetic_micrograph(90, 120, 1)  # 16-bit: the intensity rule applies first
    tifffile.imwrite(tmp_path / "a.tif", grey)
    meta = SimpleNamespace(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    with strips.TiffRows(tmp_path / "a.tif", "percentile") as reader:
        source, prepare = predict_strips._network_input(reader, meta, (90, 120))
        band = source(10, 74)
        assert band.dtype == torch.uint8 and band.shape == (3, 64, 120)
        expected = normalise(reader.rows(10, 74), meta.mean, meta.std)
        assert torch.equal(prepare(band[None, :, :, 20:84]), expected[None, :, :, 20:84])
        source, prepare = predict_strips._network_input(reader, meta, (45, 60))
        assert prepare is None and source(0, 20).dtype == torch.float32
