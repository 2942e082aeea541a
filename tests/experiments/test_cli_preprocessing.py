"""`fit` stores the data set's preprocessing in the checkpoint: intensity rule, scale, trained pixel size."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
import yaml
from PIL import Image

from experiments.cli import cli_main
from lightning_modules.checkpoint import load_segmenter
from tests.tiny import register_tiny


def lab_set(root, pixel_cm: float | None) -> None:
    """Train/val folders of 16-bit 64² TIFFs, with a pixel size in their resolution tags when given."""
    rng = np.random.default_rng(0)
    tags = {"resolution": (pixel_cm, pixel_cm), "resolutionunit": "CENTIMETER"} if pixel_cm else {}
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(2):
            image = rng.integers(0, 4096, (64, 64), dtype=np.uint16)
            tifffile.imwrite(root / split / "images" / f"s{i}.tif", image, **tags)
            Image.fromarray((image > 2048).astype(np.uint8)).save(root / split / "masks" / f"s{i}.png")


def fit(tmp_path, extra_data: dict) -> dict:
    config = {
        "data": {
            "class_path": "datamodules.FolderSegmentation",
            "init_args": {
                "root": str(tmp_path / "set"),
                "classes": [{"name": "matrix", "index": 0}, {"name": "pore", "index": 1}],
                "batch_size": 2,
                "scale": 0.5,
                **extra_data,
            },
        },
        "model": {
            "class_path": "lightning_modules.segmentation.SegmentationModule",
            "init_args": {"net": "tiny"},
        },
    }
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(config))
    cli_main(
        ["fit", "--config", str(tmp_path / "lab.yaml"), "--trainer.logger=false", "--trainer.max_epochs=1",
         "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu",
         f"--trainer.default_root_dir={tmp_path / 'run'}"]
    )  # fmt: skip
    return torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["hyper_parameters"]


@pytest.mark.slow
def test_fit_records_the_rule_the_scale_and_the_pixel_size_of_the_files(tmp_path, monkeypatch):
    register_tiny(monkeypatch)
    torch.set_num_threads(1)
    lab_set(tmp_path / "set", pixel_cm=2.5e6)  # 4 nm per pixel
    hp = fit(tmp_path, {})
    assert hp["intensity"] == "percentile" and hp["scale"] == 0.5
    assert hp["pixel_size_nm"] == pytest.approx(8.0)  # 4 nm files seen at half resolution
    _, meta = load_segmenter(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert (meta.intensity, meta.scale, meta.pixel_size_nm) == ("percentile", 0.5, pytest.approx(8.0))


@pytest.mark.slow
def test_a_configured_pixel_size_and_rule_are_linked(tmp_path, monkeypatch):
    register_tiny(monkeypatch)
    torch.set_num_threads(1)
    lab_set(tmp_path / "set", pixel_cm=None)
    hp = fit(tmp_path, {"pixel_size": "0.5um", "intensity": "bit_depth"})
    assert (hp["intensity"], hp["scale"], hp["pixel_size_nm"]) == ("bit_depth", 0.5, pytest.approx(1000.0))
