"""Runs through `python -m experiments`: DDP on 2 CPU processes, and Super1 fit + test on the shared data."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import cli_main

REPO = Path(__file__).resolve().parents[2]


def _validate(root: Path, *extra: str) -> dict[str, float]:
    """`validate` in a subprocess (DDP launches its ranks from the command line); the CSV row of metrics."""
    args = [
        sys.executable, "-m", "experiments", "validate", "--data", "datamodules.Synthetic",
        "--data.size", "64", "--data.num_val", "5", "--model", "lightning_modules.UNet",
        "--model.encoder_name", "resnet18", "--model.weights", "none", "--trainer.accelerator=cpu",
        "--trainer.logger=CSVLogger", f"--trainer.logger.save_dir={root}", f"--trainer.default_root_dir={root}",
        "--trainer.enable_progress_bar=false", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=root.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(next(root.rglob("metrics.csv"))) as f:
        row = next(csv.DictReader(f))
    return {k: float(v) for k, v in row.items() if v}


@pytest.mark.slow
def test_ddp_validation_iou_equals_single_process(tmp_path) -> None:
    # 5 validation images in 3 batches on 2 ranks: a padding sampler would count one image twice
    single = _validate(tmp_path / "single", "--data.eval_batch_size=2")
    ddp = _validate(
        tmp_path / "ddp", "--data.eval_batch_size=2", "--trainer.strategy=ddp", "--trainer.devices=2"
    )
    for key in (
        "val/iou",
        "val/iou_matrix",
        "val/iou_secondary",
        "val/iou_tertiary",
        "val/nasa_iou",
        "val/loss",
    ):
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key


@pytest.mark.slow
@pytest.mark.real_data
def test_super1_fit_then_test_writes_results_and_wandb(nasa_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MICROSEG_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    common = [
        "--config", "super1.yaml", "--config", "models/unet.yaml", "--model.init_args.weights=none",
        "--model.init_args.encoder_name=resnet18", f"--data.init_args.root={nasa_root}",
        "--data.init_args.scale=0.25", "--data.init_args.num_workers=0",
        "--data.init_args.persistent_workers=false", "--data.init_args.pin_memory=false",
        "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu",
    ]  # fmt: skip
    cli_main(["fit", *common, "--trainer.max_epochs=1"])
    run = tmp_path / "outputs" / "super1" / "unet_resnet18_none_s0"
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    cli_main(["test", *common, f"--ckpt_path={run / 'checkpoints' / 'best.ckpt'}"])
    results = json.loads((run / "results.json").read_text())
    assert results["dataset"] == "super1" and results["model"] == "unet" and results["encoder"] == "resnet18"
    assert results["epochs"] == 1 and 0 <= results["metrics"]["test"]["iou"] <= 1
    assert {"iou_matrix", "iou_secondary", "iou_tertiary", "nasa_iou"} <= set(results["metrics"]["test"])
    logs = list((run / "wandb").glob("offline-run-*/*.wandb"))
    assert logs and any(b"val/iou" in log.read_bytes() for log in logs)
    assert list((run / "overlays").glob("test_*.png"))
