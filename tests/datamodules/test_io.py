"""Reading every supported bit depth and channel layout as uint8 RGB; pairing by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from datamodules.io import DataError, pair_by_name, read_image, read_mask, read_size


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
    image = read_image(path)
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8
    assert np.all(np.abs(image.astype(int) - 200) <= 1)


def test_twelve_bit_data_is_stretched_by_its_range(tmp_path):
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, np.array([[0, 4095]], np.uint16))
    assert read_image(path)[..., 0].tolist() == [[0, 255]]


def test_png_grey_and_palette_mask(tmp_path):
    Image.fromarray(np.full((3, 4), 9, np.uint8)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (3, 4, 3)
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png").tolist() == [[0, 1], [1, 0]]
    assert read_mask(tmp_path / "p.png", color=True)[0, 1].tolist() == [255, 0, 0]


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


@pytest.mark.parametrize(
    ("name", "array"),
    [
        ("planar.tif", np.zeros((3, 5, 7), np.uint8)),
        ("rgb16.tif", np.zeros((5, 7, 3), np.uint16)),
        ("grey.png", np.zeros((5, 7), np.uint8)),
        ("rgb.jpg", np.zeros((5, 7, 3), np.uint8)),
    ],
)
def test_header_size_matches_the_decoded_image(tmp_path, name, array):
    path = tmp_path / name
    if name.endswith(".tif"):
        tifffile.imwrite(path, array, photometric="rgb")
    else:
        Image.fromarray(array).save(path)
    assert read_size(path) == read_image(path).shape[:2] == (5, 7)


def test_header_of_a_corrupt_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken\.png: corrupt, truncated or not an image"):
        read_size(path)
