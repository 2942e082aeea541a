"""LRDropThenStop on scripted validation scores: both phases, reload of the best weights, stop epoch, resume."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from callbacks.lr_drop_then_stop import LRDropThenStop

# best at epoch 1; no improvement at 2, 3 -> drop after epoch 3 (patience 2), reload epoch 1's weights;
# epoch 4 no improvement, 5 improves, 6 and 7 do not -> stop after epoch 7 (patience_after_drop 2)
SCRIPT = [0.1, 0.5, 0.4, 0.3, 0.45, 0.6, 0.2, 0.2, 0.9, 0.9]


class Scripted(L.LightningModule):
    """Trains one weight by SGD; reports ``val/iou`` from SCRIPT; records weights and lr per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Linear(1, 1)
        self.at_val: dict[int, torch.Tensor] = {}
        self.at_start: dict[int, tuple[torch.Tensor, float]] = {}

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return (self.w(batch) - 3).pow(2).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        pass

    def on_train_epoch_start(self) -> None:
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.at_start[self.current_epoch] = (self.w.weight.detach().clone(), lr)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.at_val[self.current_epoch] = self.w.weight.detach().clone()
        self.log("val/iou", SCRIPT[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(torch.ones(2, 1), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(torch.ones(2, 1), batch_size=2)


def _fit(
    tmp_path, max_epochs: int, ckpt_path: str | None = None
) -> tuple[Scripted, LRDropThenStop, L.Trainer]:
    torch.manual_seed(0)
    model = Scripted()
    stopper = LRDropThenStop(patience=2, drop_lr=1e-5, patience_after_drop=2)
    checkpoint = ModelCheckpoint(tmp_path, monitor="val/iou", mode="max", save_last=True)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=max_epochs, callbacks=[stopper, checkpoint], logger=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, ckpt_path=ckpt_path)
    return model, stopper, trainer


def test_both_phases_reload_and_stop(tmp_path) -> None:
    model, stopper, trainer = _fit(tmp_path, max_epochs=len(SCRIPT))
    assert stopper.dropped_at_epoch == 3
    assert sorted(model.at_val) == list(range(8))  # stopped after epoch 7
    weight, lr = model.at_start[4]
    torch.testing.assert_close(weight, model.at_val[1])  # best weights reloaded
    assert lr == pytest.approx(1e-5)
    assert model.at_start[3][1] == pytest.approx(0.01)
    assert stopper.best == pytest.approx(0.6) and stopper.best_epoch == 5


@pytest.mark.parametrize("interrupt_after", [3, 5])  # mid phase 1 (before the drop), mid phase 2
def test_resume_continues_in_the_right_phase(tmp_path, interrupt_after: int) -> None:
    reference, _, _ = _fit(tmp_path / "ref", max_epochs=len(SCRIPT))
    _fit(tmp_path / "run", max_epochs=interrupt_after)
    model, stopper, trainer = _fit(
        tmp_path / "run", len(SCRIPT), ckpt_path=str(tmp_path / "run" / "last.ckpt")
    )
    assert stopper.dropped_at_epoch == 3
    assert max(model.at_val) == 7
    for epoch in range(interrupt_after, 8):
        torch.testing.assert_close(model.at_start[epoch][0], reference.at_start[epoch][0])
        assert model.at_start[epoch][1] == pytest.approx(reference.at_start[epoch][1])


def test_state_dict_round_trip() -> None:
    stopper = LRDropThenStop()
    stopper.phase, stopper.wait, stopper.best = 2, 7, 0.8
    other = LRDropThenStop()
    other.load_state_dict(stopper.state_dict())
    assert (other.phase, other.wait, other.best) == (2, 7, 0.8)
