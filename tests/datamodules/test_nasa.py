"""The NASA benchmark from ../shared: counts, decoding, pairing, augmentation, untouched eval splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules import EBC1, EBC2, EBC3, Super1, Super2, Super3, Super4
from datamodules.download import EXPECTED, fetch, verify
from datamodules.io import pair_by_name
from datamodules.nasa import SPLIT_FOLDERS
from experiments.data_cmd import class_fractions

pytestmark = pytest.mark.real_data

#: images that pair with a mask in the shared copy (two EBC1/EBC3 training images are missing there)
PAIRED = {name: dict(splits) for name, splits in EXPECTED.items()}
PAIRED["EBC1"]["train"] = 16
PAIRED["EBC3"]["train"] = 13
MISSING = {"120718#4-B1_50cyc_14260025.tif", "122018#3_100cyc-1426C0017.tif"}


@pytest.mark.parametrize("cls", [Super1, Super2, Super3, Super4, EBC1, EBC2, EBC3])
def test_pairs_per_split(nasa_root, cls, recwarn):
    dm = cls(root=str(nasa_root))
    assert verify(nasa_root / cls.folder) == []
    for split in ["train", "val", *dm.test_set_names]:
        folder = nasa_root / cls.folder / SPLIT_FOLDERS[split]
        pairs = pair_by_name(folder, folder.with_name(folder.name + "_annot"), dm.mask_names)
        assert len(pairs) == PAIRED[cls.folder][SPLIT_FOLDERS[split]], split


@pytest.mark.parametrize("name", ["EBC1", "EBC3"])
def test_missing_training_images_warn_by_name(nasa_root, name):
    folder = nasa_root / name / "train"
    with pytest.warns(UserWarning) as record:
        pair_by_name(folder, folder.with_name("train_annot"), lambda p: [p.name])
    warned = {name for name in MISSING if any(name in str(r.message) for r in record)}
    assert warned == MISSING


def test_class_fractions_match_the_published_decoding(nasa_root):
    names, super1 = class_fractions("Super1", nasa_root)
    assert names == ["matrix", "secondary", "tertiary"]
    np.testing.assert_allclose(super1["train"], [0.491, 0.488, 0.022], atol=0.005)
    names, ebc1 = class_fractions("EBC1", nasa_root)
    assert names == ["background", "oxide"]
    np.testing.assert_allclose(ebc1["train"], [0.821, 0.179], atol=0.005)
    _, with_crack = class_fractions("EBC1", nasa_root, keep_crack=True)
    assert 0.001 < with_crack["train"][2] < 0.005


def test_data_check_on_shared_copy(nasa_root, capsys):
    from experiments import data_cmd

    assert data_cmd.main(["check", "--dataset", "super1", "--root", str(nasa_root)]) == 0
    out = capsys.readouterr().out
    assert "0.491" in out and "0.488" in out and "0.022" in out


def test_download_from_shared_tarball(nasa_root, tmp_path, capsys):
    from experiments import data_cmd
    from tests.conftest import SHARED

    tarball = str(SHARED / "data" / "nasa-benchmark.tar.gz")
    assert data_cmd.main(["download", "--dataset", "super3", "--root", str(tmp_path), "--from", tarball]) == 0
    assert "Super3: installed" in capsys.readouterr().out
    assert verify(tmp_path / "Super3") == [] and sorted(p.name for p in tmp_path.iterdir()) == ["Super3"]
    assert fetch(["super3"], tmp_path) == {"Super3": "present"}  # no network needed the second time


@pytest.fixture(scope="module")
def super1(nasa_root):
    dm = Super1(root=str(nasa_root), batch_size=2)
    dm.setup("fit")
    return dm


def test_super_batches(super1):
    batch = next(iter(super1.train_dataloader()))
    assert batch["image"].shape == (2, 3, 512, 512) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (2, 512, 512) and batch["mask"].dtype == torch.int64
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 2}
    val = next(iter(super1.val_dataloader()))
    assert val["image"].shape == (1, 3, 512, 512) and isinstance(val["name"][0], str)


def test_val_is_untouched_by_augmentation(super1):
    dataset = super1.dataset("val")
    first, second = dataset[0], dataset[0]
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["mask"], second["mask"])
    raw = super1.samples("val")[0]
    mean, std = torch.tensor(super1.mean)[:, None, None], torch.tensor(super1.std)[:, None, None]
    restored = (first["image"] * std + mean) * 255
    assert torch.allclose(restored, torch.from_numpy(raw.image).permute(2, 0, 1).float(), atol=0.01)
    assert torch.equal(first["mask"], torch.from_numpy(raw.mask).long())


def test_training_is_augmented(super1):
    dataset = super1.dataset("train")
    assert not all(torch.equal(dataset[0]["image"], dataset[0]["image"]) for _ in range(3))


def test_ebc_crops_for_training_whole_images_for_eval(nasa_root):
    dm = EBC2(root=str(nasa_root), batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 512, 512) and batch["mask"].shape == (2, 512, 512)
    val = dm.dataset("val")
    assert val[0]["image"].shape == (3, 1024, 1024)
    assert torch.equal(val[0]["image"], val[0]["image"])
    assert set(np.unique(dm.samples("val")[0].mask)) <= {0, 1}


def test_ebc_nasa_eval_crop_on_the_real_images(nasa_root):
    dm = EBC2(root=str(nasa_root), eval_crop="nasa")
    dm.setup("validate")
    raw, item = dm.samples("val")[0], dm.dataset("val")[0]
    assert item["image"].shape == (3, 512, 512)  # rows 356-868, columns 256-768 of the 1024² image
    assert torch.equal(item["mask"], torch.from_numpy(raw.mask[356:868, 256:768]).long())


def test_ood_test_loader(nasa_root):
    dm = Super3(root=str(nasa_root), scale=0.25)
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert isinstance(loaders, list) and [len(x.dataset) for x in loaders] == [4, 5]
    assert next(iter(loaders[1]))["image"].shape == (1, 3, 128, 128)
