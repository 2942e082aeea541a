"""PredictionOverlays: image | truth | prediction panels of a few validation/test images, to disk and to the logger.

Looking at predictions catches what a single IoU hides (a class never predicted, shifted masks).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from PIL import Image


def colorize(mask: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 RGB with one colour per class."""
    palette = np.asarray(colors, dtype=np.uint8)
    return palette[np.clip(mask, 0, len(palette) - 1)]


def panel(image: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor, mean, std, colors) -> np.ndarray:
    """Normalised (3, H, W) image, (H, W) truth and prediction -> one (H, 3W, 3) uint8 panel."""
    rgb = image.float().cpu() * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    rgb = (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return np.concatenate(
        [rgb, colorize(mask.cpu().numpy(), colors), colorize(pred.cpu().numpy(), colors)], 1
    )


class PredictionOverlays(Callback):
    """Save panels for the first ``num_images`` images of the first validation/test batches.

    Args:
        num_images: images per stage.
        every_n_epochs: validation panels every this many epochs (test panels always).
        dirpath: output folder; ``None`` is ``<trainer.default_root_dir>/overlays``.
    """

    def __init__(self, num_images: int = 4, every_n_epochs: int = 10, dirpath: str | None = None) -> None:
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.dirpath = dirpath
        self._panels: list[tuple[str, str, np.ndarray]] = []  # (stage, name, panel)

    def _collect(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: dict, stage: str) -> None:
        wanted = self.num_images - sum(s == stage for s, _, _ in self._panels)
        if not trainer.is_global_zero or wanted <= 0:
            return
        hp = pl_module.hparams
        colors = hp.get("class_colors") or [(0, 0, 0), (0, 0, 255), (255, 0, 0), (0, 255, 0)]
        with torch.no_grad():
            pred = pl_module(batch["image"][:wanted]).argmax(1)
        for i, p in enumerate(pred):
            image = panel(batch["image"][i], batch["mask"][i], p, hp["mean"], hp["std"], colors)
            self._panels.append((stage, f"{stage}_{batch['name'][i]}", image))

    def _flush(self, trainer: L.Trainer, key: str) -> None:
        if not self._panels:
            return
        folder = Path(self.dirpath or Path(trainer.default_root_dir) / "overlays")
        folder.mkdir(parents=True, exist_ok=True)
        for _, name, image in self._panels:
            Image.fromarray(image).save(folder / f"{name}.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                _, names, images = zip(*self._panels, strict=True)
                logger.log_image(key, list(images), step=trainer.global_step, caption=list(names))
        self._panels = []

    def _val_due(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if trainer.state.fn == "validate" or self._val_due(trainer):
            self._collect(trainer, pl_module, batch, "val")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer, "val/overlays")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        names = getattr(trainer.datamodule, "test_set_names", None) or ["test"]
        self._collect(trainer, pl_module, batch, names[dataloader_idx])

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer, "test/overlays")
