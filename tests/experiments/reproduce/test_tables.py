"""`python -m experiments table N`: layout, best in bold, paper numbers, missing runs, empty folder."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from experiments.reproduce import tables
from experiments.reproduce.run import run_dir

REPO = Path(__file__).resolve().parents[3]


def _write(runs: Path, point: dict, iou: float) -> None:
    folder = run_dir(point, runs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(
        json.dumps({"metrics": {"test": {"iou": iou}, "test_ood": {"iou": iou / 2}}})
    )


def test_table4_best_per_model_bold_and_paper_numbers(tmp_path, capsys):
    setups = {
        "model=unet,encoder=resnet50,weights=micronet": 0.90,
        "model=unet,encoder=resnet50,weights=imagenet-micronet": 0.92,  # the best UNet set-up
        "model=cs_unet,encoder=resnet50,weights=imagenet-micronet+microlite,swin_depth=intermediate": 0.95,
    }
    for setup, iou in setups.items():
        _write(tmp_path, {"dataset": "super1", "setup": setup, "seed": 0}, iou)
    assert tables.main(["4", "--runs", str(tmp_path), "--filter", "dataset=super1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("| dataset"))
    assert header.split(" | ")[1:7] == [
        "unet",
        "unetplusplus",
        "swin_unet",
        "hiformer",
        "transdeeplab",
        "cs_unet",
    ]
    assert "paper: CS-UNet (microscopy)" in header
    row = next(line for line in lines if line.startswith("| Super-1"))
    assert row == "| Super-1 | 92.00 | – | – | – | – | **95.00** | 96.43 |"
    assert "Missing runs (17 of 20" in out
    assert str(tmp_path / "super1" / "swin_unet_microlite_original_s0") in out
    with (tmp_path / "tables" / "table4.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["column"]: round(float(r["mean"]), 2) for r in rows} == {"unet": 92.0, "cs_unet": 95.0}
    assert "weights=imagenet-micronet" in rows[0]["setup"]


def test_nasa_iou_table_beside_the_published_numbers(tmp_path, capsys):
    point = {"dataset": "super1", "setup": "model=unet,encoder=resnet50,weights=micronet", "seed": 0}
    folder = run_dir(point, tmp_path)
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"metrics": {"test": {"iou": 0.8, "nasa_iou": 0.9}}}))
    argv = ["4", "--runs", str(tmp_path), "--filter", "dataset=super1"]
    assert tables.main([*argv, "--metric", "nasa_iou"]) == 0
    out = capsys.readouterr().out
    assert "metric nasa_iou" in out and "| Super-1 | 90.00 | – |" in out
    assert tables.main(argv) == 0
    assert "| Super-1 | 80.00 | – |" in capsys.readouterr().out


def test_mean_and_std_over_seeds(tmp_path, capsys):
    point = {"dataset": "super3", "model": "cs_unet", "encoder": "resnet50", "swin_depth": "original"}
    for seed, iou in enumerate([0.80, 0.82, 0.84]):
        _write(tmp_path, {**point, "weights": "imagenet", "seed": seed}, iou)
    _write(tmp_path, {**point, "weights": "imagenet-micronet+microlite", "seed": 0}, 0.9)
    assert tables.main(["7", "--runs", str(tmp_path), "--filter", "dataset=super3"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| Super-3"))
    assert row == "| Super-3 | 82.00 ± 2.00 | **90.00** | – | – | 93.5 | 87.01 |"
    assert (
        tables.main(["7", "--runs", str(tmp_path), "--filter", "dataset=super3", "--split", "test_ood"]) == 0
    )
    assert "41.00 ± 1.00" in capsys.readouterr().out


def test_empty_runs_folder_explains_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments", "table", "4", "--runs", str(tmp_path / "nothing")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "No results for Table 4" in result.stderr and "experiments sweep" in result.stderr
    assert "Traceback" not in result.stderr
