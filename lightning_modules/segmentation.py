"""SegmentationModule: every segmenter's training logic (loss, IoU metrics, logging, optimizer).

The network itself is built from its NETS name and keyword arguments, which are saved as
hyperparameters: a checkpoint rebuilds its network without any config (docs/design.md, "Checkpoints").
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from datamodules.intensity import DEFAULT_RULE
from lightning_modules.losses import BCEDiceLoss
from lightning_modules.metrics import SegmentationMetrics

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: devices with a fused (one-kernel) Adam: 6x faster steps than the per-tensor loop on CPU (20M params)
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def build_net(name: str, num_classes: int, net_kwargs: dict) -> nn.Module:
    """``NETS[name](num_classes=..., **net_kwargs)`` with an error that lists the known names."""
    from lightning_modules import nets

    registry = getattr(nets, "NETS", {})
    if name not in registry:
        raise ValueError(f"unknown network {name!r} (model.net); known: {', '.join(sorted(registry))}")
    return registry[name](num_classes=num_classes, **net_kwargs)


class SegmentationModule(L.LightningModule):
    """Trains ``NETS[net]`` with ``bce_weight*BCE + dice_weight*Dice``; logs loss, IoU per class and NASA IoU.

    Args:
        net: NETS name of the network (``unet``, ``cs_unet``, ...).
        net_kwargs: the network's hyperparameters.
        num_classes, class_names, class_colors, mean, std: from the datamodule (linked by the CLI);
            stored so that a checkpoint is self-describing.
        intensity, scale, pixel_size_nm: the datamodule's preprocessing (linked by the CLI): its
            intensity rule, the factor its images were resized by, and the pixel side in nm the
            network saw (None when unknown; filled from the training files' metadata at fit). Stored
            so that `predict` reads and resamples its inputs as training did.
        weights: pretraining source for ``lightning_modules.weights.load_weights``; applied when
            fitting starts (``setup("fit")``), so loading a checkpoint never fetches it again.
        optimizer: injected by the CLI; ``None`` is the paper's Adam at lr 2e-4.
    """

    def __init__(
        self,
        net: str,
        net_kwargs: dict | None = None,
        num_classes: int = 3,
        class_names: list[str] | None = None,
        class_colors: list[tuple[int, int, int]] | None = None,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        intensity: str = DEFAULT_RULE,
        scale: float = 1.0,
        pixel_size_nm: float | None = None,
        weights: str | dict[str, str] = "none",
        bce_weight: float = 0.7,
        dice_weight: float = 0.3,
        optimizer: OptimizerCallable | None = None,
    ) -> None:
        super().__init__()
        class_names = list(class_names) if class_names else [f"class{i}" for i in range(num_classes)]
        if len(class_names) != num_classes:
            raise ValueError(f"model.class_names has {len(class_names)} names but num_classes={num_classes}")
        net_kwargs = dict(net_kwargs or {})
        # an explicit dict: the same keys whether built in Python, by a wrapper or by LightningCLI,
        # and exactly SegmentationModule's arguments, so `SegmentationModule.load_from_checkpoint` works
        self.save_hyperparameters(
            {
                "net": net,
                "net_kwargs": net_kwargs,
                "num_classes": num_classes,
                "class_names": class_names,
                "class_colors": [tuple(c) for c in class_colors] if class_colors else None,
                "mean": tuple(mean),
                "std": tuple(std),
                "intensity": intensity,
                "scale": float(scale),
                "pixel_size_nm": pixel_size_nm,
                "weights": weights,
                "bce_weight": bce_weight,
                "dice_weight": dice_weight,
            }  # fmt: skip
        )
        self.class_names = class_names
        self.net = build_net(net, num_classes, net_kwargs)
        self.loss = BCEDiceLoss(bce_weight, dice_weight)
        self.optimizer = optimizer
        # keyed "<stage>_metrics": a bare "train" would clash with nn.Module.train
        self.metrics = nn.ModuleDict(
            {f"{s}_metrics": SegmentationMetrics(class_names) for s in ("train", "val")}
        )
        self._weights_applied = weights == "none"

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.pixel_size_nm is None:  # the training files may record it
            datamodule = getattr(self._trainer, "datamodule", None)
            self.hparams.pixel_size_nm = getattr(datamodule, "pixel_size_nm", None)
        if stage == "fit" and not self._weights_applied:
            from lightning_modules.weights import load_weights

            load_weights(self.net, self.hparams.weights)
            self._weights_applied = True
        for name in self.test_set_names:
            if f"{name}_metrics" not in self.metrics:
                self.metrics[f"{name}_metrics"] = SegmentationMetrics(self.class_names)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._weights_applied = True  # trained weights follow: pretraining must not overwrite them

    @property
    def test_set_names(self) -> list[str]:
        """Names of the test loaders, index-aligned (``["test", "test_ood"]`` where there is an OOD split)."""
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        return list(getattr(datamodule, "test_set_names", None) or ["test"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.parameters()
        if self.optimizer is not None:
            return self.optimizer(params)
        return torch.optim.Adam(params, lr=2e-4, fused=self.device.type in FUSED_ADAM_DEVICES)

    # -- steps ----------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self.loss(logits, batch["mask"])
        # nothing is logged per step: a logged tensor is read back to the host (a GPU sync every step),
        # and the benchmark sets have a handful of steps per epoch; the epoch means come from the metrics
        self.metrics[f"{stage}_metrics"].update(logits.detach(), batch["mask"], loss.detach())
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, self.test_set_names[dataloader_idx])

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self(batch["image"]).argmax(1)

    # -- epoch ends: the metrics of the whole split (torchmetrics syncs them across processes) ---
    def _log_split(self, stage: str) -> None:
        metrics = self.metrics[f"{stage}_metrics"]
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.results().items()}, prog_bar=False)
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_split("train")
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])  # shows LRDropThenStop's drop

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")

    def on_test_epoch_end(self) -> None:
        for name in self.test_set_names:
            self._log_split(name)
