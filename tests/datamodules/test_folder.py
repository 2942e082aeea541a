"""FolderSegmentation: a lab's own data from one YAML (split folders or one folder + fractions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from PIL import Image

from datamodules import DataError, FolderSegmentation, SegmentationDataModule


def _write(folder: Path, stem: str, mask: np.ndarray, mask_name: str | None = None) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*mask.shape[:2], 3), 90, np.uint8)).save(folder / "images" / f"{stem}.png")
    Image.fromarray(mask).save(folder / "masks" / (mask_name or f"{stem}.png"))


def test_split_folders_with_index_masks(tmp_path):
    mask = np.zeros((12, 16), np.uint8)
    mask[:, 8:] = 255
    for split in ("train", "val", "test"):
        _write(tmp_path / split, f"{split}_a", mask)
    _write(tmp_path / "train", "b", mask, mask_name="b_mask.tif")  # `<stem>_mask`, another extension
    classes = [{"name": "matrix", "index": 0}, {"name": "pore", "index": 255}]
    dm = FolderSegmentation(root=str(tmp_path), classes=classes, batch_size=2, name="lab")
    assert (dm.num_classes, dm.class_names, dm.dataset_name) == (2, ["matrix", "pore"], "lab")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 12, 16) and batch["mask"].dtype == torch.int64
    val = dm.dataset("val")[0]
    assert val["mask"][:, :8].eq(0).all() and val["mask"][:, 8:].eq(1).all()
    dm.setup("test")
    assert next(iter(dm.test_dataloader()))["name"] == ["test_a"]


def test_colour_masks_and_class_colours(tmp_path):
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[4:] = (255, 255, 0)
    for split in ("train", "val"):
        _write(tmp_path / split, "x", mask)
    classes = [{"name": "bg", "color": [0, 0, 0]}, {"name": "crack", "color": [255, 255, 0]}]
    dm = FolderSegmentation(root=str(tmp_path), classes=classes)
    assert dm.class_colors == [(0, 0, 0), (255, 255, 0)]
    dm.setup("test")  # no test/ folder: val is reused
    sample = dm.dataset("test")[0]
    assert sample["mask"][:4].eq(0).all() and sample["mask"][4:].eq(1).all()


def test_one_folder_with_seeded_fractions(tmp_path):
    for i in range(10):
        _write(tmp_path, f"im{i}", np.zeros((4, 4), np.uint8))
    kwargs = {
        "root": str(tmp_path),
        "classes": [{"name": "bg", "index": 0}],
        "split_fractions": (0.6, 0.2, 0.2),
    }
    dm, again = FolderSegmentation(**kwargs), FolderSegmentation(**kwargs)
    names = {s: [x.name for x in dm.samples(s)] for s in ("train", "val", "test")}
    assert [len(v) for v in names.values()] == [6, 2, 2]
    assert len(set(sum(names.values(), []))) == 10
    assert names == {s: [x.name for x in again.samples(s)] for s in names}
    other = FolderSegmentation(**kwargs, split_seed=1)
    assert [x.name for x in other.samples("train")] != names["train"]


@pytest.mark.parametrize(
    "classes",
    [
        [],
        [{"name": "a"}],
        [{"name": "a", "index": 0, "color": [0, 0, 0]}],
        [{"name": "a", "index": 0}, {"name": "b", "color": [1, 2, 3]}],
    ],
)
def test_bad_class_lists_name_the_key(classes):
    with pytest.raises(DataError, match=r"data\.init_args\.classes"):
        FolderSegmentation(root=".", classes=classes)


def test_wrong_layout_says_which_layouts_work(tmp_path):
    with pytest.raises(DataError, match="train/images"):
        FolderSegmentation(root=str(tmp_path), classes=[{"name": "bg", "index": 0}]).setup("fit")


def test_configured_from_yaml_like_lightning_cli(tmp_path):
    for split in ("train", "val"):
        _write(tmp_path / split, "x", np.zeros((8, 8), np.uint8))
    config = {
        "data": {
            "class_path": "datamodules.FolderSegmentation",
            "init_args": {
                "root": str(tmp_path),
                "classes": [{"name": "matrix", "index": 0}, {"name": "pore", "index": 1}],
                "batch_size": 1,
                "scale": 0.5,
            },
        }
    }
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(config))
    parser = ArgumentParser()
    parser.add_argument("--config", action="config")
    parser.add_subclass_arguments(SegmentationDataModule, "data")
    dm = parser.instantiate(parser.parse_args(["--config", str(tmp_path / "lab.yaml")])).data
    assert isinstance(dm, FolderSegmentation) and dm.num_classes == 2 and dm.scale == 0.5
    dm.setup("fit")
    assert dm.dataset("train")[0]["image"].shape == (3, 4, 4)


@pytest.mark.slow
def test_three_image_sizes_train_padded_and_test_in_batches_of_four(tmp_path):
    """A lab's set with three image sizes that Swin-Unet pads inside to three different sizes.

    Training batches of 4 mix sizes (padded, the padding ignored); test batches of 4 hold one size each,
    so every score equals the one with eval_batch_size 1 (padded test batches change them by ~1e-3).
    """
    import lightning as L

    from lightning_modules import SwinUnet

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    sizes = [(36, 60), (70, 40), (50, 100)]
    for split, n in (("train", 6), ("val", 3), ("test", 7)):
        for i in range(n):
            grey = rng.integers(0, 256, sizes[i % 3], dtype=np.uint8)
            mask = np.select([grey > 170, grey > 85], [255, 128], 0).astype(np.uint8)
            _write(tmp_path / split, f"{split}{i}", mask)
            Image.fromarray(grey).save(tmp_path / split / "images" / f"{split}{i}.png")
    classes = [{"name": "matrix", "index": 0}, {"name": "a", "index": 128}, {"name": "b", "index": 255}]
    data = {bs: FolderSegmentation(str(tmp_path), classes, batch_size=4, eval_batch_size=bs) for bs in (1, 4)}
    torch.manual_seed(0)
    model = SwinUnet(num_classes=3, class_names=data[4].class_names)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, data[4])
    scores = {bs: trainer.test(model, data[bs], verbose=False)[0] for bs in (1, 4)}
    assert [len(b["name"]) for b in data[4].test_dataloader()] == [3, 2, 2]
    for key in ("test/iou", "test/iou_matrix", "test/iou_a", "test/iou_b", "test/nasa_iou"):
        assert scores[4][key] == pytest.approx(scores[1][key], abs=1e-6), key
