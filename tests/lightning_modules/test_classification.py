"""ClassificationModule: the schedule, and one training epoch whose checkpoint loads as `microlite` weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import datamodules
from lightning_modules.classification import ClassificationModule
from lightning_modules.nets import NETS
from lightning_modules.weights import load_weights

SWIN = {"depth": "intermediate", "embed_dim": 24, "num_heads": [1, 2, 3, 4]}  # a narrow Swin-T for speed


def test_warmup_then_cosine_schedule() -> None:
    model = ClassificationModule(net_kwargs=SWIN, num_classes=10, lr=1e-3, warmup_epochs=5)
    model.trainer = L.Trainer(max_epochs=20, logger=False)  # configure_optimizers reads max_epochs
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["weight_decay"] == 0.05
    assert optimizer.param_groups[0]["fused"]
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-5)  # warm-up starts at 1% of lr
    assert lrs[5] == pytest.approx(1e-3) and max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:], strict=False)) and lrs[-1] < 1e-4


def _data(request) -> tuple[L.LightningDataModule | None, int, DataLoader | None]:
    """microlite-mini through the MicroLite datamodule when it exists, else random tensors."""
    if hasattr(datamodules, "MicroLite"):
        root = request.getfixturevalue("microlite_root")
        data = datamodules.MicroLite(root=root, batch_size=8, num_workers=0, tile_size=512, image_size=64)
        return data, data.num_classes, None
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 3, 64, 64, generator=g), torch.arange(16) % 10
    return None, 10, DataLoader(TensorDataset(images, labels), batch_size=8)


@pytest.mark.slow
def test_one_epoch_then_checkpoint_loads_into_cs_unet(request, tmp_path) -> None:
    torch.set_num_threads(1)
    L.seed_everything(0)
    data, num_classes, loader = _data(request)
    model = ClassificationModule(net_kwargs=SWIN, num_classes=num_classes)
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, default_root_dir=tmp_path,
        enable_progress_bar=False, enable_model_summary=False, limit_train_batches=4, limit_val_batches=2,
    )  # fmt: skip
    if data is not None:
        trainer.fit(model, datamodule=data)
    else:
        trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    assert {"train/loss", "val/top1", "val/top5"} <= set(trainer.callback_metrics)
    ckpt = tmp_path / "microlite.ckpt"
    trainer.save_checkpoint(ckpt)

    cs_unet = NETS["cs_unet"](num_classes=3, encoder_name="resnet18", **SWIN)
    report = load_weights(cs_unet, {"swin": str(ckpt)})
    (part,) = report.parts
    assert part.part == "swin" and part.loaded == part.expected and not part.missing
    trained = {
        k.removeprefix("net.swin."): v for k, v in model.state_dict().items() if k.startswith("net.swin.")
    }
    for name, tensor in cs_unet.swin.state_dict().items():
        if name in trained:
            torch.testing.assert_close(tensor, trained[name], msg=name)


def test_a_training_step_between_log_steps_reads_nothing_back(tmp_path) -> None:
    """Metric updates and the loss make no device-to-host read; only every n-th step's loss log does."""
    from lightning.pytorch.loggers import CSVLogger

    from tests.host_syncs import StepProbe

    probe = StepProbe(step=2)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(10, 3, 32, 32), torch.randint(0, 10, (10,)))
    model = ClassificationModule(net_kwargs=SWIN, num_classes=10, warmup_epochs=0)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=CSVLogger(tmp_path), log_every_n_steps=50,
        callbacks=[probe], enable_checkpointing=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, DataLoader(data, batch_size=2))
    assert not probe.counter.origins, "\n".join(probe.counter.origins)


@pytest.mark.slow
@pytest.mark.real_data
def test_cnn_classifier_one_epoch_on_microlite_mini_loads_as_cnn_weights(microlite_root, tmp_path) -> None:
    """NASA's MicroNet recipe on microlite-mini: the CNN classifier's checkpoint is the `cnn` weights of
    UNet, CS-UNet and HiFormer (3 of the 4 CNN stages)."""
    torch.set_num_threads(1)
    L.seed_everything(0)
    data = datamodules.MicroLite(
        root=microlite_root, batch_size=8, num_workers=0, tile_size=512, image_size=64
    )
    model = ClassificationModule(
        net="cnn_classifier", net_kwargs={"encoder_name": "resnet18"}, num_classes=data.num_classes
    )
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, default_root_dir=tmp_path,
        enable_progress_bar=False, enable_model_summary=False, limit_train_batches=4, limit_val_batches=2,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert {"train/loss", "val/top1", "val/top5"} <= set(trainer.callback_metrics)
    ckpt = tmp_path / "micronet_own.ckpt"
    trainer.save_checkpoint(ckpt)
    trained = {
        k.removeprefix("net.encoder."): v
        for k, v in model.state_dict().items()
        if k.startswith("net.encoder.")
    }

    for name, encoder in (("unet", "encoder"), ("cs_unet", "cnn.encoder"), ("hiformer", "cnn.encoder")):
        net = NETS[name](num_classes=3, encoder_name="resnet18")
        (part,) = load_weights(net, {"cnn": str(ckpt)}).parts
        assert part.part == "cnn" and part.loaded == part.expected
        if name != "hiformer":  # HiFormer's CNN stops at /16: the last stage has no place there
            assert part.loaded == len(trained)
        for key, value in net.get_submodule(encoder).state_dict().items():
            torch.testing.assert_close(value, trained[key], msg=f"{name}: {key}")


def test_the_cnn_pretraining_config_composes_after_microlite_yaml(capsys) -> None:
    from experiments.cli import cli_main

    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", "microlite.yaml", "--config", "microlite_cnn.yaml", "--print_config"])
    out = capsys.readouterr().out
    assert "net: cnn_classifier" in out and "encoder_name: resnet50" in out and "depth:" not in out
