"""Training loss of the segmenters: weighted BCE + Dice on one-hot targets (NASA's and the paper's recipe).

Both terms treat each class channel as an independent sigmoid output, as NASA's example training does,
so the loss matches the pooled 0.5-threshold IoU they report.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torch import nn


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCEWithLogits + dice_weight * Dice`` on (B, C, H, W) logits and (B, H, W) class indices."""

    def __init__(self, bce_weight: float = 0.7, dice_weight: float = 0.3) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.bce = nn.BCEWithLogitsLoss()
        self.dice = DiceLoss(mode="multilabel", from_logits=True)

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(mask, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        return self.bce_weight * self.bce(logits, target) + self.dice_weight * self.dice(logits, target)
