"""ResultsWriter: ``<run dir>/results.json`` at the end of ``test`` (format in docs/design.md, "Runs").

Training wall time and epochs are part of this callback's checkpoint state, so a separate
``test --ckpt_path ...`` run reports the numbers of the training that wrote the checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only


def git_commit() -> str | None:
    """The commit of the source tree that ran, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class ResultsWriter(Callback):
    """Write results.json on rank 0 when testing ends (to a temporary file, then renamed: never half-written).

    Args:
        dirpath: folder of results.json; ``None`` is the trainer's ``default_root_dir`` (the run folder).
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath
        self.train_time_s = 0.0
        self.epochs = 0
        self._started: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"train_time_s": self._elapsed(), "epochs": self.epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_time_s = float(state_dict["train_time_s"])
        self.epochs = int(state_dict["epochs"])

    def _elapsed(self) -> float:
        running = time.monotonic() - self._started if self._started is not None else 0.0
        return self.train_time_s + running

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs = trainer.current_epoch + 1

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_time_s, self._started = self._elapsed(), None

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = Path(self.dirpath or trainer.default_root_dir) / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results(trainer, pl_module), indent=2) + "\n")
        os.replace(tmp, path)

    def results(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """The results.json content of the test that just ended."""
        hp = pl_module.hparams
        net_kwargs = dict(hp.get("net_kwargs") or {})
        datamodule = trainer.datamodule
        names = list(getattr(datamodule, "test_set_names", None) or ["test"])
        metrics = {
            name: {
                key.split("/", 1)[1]: float(value)
                for key, value in trainer.callback_metrics.items()
                if key.startswith(f"{name}/") and not key.endswith("/loss")
            }
            for name in names
        }
        return {
            "dataset": getattr(datamodule, "dataset_name", None),
            "model": hp.get("net"),
            "encoder": net_kwargs.get("encoder_name"),
            "swin_depth": net_kwargs.get("depth"),
            "weights": hp.get("weights"),
            "seed": int(os.environ["PL_GLOBAL_SEED"]) if "PL_GLOBAL_SEED" in os.environ else None,
            "epochs": self.epochs,
            "wall_time_s": self._elapsed(),  # full precision: a short run rounds to 0.0
            "git_commit": git_commit(),
            "ckpt_path": str(trainer.ckpt_path) if trainer.ckpt_path else None,
            "class_names": list(hp.get("class_names") or []),
            "metrics": metrics,
        }
