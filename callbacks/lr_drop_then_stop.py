"""LRDropThenStop: "train until the metric stalls, drop the LR once, stop when it stalls again".

Phase 1 runs at the optimizer's own learning rate until ``monitor`` has not improved for ``patience``
validations. The best weights are then reloaded, the optimizer is rebuilt (fresh state) at ``drop_lr``,
and phase 2 runs until ``patience_after_drop`` more validations without improvement; then training stops.

This is NASA's schedule (their notebooks call ``train_segmentation_model`` at lr 2e-4, then again from
the best model at 1e-5, patience 30 each) with one difference: NASA's second call starts its best score
at 0, so its first epoch is always saved as the best and the final model can be worse than phase 1's
best. Here the best carries over the drop: phase 2 has to beat it (docs/fidelity.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class LRDropThenStop(Callback):
    """Two-phase early stopping with one learning-rate drop; its state is saved in checkpoints.

    Every rank reads the same (already synced) monitored value, and rank 0's decision is broadcast,
    so all processes of a DDP run drop and stop together.
    """

    def __init__(
        self,
        monitor: str = "val/iou",
        patience: int = 30,
        drop_lr: float = 1e-5,
        patience_after_drop: int = 30,
        mode: Literal["max", "min"] = "max",
    ) -> None:
        self.monitor = monitor
        self.patience = patience
        self.drop_lr = drop_lr
        self.patience_after_drop = patience_after_drop
        self.mode = mode
        self.phase = 1
        self.wait = 0
        self.best: float | None = None
        self.best_epoch = -1
        self.dropped_at_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    # -- state in checkpoints (the weights copy is not saved: the best checkpoint holds them) ----
    def state_dict(self) -> dict[str, Any]:
        keys = ("phase", "wait", "best", "best_epoch", "dropped_at_epoch")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key, value in state_dict.items():
            setattr(self, key, value)

    # -- decision ----------------------------------------------------------------------------------
    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (
            trainer.sanity_checking
            or trainer.state.fn != "fit"
            or self.monitor not in trainer.callback_metrics
        ):
            return
        value = float(trainer.callback_metrics[self.monitor])
        value = float(trainer.strategy.broadcast(value, src=0))
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, trainer.current_epoch, 0
            self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}
            return
        self.wait += 1
        if self.phase == 1 and self.wait >= self.patience:
            self._drop(trainer, pl_module)
        elif self.phase == 2 and self.wait >= self.patience_after_drop:
            log.info(
                "LRDropThenStop: %s did not improve for %d epochs after the drop; stopping",
                self.monitor,
                self.wait,
            )
            trainer.should_stop = True

    def _drop(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = self._best_state or self._best_checkpoint_state(trainer)
        if state is not None:
            pl_module.load_state_dict(state)
        trainer.strategy.setup_optimizers(trainer)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.drop_lr
        self.phase, self.wait, self.dropped_at_epoch = 2, 0, trainer.current_epoch
        log.info(
            "LRDropThenStop: reloaded epoch %d (%s=%.4f), lr -> %g",
            self.best_epoch,
            self.monitor,
            self.best,
            self.drop_lr,
        )

    @staticmethod
    def _best_checkpoint_state(trainer: L.Trainer) -> dict[str, torch.Tensor] | None:
        """After a resume the in-memory copy is gone: read the best weights from ModelCheckpoint's file."""
        path = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if path and Path(path).is_file():
            return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        log.warning(
            "LRDropThenStop: no best weights available (no best checkpoint); dropping the lr on the current ones"
        )
        return None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)
