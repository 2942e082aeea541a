"""Pixel size from each kind of TIFF metadata, written with tifffile (vendor tags as the vendors write them)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from datamodules.io import read_micrograph
from datamodules.pixel_size import PixelSize, file_calibration, parse_pixel_size

PIXELS = np.tile(np.arange(48, dtype=np.uint16) * 80, (32, 1))
#: FEI/Thermo Fisher: an INI text in private tag 34682 (FEI_HELIOS), lengths in metres
FEI_TEXT = "[User]\r\nDate=01/02/2024\r\n[Beam]\r\nHV=20000\r\n[Scan]\r\nPixelWidth=4.2e-09\r\nPixelHeight=4.2e-09\r\n"
#: Zeiss SmartSEM: upper-case keys, each followed by "Label = value unit", in private tag 34118 (CZ_SEM)
ZEISS_TEXT = "\r\n0\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 2.233 nm\r\nAP_MAG\r\nMag = 10.00 K X\r\n"


def _write(path, **kwargs):
    tifffile.imwrite(path, PIXELS, **kwargs)
    return path


METADATA = {
    "fei": (
        {"extratags": [(34682, "s", 0, FEI_TEXT, True)]},
        PixelSize(4.2, "nm"),
        "FEI/Thermo metadata [Scan] PixelWidth",
    ),
    "zeiss": (
        {"extratags": [(34118, "s", 0, ZEISS_TEXT, True)]},
        PixelSize(2.233, "nm"),
        "Zeiss SEM metadata AP_IMAGE_PIXEL_SIZE",
    ),
    "zeiss_micrometres_latin1": (
        {
            "extratags": [
                (34118, "s", 0, "\r\n0\r\nAP_PIXEL_SIZE\r\nPixel Size = 1.5 µm\r\n".encode("latin-1"), True)
            ]
        },
        PixelSize(1.5, "µm"),
        "Zeiss SEM metadata AP_PIXEL_SIZE",
    ),
    "ome": (
        {"ome": True, "metadata": {"PhysicalSizeX": 0.05, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.05}},
        PixelSize(0.05, "µm"),
        "OME-XML PhysicalSizeX",
    ),
    "ome_default_unit": ({"ome": True, "metadata": {"PhysicalSizeX": 0.2}}, PixelSize(0.2, "µm"), "OME-XML"),
    "imagej": (
        {"imagej": True, "resolution": (20, 20), "metadata": {"unit": "um"}},
        PixelSize(0.05, "µm"),
        "ImageJ calibration",
    ),
    "imagej_escaped_micro": (  # how ImageJ itself writes "µm" into its description
        {"imagej": True, "resolution": (0.25, 0.25), "metadata": {"unit": "\\u00B5m"}},
        PixelSize(4.0, "µm"),
        "ImageJ calibration",
    ),
    "resolution_cm": (
        {"resolution": (1e4, 1e4), "resolutionunit": "CENTIMETER"},
        PixelSize(1.0, "µm"),
        "TIFF XResolution (pixels per cm)",
    ),
    "resolution_inch": (
        {"resolution": (50800, 50800), "resolutionunit": "INCH"},
        PixelSize(500.0, "nm"),
        "TIFF XResolution (pixels per inch)",
    ),
}


@pytest.mark.parametrize("kind", sorted(METADATA))
def test_pixel_size_from_each_kind_of_metadata(tmp_path, kind):
    kwargs, expected, source = METADATA[kind]
    found = read_micrograph(_write(tmp_path / f"{kind}.tif", **kwargs)).calibration
    assert found is not None, kind
    assert found.size.unit == expected.unit and found.size.value == pytest.approx(expected.value)
    assert found.source.startswith(source)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # tifffile's default: XResolution 1/1, no unit
        {"resolution": (72, 72), "resolutionunit": "INCH"},  # an image editor's screen resolution
        {"resolution": (300, 300), "resolutionunit": "INCH"},
        {"resolution": (72 / 2.54, 72 / 2.54), "resolutionunit": "CENTIMETER"},  # 72 dpi in cm
        {"imagej": True, "resolution": (1, 1), "metadata": {"unit": "pixel"}},  # uncalibrated ImageJ
    ],
    ids=["tifffile_default", "72dpi", "300dpi", "72dpi_in_cm", "imagej_pixel"],
)
def test_no_calibration_is_not_invented(tmp_path, kwargs):
    assert file_calibration(_write(tmp_path / "x.tif", **kwargs)) is None


def test_vendor_tags_win_over_the_resolution_tags(tmp_path):
    path = _write(
        tmp_path / "both.tif",
        resolution=(1e4, 1e4),
        resolutionunit="CENTIMETER",
        extratags=[(34682, "s", 0, FEI_TEXT, True)],
    )
    assert file_calibration(path).size == PixelSize(4.2, "nm")


def test_malformed_vendor_text_falls_back_without_failing(tmp_path):
    broken = "[Scan]\r\nPixelWidth=not-a-number\r\n"
    path = _write(
        tmp_path / "odd.tif",
        resolution=(1e4, 1e4),
        resolutionunit="CENTIMETER",
        extratags=[(34682, "s", 0, broken, True)],
    )
    assert file_calibration(path).source == "TIFF XResolution (pixels per cm)"


def test_png_and_unreadable_files_have_no_calibration(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    assert file_calibration(tmp_path / "a.png") is None
    assert file_calibration(tmp_path / "junk.tif") is None


@pytest.mark.parametrize(
    ("text", "nm"),
    [("4.2nm", 4.2), ("0.5 um", 500.0), ("1.3µm", 1300.0), ("2 microns", 2000.0), ("50pm", 0.05)],
)
def test_parsed_sizes_convert_to_nanometres(text, nm):
    assert parse_pixel_size(text).nm == pytest.approx(nm)


def test_readable_units_from_nanometres():
    assert PixelSize.from_nm(4.2) == PixelSize(4.2, "nm")
    assert PixelSize.from_nm(1500.0) == PixelSize(1.5, "µm")


def _folder_set(root, resolutions_cm):
    """A FolderSegmentation tree whose training images carry the given pixels-per-cm (None: no tag)."""
    from PIL import Image

    for split, values in (("train", resolutions_cm), ("val", [None])):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i, per_cm in enumerate(values):
            tags = {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"} if per_cm else {}
            tifffile.imwrite(root / split / "images" / f"s{i}.tif", PIXELS, **tags)
            Image.fromarray(np.zeros(PIXELS.shape, np.uint8)).save(root / split / "masks" / f"s{i}.png")


def _datamodule(root, **kwargs):
    from datamodules import FolderSegmentation

    classes = [{"name": "matrix", "index": 0}, {"name": "pore", "index": 1}]
    return FolderSegmentation(root=str(root), classes=classes, scale=0.5, **kwargs)


def test_the_training_pixel_size_comes_from_the_files_once_read(tmp_path):
    _folder_set(tmp_path, [2.5e6, 2.5e6])  # 4 nm
    data = _datamodule(tmp_path)
    assert data.pixel_size_nm is None  # nothing read yet (the CLI links it at construction)
    data.setup("fit")
    assert data.pixel_size_nm == pytest.approx(8.0)  # seen at half resolution


def test_differing_or_missing_pixel_sizes_record_none(tmp_path):
    _folder_set(tmp_path / "mixed", [2.5e6, 5e6])
    data = _datamodule(tmp_path / "mixed")
    data.setup("fit")
    with pytest.warns(UserWarning, match=r"pixel sizes from 2 to 4 nm.*data.init_args.pixel_size"):
        assert data.pixel_size_nm is None
    _folder_set(tmp_path / "partly", [2.5e6, None])
    data = _datamodule(tmp_path / "partly")
    data.setup("fit")
    assert data.pixel_size_nm is None


def test_a_configured_pixel_size_wins_and_a_bad_one_names_the_key(tmp_path):
    from datamodules import DataError

    _folder_set(tmp_path, [2.5e6])
    assert _datamodule(tmp_path, pixel_size="0.5um").pixel_size_nm == pytest.approx(1000.0)
    with pytest.raises(DataError, match=r"data.pixel_size: pixel size '3' has no unit"):
        _datamodule(tmp_path, pixel_size="3")
    with pytest.raises(DataError, match=r"data.intensity: 'auto' is not a rule; use one of percentile"):
        _datamodule(tmp_path, intensity="auto")
