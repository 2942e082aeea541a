"""End to end: the local sweep runner trains a 2-run grid on Super-1, then `table 4` reads its results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
TINY_RUN = [
    "--data.init_args.scale=0.125", "--data.init_args.num_workers=0", "--data.init_args.persistent_workers=false",
    "--data.init_args.pin_memory=false", "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=2",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.real_data
def test_sweep_runner_then_table4(tmp_path, nasa_root):
    grid = {
        "program": "experiments/__main__.py",
        "command": ["${env}", "${interpreter}", "-m", "experiments", "run", "${args}"],
        "method": "grid",
        "parameters": {
            "dataset": {"value": "super1"},
            "setup": {"values": ["model=unet,encoder=resnet18,weights=none", "model=unetplusplus,encoder=resnet18,weights=none"]},
            "seed": {"value": 0},
        },
    }  # fmt: skip
    sweep_file = tmp_path / "two.yaml"
    sweep_file.write_text(yaml.safe_dump(grid, sort_keys=False))
    runs = tmp_path / "outputs"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "experiments", "sweep", str(sweep_file), "--runs-dir", str(runs), "--extra",
               f"--data.init_args.root={nasa_root}", *TINY_RUN]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("unet_resnet18_none_s0", "unetplusplus_resnet18_none_s0"):
        assert (runs / "super1" / name / "results.json").is_file()
        assert (runs / "super1" / name / "checkpoints" / "best.ckpt").is_file()
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "2 done, 0 to run now" in again.stdout  # resumable: nothing is trained twice

    table = [
        sys.executable,
        "-m",
        "experiments",
        "table",
        "4",
        "--runs",
        str(runs),
        "--sweep",
        str(sweep_file),
    ]
    out = subprocess.run(table, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert next(line for line in lines if line.startswith("| dataset")).startswith(
        "| dataset | unet | unetplusplus | paper: CS-UNet (microscopy) |"
    )
    row = next(line for line in lines if line.startswith("| Super-1"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "Super-1" and cells[3] == "96.43"
    assert sum(c.startswith("**") for c in cells[1:3]) >= 1  # the better of the two is bold
    assert (runs / "tables" / "table4.csv").is_file()
