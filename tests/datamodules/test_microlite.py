"""MicroLite classification datamodule: annotation removal, tiling, leakage-free split, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.io import DataError
from datamodules.microlite import MicroLite, load_specimen, tile_starts
from datamodules.scale_bars import specimen_rows


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A busy grey micrograph-like texture (mid-grey, never saturated)."""
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, size=(h, w), dtype=np.uint8)


def test_bottom_data_band_with_text_is_cropped():
    image = _texture(200, 300)
    image[170:] = 0  # black SEM data bar
    image[180:190, 20:120:3] = 255  # white "text" strokes inside it
    assert specimen_rows(image) == (0, 170)


def test_top_white_band_is_cropped():
    image = _texture(200, 300)
    image[:25] = 255
    assert specimen_rows(image) == (25, 200)


def test_scale_bar_on_specimen_is_cut_with_its_label_margin():
    image = _texture(200, 300)
    image[180:184, 200:280] = 255  # a solid white scale bar near the bottom right
    top, bottom = specimen_rows(image)
    assert top == 0
    assert bottom <= 180 - 10 and bottom >= 150


def test_plain_texture_and_smooth_specimen_are_kept():
    assert specimen_rows(_texture(200, 300)) == (0, 200)
    smooth = np.full((200, 300), 128, np.uint8)  # a flat specimen is not a band: no contrast
    smooth[100:] += 5
    assert specimen_rows(smooth) == (0, 200)


def test_tile_starts_cover_edge_to_edge_with_overlap():
    assert tile_starts(512, 512) == [0]
    assert tile_starts(1024, 512) == [0, 512]
    starts = tile_starts(783, 512)
    assert starts == [0, 271] and starts[-1] + 512 == 783


def _image_folder(root: Path, classes: int = 3, per_class: int = 5) -> Path:
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            h, w = (96, 150) if i % 2 else (40, 50)  # one needs 2 overlapping tiles, one is resized up
            Image.fromarray(_texture(h, w, seed=10 * c + i)).save(folder / f"img{i}.png")
    (root / "notes.txt").write_text("not a class")
    return root


def test_datamodule_on_synthetic_image_folder(tmp_path):
    dm = MicroLite(
        _image_folder(tmp_path),
        batch_size=4,
        num_workers=0,
        tile_size=64,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    assert dm.num_classes == 3 and dm.class_names == ["class0", "class1", "class2"]
    dm.setup("fit")
    sources = {split: {t.path for t in ds.tiles} for split, ds in dm.datasets.items()}
    assert not (sources["train"] & sources["val"]) and not (sources["train"] & sources["test"])
    assert not (sources["val"] & sources["test"])
    for split in ("val", "test"):  # stratified: one image of each class per split
        assert sorted(t.label for t in dm.datasets[split].tiles if t.left == 0 and t.top == 0) == [0, 1, 2]
    image, label = next(iter(dm.train_dataloader()))
    assert image.shape == (4, 3, 64, 64) and image.dtype == torch.float32
    assert label.dtype == torch.int64
    val_a = next(iter(dm.val_dataloader()))[0]
    val_b = next(iter(dm.val_dataloader()))[0]
    assert torch.equal(val_a, val_b)  # evaluation is deterministic


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="missing"):  # DataError: the CLI prints one line, no traceback
        MicroLite(tmp_path / "missing")
    (tmp_path / "only").mkdir()
    Image.fromarray(_texture(64, 64)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match=str(tmp_path)):
        MicroLite(tmp_path)


def test_four_images_a_class_still_give_every_split_one_of_each(tmp_path):
    """Before: fraction 0.1 of 4 rounded to 0, the val split was empty, and fit failed after an epoch."""
    dm = MicroLite(_image_folder(tmp_path, per_class=4), num_workers=0, tile_size=64)
    dm.setup("fit")
    for split, count in (("train", 2), ("val", 1), ("test", 1)):
        images = {(t.path, t.label) for t in dm.datasets[split].tiles}
        assert sorted(label for _, label in images) == sorted(list(range(3)) * count), split


def test_too_few_images_or_an_empty_split_fail_before_training(tmp_path):
    _image_folder(tmp_path, per_class=2)
    with pytest.raises(DataError, match=r"class0: 2 image\(s\), too few .*test_fraction: 0"):
        MicroLite(tmp_path, num_workers=0, tile_size=64).setup("fit")
    with pytest.raises(DataError, match=r"the val split is empty .*val_fraction > 0"):
        MicroLite(tmp_path, num_workers=0, tile_size=64, val_fraction=0, test_fraction=0).setup("fit")


@pytest.mark.real_data
def test_microlite_mini(microlite_root):
    dm = MicroLite(microlite_root, batch_size=8, num_workers=0, image_size=64)
    assert dm.num_classes == 10 and "uhcs" in dm.class_names
    dm.setup("fit")
    sources = {split: {t.path for t in ds.tiles} for split, ds in dm.datasets.items()}
    assert sum(len(s) for s in sources.values()) == 300
    assert not (
        sources["train"] & sources["val"]
        or sources["train"] & sources["test"]
        or sources["val"] & sources["test"]
    )
    assert {t.label for t in dm.datasets["val"].tiles} == set(range(10))
    image, label = next(iter(dm.train_dataloader()))
    assert image.shape == (8, 3, 64, 64) and label.dtype == torch.int64
    for tile in dm.datasets["train"].tiles[:20]:  # every tile lies inside its annotation-free specimen
        h, w = load_specimen(tile.path, 512).shape
        assert min(h, w) >= 512 and tile.top + 512 <= h and tile.left + 512 <= w
