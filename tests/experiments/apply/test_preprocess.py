"""predict sees what training saw: the same tensor for a 16-bit TIFF, and the training resolution.

A model trained at ``scale: 0.5`` must segment a full-resolution image as well as `test` measured on
the halved one; the stand-in network here tells particles apart by their size in pixels, so it fails
badly on an image it sees at twice the training resolution.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from datamodules import FolderSegmentation
from experiments.apply import predict as predict_cmd
from experiments.apply.preprocess import prepare
from lightning_modules.checkpoint import load_segmenter
from lightning_modules.nets import NETS
from tests.experiments.stand_in import write_checkpoint

CLASSES = [{"name": "matrix", "index": 0}, {"name": "large", "index": 1}, {"name": "small", "index": 2}]
NAMES = [c["name"] for c in CLASSES]


class SizeNet(nn.Module):
    """Bright pixels are ``large`` where a 21x21 window around them is mostly bright, else ``small``.

    Calibrated for discs of radius 15 and 5 px (large and small at half resolution): at full resolution
    the small discs (radius 10) fill the window and are taken for large ones.
    """

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = x[:, :1] * 0.229 + 0.485  # undo ImageNet normalisation of channel 0: brightness in 0-1
        crowd = F.avg_pool2d(bright, 21, stride=1, padding=10)
        edge, size = 20 * (bright - 0.5), 20 * (crowd - 0.3)
        return torch.cat([-edge, edge + size, edge - size], dim=1)


def disc_scene(side: int, seed: int = 0) -> list[tuple[float, float, float, int]]:
    """(row, col, radius, class) of 16 discs in a 4x4 grid: large (radius 30) and small (10) alternate."""
    rng = np.random.default_rng(seed)
    step = side // 4
    return [
        (r + rng.uniform(-3, 3), c + rng.uniform(-3, 3), *((30.0, 1) if (i + j) % 2 else (10.0, 2)))
        for i, r in enumerate(range(step // 2, side, step))
        for j, c in enumerate(range(step // 2, side, step))
    ]


def render_mask(discs, side: int, factor: float = 1.0) -> np.ndarray:
    """The exact index mask of the scene on a grid of ``side * factor`` pixels (pixel centres inside discs)."""
    centres = (np.arange(round(side * factor)) + 0.5) / factor - 0.5  # in full-resolution pixels
    mask = np.zeros((centres.size, centres.size), np.uint8)
    for r, c, radius, cls in discs:
        rows = np.flatnonzero(np.abs(centres - r) <= radius)  # the disc's bounding box only
        cols = np.flatnonzero(np.abs(centres - c) <= radius)
        inside = (centres[rows, None] - r) ** 2 + (centres[None, cols] - c) ** 2 <= radius**2
        box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        box[inside] = cls
    return mask


def render_image(discs, side: int) -> np.ndarray:
    """A 16-bit micrograph (12-bit values) of the scene, anti-aliased (4x4 samples per pixel)."""
    inside = render_mask(discs, side, factor=4) > 0
    coverage = inside.reshape(side, 4, side, 4).mean(axis=(1, 3))
    return (400 + 3100 * coverage).astype(np.uint16)


def write_folder(root, image: np.ndarray, mask: np.ndarray) -> None:
    for split in ("train", "val", "test"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        tifffile.imwrite(root / split / "images" / "discs.tif", image)
        Image.fromarray(mask).save(root / split / "masks" / "discs.png")


def foreground_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    ious = [((pred == c) & (truth == c)).sum() / ((pred == c) | (truth == c)).sum() for c in (1, 2)]
    return float(np.mean(ious))


SIDE = 320


@pytest.fixture
def trained_at_half(tmp_path, monkeypatch):
    """A folder set of one 16-bit 320² image, its datamodule at scale 0.5 and a SizeNet checkpoint whose
    preprocessing comes from that datamodule (as the CLI links it)."""
    torch.set_num_threads(1)
    monkeypatch.setitem(NETS, "size", SizeNet)
    discs = disc_scene(SIDE)
    write_folder(tmp_path / "set", render_image(discs, SIDE), render_mask(discs, SIDE))
    data = FolderSegmentation(root=str(tmp_path / "set"), classes=CLASSES, scale=0.5)
    data.setup("test")
    preprocessing = {"intensity": data.intensity, "scale": data.scale, "pixel_size_nm": data.pixel_size_nm}
    ckpt = write_checkpoint(tmp_path / "size.ckpt", SizeNet(), "size", NAMES, **preprocessing)
    return data, ckpt, tmp_path / "set" / "test" / "images" / "discs.tif", discs


def test_predict_feeds_the_net_the_tensor_training_sees_for_a_16bit_tiff(trained_at_half):
    data, ckpt, path, _ = trained_at_half
    seen_in_training = data.dataset("test")[0]["image"]
    _, meta = load_segmenter(ckpt)
    fed_by_predict = prepare(path, meta, meta.intensity).tensor
    assert seen_in_training.shape == (3, SIDE // 2, SIDE // 2)
    assert torch.equal(fed_by_predict, seen_in_training)


def test_full_resolution_predicts_as_well_as_the_halved_image(trained_at_half, tmp_path):
    """Each prediction is scored against the scene's exact mask at its own resolution (the training
    pipeline's nearest-neighbour halving of masks shifts them by half a pixel, which is not the point here)."""
    data, ckpt, path, discs = trained_at_half
    net, _ = load_segmenter(ckpt)
    with torch.inference_mode():
        halved_pred = net(data.dataset("test")[0]["image"][None])[0].argmax(0).numpy()
    halved = foreground_iou(halved_pred, render_mask(discs, SIDE, factor=0.5))
    assert halved > 0.95  # the stand-in does its job at its resolution

    out = tmp_path / "out"
    argv = ["--ckpt", str(ckpt), "--input", str(path), "--quiet", "--no-measure"]
    assert predict_cmd.main([*argv, "--output", str(out)]) == 0
    predicted = np.asarray(Image.open(out / "discs_mask.png"))
    assert predicted.shape == (SIDE, SIDE)
    assert foreground_iou(predicted, render_mask(discs, SIDE)) == pytest.approx(halved, abs=0.01)
    record = json.loads((out / "predictions.json").read_text())["images"]["discs"]
    assert (
        record["network_input_px"] == [SIDE // 2] * 2 and record["resample_basis"] == "the training scale 0.5"
    )

    native = tmp_path / "native"
    argv = [
        "--ckpt",
        str(ckpt),
        "--input",
        str(path),
        "--output",
        str(native),
        "--quiet",
        "--resample",
        "none",
    ]
    assert predict_cmd.main(argv) == 0
    unresampled = np.asarray(Image.open(native / "discs_mask.png"))
    assert foreground_iou(unresampled, render_mask(discs, SIDE)) < halved - 0.3  # what predict did before


def test_resampling_follows_the_pixel_sizes_when_both_are_known(tmp_path, monkeypatch, capsys):
    """Trained on 4 nm files at scale 0.5 (8 nm per network pixel); a 2 nm image is shrunk x0.25."""
    torch.set_num_threads(1)
    monkeypatch.setitem(NETS, "size", SizeNet)
    preprocessing = {"intensity": "percentile", "scale": 0.5, "pixel_size_nm": 8.0}
    ckpt = write_checkpoint(tmp_path / "s.ckpt", SizeNet(), "size", NAMES, **preprocessing)
    zoomed = [(2 * r + 0.5, 2 * c + 0.5, 2 * radius, cls) for r, c, radius, cls in disc_scene(SIDE)]
    image = render_image(zoomed, 2 * SIDE)  # the scene at twice the magnification: 2 nm per pixel
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "zoomed.tif", image, resolution=(5e6, 5e6), resolutionunit="CENTIMETER")
    tifffile.imwrite(folder / "plain.tif", image)
    argv = ["--ckpt", str(ckpt), "--no-measure"]
    assert predict_cmd.main([*argv, "--input", str(folder), "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert (
        "zoomed.tif: 640x640 px, pixel 2 nm (TIFF XResolution (pixels per cm)); "
        "resampled x0.25 to 160x160 px (to the training pixel size 8 nm) and back"
    ) in captured.out
    assert (
        "plain.tif: the network was trained at 8 nm per pixel, but this image records no pixel size"
        in captured.err
    )
    records = json.loads((tmp_path / "out" / "predictions.json").read_text())["images"]
    assert records["plain"]["resample_factor"] == 0.5 and records["zoomed"]["resample_factor"] == 0.25
    predicted = np.asarray(Image.open(tmp_path / "out" / "zoomed_mask.png"))
    assert foreground_iou(predicted, render_mask(zoomed, 2 * SIDE)) > 0.95
    given = tmp_path / "given"
    argv += ["--input", str(folder / "plain.tif"), "--pixel-size", "2nm"]
    assert predict_cmd.main([*argv, "--output", str(given)]) == 0
    assert json.loads((given / "predictions.json").read_text())["images"]["plain"]["resample_factor"] == 0.25


def test_a_checkpoint_without_a_recorded_rule_uses_the_old_training_rule(tmp_path, monkeypatch):
    """Checkpoints written before the rule was stored were trained on power-of-two-range 16-bit images."""
    monkeypatch.setitem(NETS, "size", SizeNet)
    ckpt = write_checkpoint(tmp_path / "old.ckpt", SizeNet(), "size", NAMES)
    _, meta = load_segmenter(ckpt)
    assert (meta.intensity, meta.scale, meta.pixel_size_nm) == ("bit_depth", 1.0, None)
