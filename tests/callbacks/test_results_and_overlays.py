"""ResultsWriter and PredictionOverlays around a tiny fit + test."""

from __future__ import annotations

import json
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from callbacks import results_writer
from callbacks.overlays import PredictionOverlays, colorize
from callbacks.results_writer import ResultsWriter
from lightning_modules.segmentation import SegmentationModule
from tests.tiny import TinyData, register_tiny


def _trainer(root, callbacks) -> L.Trainer:
    return L.Trainer(
        default_root_dir=root, max_epochs=2, accelerator="cpu", logger=False, callbacks=callbacks,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip


def test_results_json_and_overlays(monkeypatch, tmp_path) -> None:
    register_tiny(monkeypatch)
    L.seed_everything(3)
    data = TinyData(ood=True)
    model = SegmentationModule(
        "tiny", {"width": 4}, 3, data.class_names, data.class_colors, data.mean, data.std
    )
    trainer = _trainer(tmp_path, [ResultsWriter(), PredictionOverlays(num_images=2, every_n_epochs=1)])
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    trainer.test(model, data)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["dataset"] == "tiny" and results["model"] == "tiny" and results["epochs"] == 2
    assert results["seed"] == 3 and results["class_names"] == data.class_names
    assert set(results["metrics"]) == {"test", "test_ood"}
    assert {"iou", "iou_matrix", "iou_secondary", "iou_tertiary", "nasa_iou"} == set(
        results["metrics"]["test"]
    )
    assert results["wall_time_s"] > 0
    png = sorted((tmp_path / "overlays").glob("*.png"))
    assert len(png) == 6  # 2 val + 2 test + 2 test_ood
    assert np.asarray(Image.open(png[0])).shape == (16, 48, 3)

    # a separate test run from the checkpoint reports the training's epochs and time
    other = tmp_path / "again"
    _trainer(other, [ResultsWriter()]).test(model, data, ckpt_path=tmp_path / "m.ckpt")
    again = json.loads((other / "results.json").read_text())
    assert again["epochs"] == 2 and again["wall_time_s"] == results["wall_time_s"]
    assert again["metrics"]["test"]["iou"] == results["metrics"]["test"]["iou"]


def test_a_short_run_keeps_its_wall_time(monkeypatch) -> None:
    """A fit of 40 ms (a patched clock, so no machine is too fast for it) is reported as 0.04 s, not 0.0."""
    clock = iter([100.0, 100.04])
    monkeypatch.setattr(results_writer.time, "monotonic", lambda: next(clock))
    writer = ResultsWriter()
    writer.on_train_start(None, None)
    writer.on_train_end(None, None)
    trainer = SimpleNamespace(datamodule=None, callback_metrics={}, ckpt_path=None)
    results = writer.results(trainer, SimpleNamespace(hparams={}))
    assert results["wall_time_s"] == pytest.approx(0.04)
    assert writer.state_dict()["train_time_s"] == pytest.approx(0.04)


def test_colorize() -> None:
    out = colorize(np.array([[0, 2]]), [(0, 0, 0), (0, 0, 255), (255, 0, 0)])
    assert out.tolist() == [[[0, 0, 0], [255, 0, 0]]]
    assert torch.is_tensor(torch.as_tensor(out))
