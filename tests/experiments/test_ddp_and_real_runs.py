"""Runs through `python -m experiments`: DDP on 2 CPU processes, two torchrun "nodes" on one machine, and
Super1 fit + test on the shared data."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.cli import cli_main

REPO = Path(__file__).resolve().parents[2]


#: the metrics a distributed validation must reproduce
VAL_KEYS = ("val/iou", "val/iou_matrix", "val/iou_secondary", "val/iou_tertiary", "val/nasa_iou", "val/loss")
#: bounds a run that hangs (a rank waiting for its peer), so CI fails instead of stalling
TIMEOUT_S = 600


def _args(subcommand: str, root: Path, *extra: str) -> list[str]:
    """`python -m experiments <subcommand>` arguments: a tiny U-Net on 5 synthetic 64² validation images."""
    return [
        subcommand, "--data", "datamodules.Synthetic", "--data.size", "64", "--data.num_val", "5",
        "--model", "lightning_modules.UNet", "--model.encoder_name", "resnet18", "--model.weights", "none",
        "--trainer.accelerator=cpu", "--trainer.logger=CSVLogger", f"--trainer.logger.save_dir={root}",
        f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false", *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _metrics(root: Path) -> dict[str, float]:
    """The last logged value of every metric in the run's CSV log."""
    with open(next(root.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    return {k: float(v) for row in rows for k, v in row.items() if v}


def _validate(root: Path, *extra: str) -> dict[str, float]:
    """`validate` in a subprocess (DDP launches its ranks from the command line); the logged metrics."""
    args = [sys.executable, "-m", "experiments", *_args("validate", root, *extra)]
    done = subprocess.run(
        args, cwd=root.parent, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _metrics(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_validation_iou_equals_single_process(tmp_path) -> None:
    # 5 validation images in 3 batches on 2 ranks: a padding sampler would count one image twice
    single = _validate(tmp_path / "single", "--data.eval_batch_size=2")
    ddp = _validate(
        tmp_path / "ddp", "--data.eval_batch_size=2", "--trainer.strategy=ddp", "--trainer.devices=2"
    )
    for key in VAL_KEYS:
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key


@pytest.mark.slow
def test_two_node_torchrun_training_validates_like_one_process(tmp_path) -> None:
    """The README's torchrun recipe on one machine: two launchers (node ranks 0 and 1) meet at 127.0.0.1.

    They train one epoch (3 images, one per batch: the distributed sampler gives each node 2, so 2
    steps where one process would make 3) reading lazily, then validate 5 images split 3/2 over the
    nodes; one process validating the saved weights must log the same numbers.
    """
    root, port = tmp_path / "two_nodes", _free_port()
    fit = _args(
        "fit", root, "--data.num_train=3", "--data.batch_size=1", "--data.storage=lazy",
        "--trainer.max_epochs=1", "--trainer.strategy=ddp", "--trainer.num_nodes=2", "--trainer.devices=1",
    )  # fmt: skip
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    launchers = []
    for rank, log in enumerate(logs):
        torchrun = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
            f"--node-rank={rank}", "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "experiments",
        ]  # fmt: skip
        with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall a node mid-run
            launchers.append(
                subprocess.Popen(
                    [*torchrun, *fit],
                    cwd=tmp_path,
                    env=_env(),
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            )
    try:
        for launcher in launchers:
            launcher.wait(timeout=TIMEOUT_S)
    finally:  # a launcher still running (a timeout) goes with its worker process
        for launcher in launchers:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
    for rank, launcher in enumerate(launchers):
        assert launcher.returncode == 0, f"node {rank}:\n{logs[rank].read_text()[-3000:]}"
    two_nodes = _metrics(root)
    last = root / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 2
    single = _validate(tmp_path / "single", f"--ckpt_path={last}")
    for key in VAL_KEYS:
        assert two_nodes[key] == pytest.approx(single[key], abs=1e-6), key


@pytest.mark.slow
def test_requeued_slurm_job_resumes_from_its_last_checkpoint(tmp_path, monkeypatch, caplog) -> None:
    """The README's SLURM recipe: Lightning finds SLURM by itself (auto-requeue on), and the same command
    with `--ckpt_path last` starts fresh the first time and resumes when the job is requeued."""
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "microseg", "SLURM_JOB_ID": "42", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "127.0.0.1"}  # fmt: skip
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    # another test in this worker may have left Lightning's logger at WARNING (predict_archive quietens it)
    caplog.set_level(logging.INFO, logger="lightning.pytorch")
    root = tmp_path / "run"
    command = [
        "fit", "--data", "datamodules.Synthetic", "--data.size=64", "--data.num_train=2", "--data.num_val=1",
        "--data.batch_size=1", "--model", "lightning_modules.UNet", "--model.encoder_name=resnet18",
        "--model.weights=none", "--trainer.accelerator=cpu", "--trainer.logger=false",
        f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false", "--ckpt_path=last",
    ]  # fmt: skip
    first = cli_main([*command, "--trainer.max_epochs=1"]).trainer
    assert "SLURM auto-requeueing enabled" in caplog.text  # Lightning's SLURMEnvironment, found by itself
    assert first.ckpt_path is None and first.global_step == 2  # nothing to resume yet
    requeued = cli_main([*command, "--trainer.max_epochs=2"]).trainer
    assert requeued.ckpt_path == str(root / "checkpoints" / "last.ckpt")
    assert requeued.global_step == 4 and requeued.current_epoch == 2


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
