"""Sample storage: in memory or decoded per sample, chosen against a memory budget; the on-disk cache."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import DataError, FolderSegmentation, Synthetic
from datamodules import samples as storage
from datamodules.decoded_cache import DecodedCache
from datamodules.samples import BYTES_PER_PIXEL, LazySamples, memory_budget

CLASSES = [{"name": "matrix", "index": 0}, {"name": "pore", "index": 255}]


def _write_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (24, 40)) -> Path:
    """Split folders of grey PNG micrographs with index masks (pore = bright pixels); sizes vary."""
    rng = np.random.default_rng(0)
    for split, n in counts.items():
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = size[0] + 4 * (i % 3), size[1] - 2 * (i % 2)
            grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
            Image.fromarray(grey).save(root / split / "images" / f"{split}{i}.png")
            Image.fromarray(np.where(grey > 128, 255, 0).astype(np.uint8)).save(
                root / split / "masks" / f"{split}{i}.png"
            )
    return root


def _folder_dm(root: Path, **kwargs) -> FolderSegmentation:
    return FolderSegmentation(root=str(root), classes=CLASSES, batch_size=2, crop_size=16, **kwargs)


def _count_reads(monkeypatch) -> list[Path]:
    """Every image file the samples decode, in order."""
    reads: list[Path] = []
    real = storage.read_image

    def counting(path, *args):
        reads.append(Path(path))
        return real(path, *args)

    monkeypatch.setattr(storage, "read_image", counting)
    return reads


def _epoch(dm, seed: int = 0) -> list[dict]:
    torch.manual_seed(seed)
    return list(dm.train_dataloader())


@pytest.mark.parametrize("kind", ["folder", "synthetic"])
def test_lazy_batches_equal_in_memory_batches(tmp_path, kind):
    """Same samples, same augmentations (albumentations is seeded from torch per sample) in both modes."""
    if kind == "folder":
        root = _write_folder(tmp_path, {"train": 5, "val": 3})
        memory, lazy = (_folder_dm(root, scale=0.5, storage=s) for s in ("memory", "lazy"))
    else:
        memory, lazy = (
            Synthetic(kind="ebc", size=32, num_train=5, num_val=3, batch_size=2, crop_size=16, storage=s)
            for s in ("memory", "lazy")
        )
    for dm in (memory, lazy):
        dm.setup("fit")
    assert memory.storage_plans["train"].mode == "memory" and lazy.storage_plans["train"].mode == "lazy"
    assert isinstance(lazy.samples("train"), LazySamples) and isinstance(memory.samples("train"), list)
    for a, b in zip(_epoch(memory), _epoch(lazy), strict=True):
        assert a["name"] == b["name"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    for a, b in zip(memory.samples("val"), lazy.samples("val")[:], strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    if kind == "folder":  # both modes resize by `scale` (24x40 files at 0.5)
        assert lazy.samples("val")[0].mask.shape == (12, 20)


def test_auto_holds_what_fits_the_budget_and_reads_the_rest_lazily(tmp_path):
    root = _write_folder(tmp_path, {"train": 6, "val": 2})
    dm = _folder_dm(root)
    dm.setup("fit")  # the default budget: a quarter of this machine's memory
    train, val = dm.storage_plans["train"], dm.storage_plans["val"]
    assert train.mode == val.mode == "memory" and "within the budget" in train.reason
    # the header estimate is exact: 4 bytes per pixel (RGB image + mask)
    decoded = sum(s.image.nbytes + s.mask.nbytes for s in dm.samples("train"))
    assert train.decoded_bytes == decoded == BYTES_PER_PIXEL * sum(s.mask.size for s in dm.samples("train"))

    # a budget the training split fits, but not together with the validation split
    tight = _folder_dm(root, memory_budget=(train.decoded_bytes + val.decoded_bytes // 2) / 2**30)
    tight.setup("fit")
    assert tight.storage_plans["train"].mode == "memory"
    assert tight.storage_plans["val"].mode == "lazy" and "> the budget" in tight.storage_plans["val"].reason

    small = _folder_dm(root, memory_budget=1e-6, scale=0.5)
    small.setup("fit")
    assert small.storage_plans["train"].mode == "lazy"
    assert small.storage_plans["train"].decoded_bytes == pytest.approx(train.decoded_bytes / 4, rel=0.1)


def test_lazy_decodes_each_access_and_memory_decodes_once(tmp_path, monkeypatch):
    root = _write_folder(tmp_path, {"train": 4, "val": 1})
    reads = _count_reads(monkeypatch)
    lazy = _folder_dm(root, storage="lazy")
    lazy.setup("fit")
    assert reads == []  # headers only
    _epoch(lazy), _epoch(lazy)
    assert len(reads) == 2 * 4
    reads.clear()
    memory = _folder_dm(root, storage="memory")
    memory.setup("fit")
    _epoch(memory), _epoch(memory)
    assert len(reads) == 4 + 1


def test_lazy_setup_rejects_a_mask_of_another_size_from_the_headers(tmp_path, monkeypatch):
    root = _write_folder(tmp_path, {"train": 3, "val": 1})
    bad = root / "train" / "masks" / "train1.png"
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(bad)
    reads = _count_reads(monkeypatch)
    with pytest.raises(DataError, match=r"train1\.png: mask size 7x5 differs"):
        _folder_dm(root, storage="lazy").setup("fit")
    assert reads == []


def test_disk_cache_is_reused_and_follows_files_and_settings(tmp_path, monkeypatch):
    root = _write_folder(tmp_path / "data", {"train": 3, "val": 1})
    cache = tmp_path / "cache"
    first = _folder_dm(root, storage="lazy", cache_dir=str(cache), scale=0.5)
    first.setup("fit")
    decoded = [(s.image.copy(), s.mask.copy()) for s in first.samples("train")]
    assert len(list(cache.glob("*.image.npy"))) == 3

    reads = _count_reads(monkeypatch)
    again = _folder_dm(root, storage="lazy", cache_dir=str(cache), scale=0.5)
    again.setup("fit")
    hits = again.samples("train")[:]
    assert reads == []
    for (image, mask), s in zip(decoded, hits, strict=True):
        assert (
            isinstance(s.image, np.memmap) and np.array_equal(s.image, image) and np.array_equal(s.mask, mask)
        )
    _epoch(again)  # crops of memory-mapped arrays go through the whole pipeline

    # an edited mask is decoded anew (its mtime and size are in the key) ...
    edited = root / "train" / "masks" / "train0.png"
    Image.fromarray(np.full(Image.open(edited).size[::-1], 255, np.uint8)).save(edited)
    os.utime(edited, ns=(1, 1))
    assert again.samples("train")[0].mask.min() == 1 and len(reads) == 1
    # ... and so is everything under other decoding settings (here: the pixel values of the same classes)
    values_swapped = [{"name": "matrix", "index": 255}, {"name": "pore", "index": 0}]
    swapped = FolderSegmentation(
        root=str(root), classes=values_swapped, storage="lazy", cache_dir=str(cache), scale=0.5
    )
    swapped.setup("fit")
    expected = 1 - again.samples("val")[0].mask
    count = len(reads)
    assert np.array_equal(swapped.samples("val")[0].mask, expected) and len(reads) == count + 1


def test_an_unreadable_cache_entry_is_decoded_again(tmp_path):
    root = _write_folder(tmp_path / "data", {"train": 1, "val": 1})
    dm = _folder_dm(root, storage="lazy", cache_dir=str(tmp_path / "cache"))
    dm.setup("fit")
    good = dm.samples("train")[0].image.copy()
    (entry,) = (tmp_path / "cache").glob("train0-*.image.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # a truncated file, e.g. a disk that filled up
    assert np.array_equal(dm.samples("train")[0].image, good)
    assert np.array_equal(np.load(entry), good)  # and rewritten


def test_cache_folder_that_cannot_be_created_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="data.cache_dir to a writable folder"):
        DecodedCache(blocker / "cache", "token")


def test_pickled_dataset_carries_settings_not_the_trainer_or_decoded_splits(tmp_path):
    """Spawned DataLoader workers (macOS, Windows) receive the dataset pickled, sources' decoders included."""
    root = _write_folder(tmp_path, {"train": 2, "val": 2})
    dm = _folder_dm(root, storage="lazy")
    # stands for the trainer: not picklable here (a lambda), and tens of MB with the model in a real run
    dm.trainer = SimpleNamespace(num_devices=1, strategy=lambda: None)
    dm.setup("fit")
    dm._cache["val"] = [dm.samples("val")[0]]  # as if decoded into memory
    clone = pickle.loads(pickle.dumps(dm.dataset("train")))
    owner = clone.samples.sources[0].decode.__self__
    assert owner.trainer is None and owner._cache == {}
    torch.manual_seed(0)
    copied = clone[0]
    torch.manual_seed(0)
    assert torch.equal(copied["image"], dm.dataset("train")[0]["image"])


def test_default_budget_is_a_quarter_of_memory_shared_by_the_node(monkeypatch, tmp_path):
    monkeypatch.setattr(storage, "memory_limit", lambda: 8 * 2**30)
    assert memory_budget(None, 1)[0] == 2 * 2**30
    budget, origin = memory_budget(None, 4)
    assert budget == 2**29 and "/ 4 processes" in origin
    assert memory_budget(0.5, 4) == (2**29, "512.0 MiB (data.memory_budget)")
    dm = Synthetic(size=32, num_train=2, num_val=1)
    dm.trainer = SimpleNamespace(num_devices=4)  # four DDP ranks on this node
    dm.setup("fit")
    assert "512.0 MiB (a quarter of 8.00 GiB memory / 4 processes" in dm.storage_plans["train"].reason


def test_memory_limit_takes_a_smaller_cgroup_limit(monkeypatch, tmp_path):
    v2, v1 = tmp_path / "memory.max", tmp_path / "limit_in_bytes"
    v2.write_text("max\n")  # cgroup v2 without a limit
    v1.write_text(f"{3 * 2**30}\n")  # e.g. SLURM --mem=3G
    monkeypatch.setattr(storage, "CGROUP_LIMITS", (str(v2), str(v1)))
    assert storage.memory_limit() == 3 * 2**30


def test_settings_out_of_range_are_refused():
    with pytest.raises(ValueError, match="storage must be auto, memory or lazy"):
        Synthetic(storage="lazzy")
    with pytest.raises(ValueError, match="memory_budget is in GiB"):
        Synthetic(memory_budget=-1)
