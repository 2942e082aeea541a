"""Kinds declared once: data config -> model hyperparameters (CLI link) -> checkpoint -> predict -> measure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from experiments.apply import measure as measure_cmd
from experiments.apply import predict as predict_cmd
from experiments.cli import cli_main
from lightning_modules.checkpoint import load_segmenter
from lightning_modules.nets import NETS
from tests.experiments.stand_in import IMAGENET_MEAN, IMAGENET_STD, BrightnessNet


def test_the_cli_links_the_data_kinds_into_the_model(tmp_path):
    classes = [{"name": "substrate", "index": 0}, {"name": "oxide", "index": 1, "kind": "layer"}]
    data = {"data": {"class_path": "datamodules.FolderSegmentation",
                     "init_args": {"root": str(tmp_path), "classes": classes}}}  # fmt: skip
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(data))
    args = ["--config", str(tmp_path / "lab.yaml"), "--config", "models/unet.yaml", "--trainer.logger=false",
            "--model.init_args.weights=none", "--model.init_args.encoder_name=resnet18"]  # fmt: skip
    cli = cli_main(args, run=False)
    assert cli.model.hparams.class_kinds == ["matrix", "layer"]


def _checkpoint(path, kinds: list[str] | None) -> None:
    hp = {"net": "brightness", "net_kwargs": {}, "num_classes": 2,
          "class_names": ["substrate", "oxide"], "class_colors": [(0, 0, 0), (255, 0, 0)],
          "mean": IMAGENET_MEAN, "std": IMAGENET_STD}  # fmt: skip
    if kinds is not None:
        hp["class_kinds"] = kinds
    net = BrightnessNet(2)
    torch.save(
        {"hyper_parameters": hp, "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path
    )


@pytest.fixture
def band_image(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setitem(NETS, "brightness", BrightnessNet)
    image = np.zeros((96, 160), np.uint8)
    image[40:60] = 220  # a bright, level oxide band 20 px thick
    Image.fromarray(image).save(tmp_path / "cross_section.png")
    return tmp_path / "cross_section.png"


def test_predict_measures_the_checkpoint_layer_and_measure_reuses_it(tmp_path, band_image, capsys):
    _checkpoint(tmp_path / "ebc.ckpt", ["matrix", "layer"])
    assert load_segmenter(tmp_path / "ebc.ckpt")[1].class_kinds == ["matrix", "layer"]
    out = tmp_path / "out"
    argv = ["--ckpt", str(tmp_path / "ebc.ckpt"), "--input", str(band_image), "--output", str(out), "--quiet"]
    assert predict_cmd.main(argv) == 0
    assert json.loads((out / "classes.json").read_text())["class_kinds"] == ["matrix", "layer"]
    summary = json.loads((out / "cross_section_measurements.json").read_text())
    assert summary["layers"]["oxide"]["thickness_px"]["mean"] == pytest.approx(20, abs=1.5)
    assert "warning" not in capsys.readouterr().err
    assert (
        measure_cmd.main(["--masks", str(out), "--quiet"]) == 0
    )  # no flag: classes.json says oxide is a layer
    assert "oxide" in json.loads((out / "cross_section_measurements.json").read_text())["layers"]


def test_an_old_checkpoint_without_kinds_warns_once_and_layer_classes_still_work(
    tmp_path, band_image, capsys
):
    _checkpoint(tmp_path / "old.ckpt", None)
    assert load_segmenter(tmp_path / "old.ckpt")[1].class_kinds == []
    argv = ["--ckpt", str(tmp_path / "old.ckpt"), "--input", str(band_image), "--quiet"]
    assert predict_cmd.main([*argv, "--output", str(tmp_path / "a")]) == 0
    assert "declares no class kinds" in capsys.readouterr().err
    assert (
        "oxide" in json.loads((tmp_path / "a" / "cross_section_measurements.json").read_text())["particles"]
    )
    assert predict_cmd.main([*argv, "--output", str(tmp_path / "b"), "--layer-classes", "oxide"]) == 0
    assert "oxide" in json.loads((tmp_path / "b" / "cross_section_measurements.json").read_text())["layers"]
    assert predict_cmd.main([*argv, "--output", str(tmp_path / "c"), "--layer-classes", "oxyde"]) == 2
    assert "no such class" in capsys.readouterr().err
