"""One test per kind of bad input: each raises DataError naming the file and saying what to do."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from datamodules import EBC2, DataError, FolderSegmentation, Super1
from datamodules.io import read_image
from datamodules.masks import EBC_MERGED, decode_indices
from tests.datamodules.helpers import write_set


def test_missing_data_root(tmp_path):
    dm = Super1(root=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"nowhere.*data download"):
        dm.setup("fit")


def test_empty_split(tmp_path):
    write_set(tmp_path, "Super1", counts={"train": 2, "val": 0, "test": 1})
    with pytest.raises(DataError, match=r"Super1/val.*no image/mask pairs"):
        Super1(root=str(tmp_path)).setup("validate")


def test_corrupt_tiff(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"this is not a tiff" * 10)
    with pytest.raises(DataError, match=r"broken\.tif.*corrupt.*replace"):
        read_image(path)


def test_truncated_tiff(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.zeros((64, 64, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"cut\.tif.*truncated"):
        read_image(path)


def test_truncated_tiff_in_a_set(tmp_path):
    set_dir = write_set(tmp_path, "Super1", size=32)
    victim = set_dir / "train" / "img1.tif"
    victim.write_bytes(victim.read_bytes()[:500])
    with pytest.raises(DataError, match="img1.tif"):
        Super1(root=str(tmp_path)).setup("fit")


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)

    def denied(*args, **kwargs):  # chmod 0 does not stop root, so deny the read itself
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("datamodules.io.Image.open", denied)
    with pytest.raises(DataError, match=r"locked\.png.*Permission denied.*permissions"):
        read_image(path)


def test_image_mask_size_mismatch(tmp_path):
    set_dir = write_set(tmp_path, "EBC2", size=8)
    tifffile.imwrite(set_dir / "val_annot" / "img0.tif", np.zeros((6, 8), np.uint8))
    with pytest.raises(DataError, match=r"val_annot/img0\.tif.*differs from image.*img0\.tif"):
        EBC2(root=str(tmp_path)).setup("validate")


def test_ebc_value_outside_class_map(tmp_path):
    with pytest.raises(DataError, match=r"mask7\.tif.*\[3\].*outside the class map"):
        decode_indices(np.array([[0, 3]], np.uint8), EBC_MERGED, tmp_path / "mask7.tif")


def test_rgb_colour_not_in_class_list(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "masks").mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / split / "images" / "a.png")
        mask = np.zeros((4, 4, 3), np.uint8)
        mask[1, 2] = (0, 200, 0)
        Image.fromarray(mask).save(tmp_path / split / "masks" / "a.png")
    classes = [{"name": "bg", "color": [0, 0, 0]}, {"name": "pore", "color": [255, 0, 0]}]
    dm = FolderSegmentation(root=str(tmp_path), classes=classes)
    with pytest.raises(DataError, match=r"masks/a\.png.*colour \(0, 200, 0\).*not in the class list"):
        dm.setup("fit")


def _lab_set(root, image_name: str, mask: np.ndarray, mask_name: str, **save) -> None:
    """train/ and val/ with one image/mask pair each, the mask written by PIL (``save``: e.g. quality)."""
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        Image.fromarray(np.full(mask.shape[:2], 90, np.uint8)).save(root / split / "images" / image_name)
        Image.fromarray(mask).save(root / split / "masks" / mask_name, **save)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([{"name": "matrix", "index": 0}, {"name": "pore", "index": 255}, {"name": "crack", "index": 255}],
         r"classes\[2\] \(crack\): index 255 is also given to data\.init_args\.classes\[1\] \(pore\)"),
        ([{"name": "bg", "color": [0, 0, 0]}, {"name": "a", "color": [255, 0, 0]}, {"name": "b", "color": [255, 0, 0]}],
         r"classes\[2\] \(b\): color \(255, 0, 0\) is also given to .*classes\[1\] \(a\)"),
        ([{"name": "bg", "index": 0}, {"name": "bg", "index": 1}], r"classes\[1\] \(bg\): name bg is also given"),
    ],
)  # fmt: skip
def test_a_repeated_class_index_colour_or_name_is_refused(classes, message):
    """Before: accepted, and one of the two classes silently never got a pixel."""
    with pytest.raises(DataError, match=message):
        FolderSegmentation(root=".", classes=classes)


def test_jpeg_index_mask_says_jpeg_is_lossy(tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    mask[5:21, 7:27] = 255  # edges off the 8x8 JPEG blocks: their values ring
    _lab_set(tmp_path, "a.png", mask, "a.jpg", quality=75)
    classes = [{"name": "matrix", "index": 0}, {"name": "pore", "index": 255}]
    with pytest.raises(DataError, match=r"masks/a\.jpg: mask values .* JPEG is lossy.* PNG or TIFF"):
        FolderSegmentation(root=str(tmp_path), classes=classes).setup("fit")


def test_jpeg_colour_mask_says_jpeg_is_lossy(tmp_path):
    mask = np.zeros((32, 32, 3), np.uint8)
    mask[5:21, 7:27] = (255, 0, 0)
    _lab_set(tmp_path, "a.png", mask, "a.jpeg", quality=75)
    classes = [{"name": "bg", "color": [0, 0, 0]}, {"name": "pore", "color": [255, 0, 0]}]
    with pytest.raises(DataError, match=r"masks/a\.jpeg: colour .* JPEG is lossy.* PNG or TIFF"):
        FolderSegmentation(root=str(tmp_path), classes=classes).setup("fit")


def test_names_pair_whatever_their_case(tmp_path):
    """`s0.PNG` with `s0_mask.TIF` (the README: a mask has its image's stem, any extension)."""
    mask = np.zeros((8, 8), np.uint8)
    mask[4:] = 1
    _lab_set(tmp_path, "s0.PNG", mask, "s0_mask.TIF")
    dm = FolderSegmentation(
        root=str(tmp_path), classes=[{"name": "bg", "index": 0}, {"name": "a", "index": 1}]
    )
    dm.setup("fit")
    assert [s.name for s in dm.samples("train")] == ["s0"] and dm.samples("val")[0].mask[4:].all()
