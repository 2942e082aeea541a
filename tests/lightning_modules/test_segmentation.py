"""SegmentationModule on a tiny net: trains, logs every key of the contract, writes a self-describing checkpoint."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_modules.checkpoint import load_segmenter
from lightning_modules.segmentation import SegmentationModule
from tests.host_syncs import StepProbe
from tests.tiny import TinyData, register_tiny


@pytest.fixture
def tiny(monkeypatch):
    register_tiny(monkeypatch)
    torch.set_num_threads(1)


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    args = dict(
        default_root_dir=tmp_path, accelerator="cpu", max_epochs=2, logger=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    return L.Trainer(**(args | kwargs))


def test_fit_and_test_log_contract_keys(tiny, tmp_path) -> None:
    L.seed_everything(0)
    data = TinyData(ood=True)
    model = SegmentationModule(
        "tiny", {"width": 4}, 3, data.class_names, data.class_colors, data.mean, data.std
    )
    trainer = _trainer(tmp_path)
    trainer.fit(model, data)
    keys = set(trainer.callback_metrics)
    expected = {"train/loss", "val/loss", "val/iou", "val/nasa_iou", "val/iou_matrix", "val/iou_tertiary"}
    assert expected <= keys
    trainer.test(model, data)
    keys = set(trainer.callback_metrics)
    assert {"test/iou", "test/iou_secondary", "test/nasa_iou", "test_ood/iou", "test_ood/loss"} <= keys
    assert not any("dataloader_idx" in k for k in keys)
    assert 0 <= float(trainer.callback_metrics["test/iou"]) <= 1


def test_checkpoint_rebuilds_network_without_config(tiny, tmp_path) -> None:
    data = TinyData()
    model = SegmentationModule(
        "tiny", {"width": 5}, 3, data.class_names, data.class_colors, data.mean, data.std
    )
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(model, data)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    hp = torch.load(path, weights_only=False)["hyper_parameters"]
    assert {"net", "net_kwargs", "num_classes", "class_names", "class_colors", "mean", "std"} <= set(hp)
    assert "optimizer" not in hp
    net, meta = load_segmenter(path)
    assert meta.net == "tiny" and meta.net_kwargs == {"width": 5} and meta.class_names == data.class_names
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(net(x), model.net.eval()(x))
    again = SegmentationModule.load_from_checkpoint(path)
    assert again.hparams.class_names == data.class_names


def test_optimizer_default_and_injection(tiny) -> None:
    model = SegmentationModule("tiny", num_classes=3)
    opt = model.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 2e-4
    assert opt.param_groups[0]["fused"]  # one kernel per step, on CPU too
    model = SegmentationModule("tiny", num_classes=3, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    assert isinstance(model.configure_optimizers(), torch.optim.SGD)


def test_bad_arguments_name_the_key(tiny) -> None:
    with pytest.raises(ValueError, match="model.net"):
        SegmentationModule("nope", num_classes=3)
    with pytest.raises(ValueError, match="class_names"):
        SegmentationModule("tiny", num_classes=3, class_names=["a", "b"])


def test_pretrained_weights_apply_at_fit_but_never_over_a_checkpoint(tiny, monkeypatch, tmp_path) -> None:
    calls = []
    monkeypatch.setattr("lightning_modules.weights.load_weights", lambda net, source: calls.append(source))
    data = TinyData()
    model = SegmentationModule("tiny", num_classes=3, weights="imagenet")
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(model, data)
    assert calls == ["imagenet"]
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    again = SegmentationModule.load_from_checkpoint(tmp_path / "m.ckpt")
    _trainer(tmp_path, max_epochs=2).fit(again, data)
    assert calls == ["imagenet"]


def test_a_training_step_reads_nothing_back_from_the_device(tiny, tmp_path) -> None:
    """Loss, metric updates and logging of a whole step (logger and progress bar on) make no host sync.

    Before: the per-step loss log (`.item()` for the logger) and MeanMetric's NaN check each read a
    value back, a GPU stall per step.
    """
    from lightning.pytorch.loggers import CSVLogger

    data = TinyData(n_train=8)
    model = SegmentationModule("tiny", {"width": 4}, 3, data.class_names, data.class_colors)
    probe = StepProbe(step=1)
    trainer = _trainer(
        tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[probe], log_every_n_steps=1,
        logger=CSVLogger(tmp_path), enable_progress_bar=True,
    )  # fmt: skip
    trainer.fit(model, data)
    assert not probe.counter.origins, "\n".join(probe.counter.origins)
