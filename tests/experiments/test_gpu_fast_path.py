"""On a CUDA GPU: the CLI trains with the fast path, and it reaches the validation IoU of fp32 eager.

Run where a GPU is lent: `pytest -m gpu` (with MICROSEG_SHARED pointing at a copy of ../shared).
`make test` leaves these out (`-m "not gpu"`); without CUDA they skip.
"""

from __future__ import annotations

import pytest
import torch

from callbacks.fast_path import FastPath
from experiments.cli import cli_main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
#: the same short Super1 training for both paths: the demo's recipe (U-Net-ResNet18, half-size 128² crops)
SHORT_RUN = [
    "--config", "demo_super1.yaml", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
    "--trainer.max_time=null", "--trainer.max_epochs=40", "--trainer.accelerator=gpu", "--trainer.devices=1",
]  # fmt: skip


def test_cli_picks_bf16_and_channels_last_on_a_bf16_gpu(tmp_path) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16: the fast path stays fp32")
    cli = cli_main(
        ["--config", "demo.yaml", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"],
        run=False,
    )
    assert cli.trainer.precision == "bf16-mixed"


def _best_val_iou(root, nasa_root, fast: bool) -> float:
    """Best validation IoU of the short run: the CLI's defaults (`fast`), or fp32 eager in NCHW."""
    args = [*SHORT_RUN, f"--data.init_args.root={nasa_root}", f"--trainer.default_root_dir={root}"]
    cli = cli_main(args if fast else [*args, "--trainer.precision=32-true"], run=False)
    for callback in cli.trainer.callbacks:
        if isinstance(callback, FastPath):
            callback.channels_last = None if fast else False
    cli.trainer.fit(cli.model, cli.datamodule)
    return float(cli.trainer.checkpoint_callback.best_model_score)


@pytest.mark.real_data
def test_fast_path_reaches_the_fp32_validation_iou(nasa_root, tmp_path) -> None:
    fp32 = _best_val_iou(tmp_path / "fp32", nasa_root, fast=False)
    fast = _best_val_iou(tmp_path / "fast", nasa_root, fast=True)
    print(f"best val IoU: fp32 eager {fp32:.4f}, fast path {fast:.4f}")
    assert abs(fast - fp32) <= 0.005
