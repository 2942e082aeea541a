"""NASA DataModule classes: linked attributes before any file is read, NASA presets and eval crop."""

from __future__ import annotations

import pytest
import torch

from datamodules import EBC1, EBC2, EBC3, Super1
from datamodules.io import DataError
from datamodules.nasa import NASA_EBC_EVAL_CROP, NASA_SETS
from tests.datamodules.helpers import write_set


def test_contract_attributes_without_reading_files(tmp_path):
    for name, cls in NASA_SETS.items():
        dm = cls(root=str(tmp_path))
        assert dm.dataset_name == name and dm.num_classes == len(dm.class_names) == len(dm.class_colors)
        assert dm.test_set_names == (["test", "test_ood"] if name in ("super2", "super3") else ["test"])
    assert Super1().class_names == ["matrix", "secondary", "tertiary"]
    assert EBC1().class_names == ["background", "oxide"]
    assert EBC1(keep_crack=True).class_names == ["background", "oxide", "crack"]
    assert Super1().crop_size is None and EBC3().crop_size == 512


def test_default_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROSEG_DATA", str(tmp_path))
    assert Super1().root == tmp_path
    monkeypatch.delenv("MICROSEG_DATA")
    assert str(EBC1().root) == "data"


def test_nasa_augment_and_eval_crop_follow_the_material(tmp_path):
    assert Super1().augment == "nasa_super" and EBC3().augment == "nasa_ebc"
    assert Super1(augment="basic").augment == "basic"
    assert Super1(eval_crop="nasa").eval_crop is None  # NASA scores Super on the whole image
    assert EBC1(eval_crop="nasa").eval_crop == NASA_EBC_EVAL_CROP == (256, 356, 768, 868)
    assert EBC1().eval_crop is None
    assert EBC1(eval_crop="nasa", scale=0.5).scaled_eval_crop() == (128, 178, 384, 434)
    with pytest.raises(ValueError, match="x_min < x_max"):
        EBC1(eval_crop=(300, 0, 200, 100))


def test_eval_crop_crops_val_and_test_only(tmp_path):
    write_set(tmp_path, "EBC2", size=64)
    dm = EBC2(root=str(tmp_path), crop_size=32, eval_crop=(8, 16, 40, 56))
    dm.setup("fit")
    for split in ("val", "test"):
        sample, item = dm.samples(split)[0], dm.dataset(split)[0]
        assert item["image"].shape == (3, 40, 32)
        assert torch.equal(item["mask"], torch.from_numpy(sample.mask[16:56, 8:40]).long())
    assert dm.dataset("train")[0]["image"].shape == (3, 32, 32)  # the random training crop


def test_eval_crop_larger_than_the_image_stops_before_training(tmp_path):
    write_set(tmp_path, "EBC2", size=64)
    dm = EBC2(root=str(tmp_path), eval_crop="nasa")
    with pytest.raises(DataError, match=r"img0.tif is 64x64 px .* eval_crop \[256, 356, 768, 868\].* null"):
        dm.setup("fit")
