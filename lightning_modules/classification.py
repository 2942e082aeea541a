"""ClassificationModule: encoder pretraining on MicroLite (or any ImageFolder tree) by classification.

Two classifiers: the paper's Swin-T (`swin_classifier`, the default) and a CNN (`cnn_classifier`, any smp
encoder: NASA's MicroNet recipe). Cross-entropy, AdamW (lr 5e-4, weight decay 0.05), linear warm-up then
cosine decay per epoch, top-1 and top-5 accuracy. The checkpoint holds the network under ``net.`` with
its NETS name and kwargs, so ``load_weights(net, "<this.ckpt>")`` loads a Swin-T classifier into the
`swin` encoder of any Swin segmenter (or, through ``$MICROSEG_MICROLITE``, as the ``microlite`` source),
and a CNN classifier into the `cnn` encoder of UNet, UNet++, CS-UNet and HiFormer.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.segmentation import FUSED_ADAM_DEVICES, IMAGENET_MEAN, IMAGENET_STD, build_net


class ClassificationModule(L.LightningModule):
    """Trains ``NETS[net]`` (``swin_classifier`` or ``cnn_classifier``) on ``(image, label)`` batches.

    Args:
        net, net_kwargs: the classifier's NETS name and hyperparameters.
        num_classes, class_names, mean, std: from the datamodule (linked by the CLI).
        lr, weight_decay: AdamW; fine-tuning configs lower both.
        warmup_epochs: linear warm-up from ``lr * warmup_start_factor`` to ``lr``, then cosine to 0
            at ``trainer.max_epochs``.
        label_smoothing: cross-entropy label smoothing.
        weights: initial weights for fine-tuning (``imagenet`` or a path), applied when fitting starts.
    """

    def __init__(
        self,
        net: str = "swin_classifier",
        net_kwargs: dict | None = None,
        num_classes: int = 74,
        class_names: list[str] | None = None,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        warmup_epochs: int = 5,
        warmup_start_factor: float = 0.01,
        label_smoothing: float = 0.0,
        weights: str = "none",
    ) -> None:
        super().__init__()
        net_kwargs = dict(net_kwargs or {})
        class_names = list(class_names) if class_names else [f"class{i}" for i in range(num_classes)]
        self.save_hyperparameters(
            {
                "net": net,
                "net_kwargs": net_kwargs,
                "num_classes": num_classes,
                "class_names": class_names,
                "mean": tuple(mean),
                "std": tuple(std),
                "lr": lr,
                "weight_decay": weight_decay,
                "warmup_epochs": warmup_epochs,
                "warmup_start_factor": warmup_start_factor,
                "label_smoothing": label_smoothing,
                "weights": weights,
            }  # fmt: skip
        )
        self.net = build_net(net, num_classes, net_kwargs)
        self._weights_applied = weights == "none"
        top_k = [1, 5] if num_classes > 5 else [1]
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_metrics": MetricCollection(
                    {f"top{k}": MulticlassAccuracy(num_classes, top_k=k, average="micro") for k in top_k}
                )
                for stage in ("train", "val", "test")
            }
        )

    def setup(self, stage: str) -> None:
        if stage == "fit" and not self._weights_applied:
            from lightning_modules.weights import load_weights

            load_weights(self.net, self.hparams.weights)
            self._weights_applied = True

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._weights_applied = True  # trained weights follow: pretraining must not overwrite them

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        image, label = batch
        logits = self(image)
        loss = F.cross_entropy(logits, label, label_smoothing=self.hparams.label_smoothing)
        self.metrics[f"{stage}_metrics"].update(logits.detach(), label)
        on_step = stage == "train"
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            sync_dist=not on_step,
            batch_size=len(label),
        )
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_split(self, stage: str) -> None:
        metrics = self.metrics[f"{stage}_metrics"]
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.compute().items()})
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_split("train")
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")

    def on_test_epoch_end(self) -> None:
        self._log_split("test")

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=hp.lr,
            weight_decay=hp.weight_decay,
            fused=self.device.type in FUSED_ADAM_DEVICES,
        )
        max_epochs = (
            self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 300
        )
        warmup = min(hp.warmup_epochs, max(max_epochs - 1, 0))
        cosine = CosineAnnealingLR(optimizer, T_max=max(max_epochs - warmup, 1))
        if warmup == 0:
            return {"optimizer": optimizer, "lr_scheduler": cosine}
        linear = LinearLR(optimizer, start_factor=hp.warmup_start_factor, total_iters=warmup)
        schedule = SequentialLR(optimizer, [linear, cosine], milestones=[warmup])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
