"""The one micrograph reader: every supported format, bit depth and layout as uint8 RGB; bad files; pairing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from datamodules.io import DataError, pair_by_name, read_image, read_mask


@pytest.mark.parametrize(
    "array",
    [
        np.full((5, 7), 200, np.uint8),  # grey 8-bit
        np.full((5, 7, 3), 200, np.uint8),  # RGB
        np.full((5, 7, 4), 200, np.uint8),  # RGBA
        np.full((5, 7), 200 * 257, np.uint16),  # grey 16-bit
        np.full((5, 7, 3), 200 * 257, np.uint16),  # RGB 16-bit
        np.full((3, 5, 7), 200, np.uint8),  # planar RGB
    ],
    ids=["grey8", "rgb8", "rgba8", "grey16", "rgb16", "planar"],
)
def test_tiff_layouts_become_uint8_rgb(tmp_path, array):
    path = tmp_path / "x.tif"
    tifffile.imwrite(
        path, array, photometric="rgb" if array.ndim == 3 and 3 in (array.shape[-1], array.shape[0]) else None
    )
    image = read_image(path, "bit_depth")  # 200 * 257 in 16 bits is 200 in 8
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8
    assert np.all(np.abs(image.astype(int) - 200) <= 1)


def test_twelve_bit_data_is_stretched_by_its_range(tmp_path):
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, np.array([[0, 4095], [0, 4095]], np.uint16))
    assert read_image(path, "bit_depth")[..., 0].tolist() == [[0, 255], [0, 255]]


def test_png_grey_and_palette_mask(tmp_path):
    Image.fromarray(np.full((3, 4), 9, np.uint8)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (3, 4, 3)
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png").tolist() == [[0, 1], [1, 0]]
    assert read_mask(tmp_path / "p.png", color=True)[0, 1].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    ("name", "array"),
    [
        ("grey8.png", np.tile(np.arange(64, dtype=np.uint8), (32, 1))),
        ("rgb8.jpg", np.full((32, 64, 3), 128, np.uint8)),
        ("grey16.tif", np.tile(np.arange(64, dtype=np.uint16) * 1000, (32, 1))),
        ("grey16.png", np.tile(np.arange(64, dtype=np.uint16) * 1000, (32, 1))),
        ("rgb16.tif", np.full((32, 64, 3), 40000, np.uint16)),
        ("rgba8.png", np.full((32, 64, 4), 200, np.uint8)),
        ("float.tif", np.linspace(0, 7, 32 * 64, dtype=np.float32).reshape(32, 64)),
        ("int32.tif", np.tile(np.arange(64, dtype=np.int32) * 9, (32, 1))),
    ],
)
def test_lab_formats_become_uint8_rgb(tmp_path, name, array):
    path = tmp_path / name
    if path.suffix == ".tif":
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    image = read_image(path)
    assert image.shape == (32, 64, 3) and image.dtype == np.uint8
    if array.ndim == 2 and array.dtype != np.uint8:  # a ramp: the rule spreads it over 0-255
        assert image.min() == 0 and image.max() == 255


def test_palette_image_is_read_as_its_colours(tmp_path):
    """A palette PNG micrograph gives its colours (as a viewer shows it), not its palette indices."""
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    pal.putpalette([10, 10, 10, 240, 240, 240] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png")[..., 0].tolist() == [[10, 240], [240, 10]]


def test_alpha_does_not_move_the_percentiles(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint16)
    rgba[..., :3] = np.tile(np.arange(20, dtype=np.uint16) * 100, (20, 1))[..., None]
    rgba[..., 3] = 65535  # opaque
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    image = read_image(tmp_path / "a.tif")
    assert image[0, -1, 0] == 255 and image[0, 0, 0] == 0


def test_multipage_tiff_uses_the_first_page_with_a_warning(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.stack([np.zeros((16, 16), np.uint8), np.full((16, 16), 255, np.uint8)]))
    with pytest.warns(UserWarning, match="stack.tif: 2 pages or frames; using the first one only"):
        assert read_image(path).max() == 0


@pytest.mark.parametrize("name", ["dot.png", "dot.tif", "line.tif", "rgb_dot.tif"])
def test_a_tiny_image_is_too_small_not_an_odd_layout(tmp_path, name):
    """Corpus case: a 1x1 image said "unsupported image layout ()"."""
    shapes = {"dot.png": (1, 1), "dot.tif": (1, 1), "line.tif": (1, 40), "rgb_dot.tif": (1, 1, 3)}
    array = np.zeros(shapes[name], np.uint8)
    if name.endswith(".png"):
        Image.fromarray(array).save(tmp_path / name)
    else:
        tifffile.imwrite(tmp_path / name, array)
    with pytest.raises(DataError, match=rf"{name}: image of \d+x1 px is too small"):
        read_image(tmp_path / name)


def test_unsupported_layouts_and_pixel_types_name_the_file(tmp_path):
    spectral = tmp_path / "spectral.tif"
    tifffile.imwrite(
        spectral, np.zeros((16, 16, 5), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    with pytest.raises(DataError, match=r"spectral\.tif: unsupported image layout \(16, 16, 5\)"):
        read_image(spectral)
    complex_tif = tmp_path / "fft.tif"
    tifffile.imwrite(complex_tif, np.zeros((16, 16), np.complex64))
    with pytest.raises(DataError, match=r"fft\.tif: unsupported pixel type complex64"):
        read_image(complex_tif)


def test_pairing_warns_about_orphans_and_goes_on(tmp_path):
    images, masks = tmp_path / "train", tmp_path / "train_annot"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b", "lonely_image"):
        tifffile.imwrite(images / f"{name}.tif", np.zeros((2, 2), np.uint8))
    for name in ("a", "b", "lonely_mask"):
        tifffile.imwrite(masks / f"{name}_mask.tif", np.zeros((2, 2), np.uint8))
    with pytest.warns(UserWarning) as record:
        pairs = pair_by_name(images, masks, lambda p: [f"{p.stem}_mask.tif"])
    assert [(i.name, m.name) for i, m in pairs] == [("a.tif", "a_mask.tif"), ("b.tif", "b_mask.tif")]
    messages = " ".join(str(r.message) for r in record)
    assert "lonely_image.tif" in messages and "lonely_mask_mask.tif" in messages


def test_pairing_without_orphans_is_silent(tmp_path):
    for folder in ("i", "m"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "a.tif", np.zeros((2, 2), np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(pair_by_name(tmp_path / "i", tmp_path / "m", lambda p: [p.name])) == 1


def test_microlite_reads_a_sixteen_bit_png_through_the_same_reader(tmp_path):
    """MicroLite's specimens used PIL's own 8-bit conversion, which clips 16-bit values to white."""
    from datamodules.microlite import load_specimen

    ramp = np.tile(np.arange(64, dtype=np.uint16) * 64, (64, 1))  # 12-bit values
    Image.fromarray(ramp).save(tmp_path / "tem.png")
    grey = load_specimen(tmp_path / "tem.png", 32)
    assert np.array_equal(grey[0], read_image(tmp_path / "tem.png")[0, :, 0])
    assert grey.min() == 0 and grey.max() == 255
