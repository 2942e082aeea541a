"""Training loss of the segmenters: 0.7·BCE + 0.3·Dice on one-hot targets (the weights of NASA's loss).

Both terms treat each class channel as an independent sigmoid of its logit, and the Dice is per class
(smp ``DiceLoss(mode="multilabel")``). NASA's ``DiceBCELoss`` differs: it takes the sigmoid of outputs
their model has already activated (softmax2d, or sigmoid for one channel) and computes one Dice over
all channels and pixels together (docs/fidelity.md).
"""

from __future__ import annotations

import torch
from segmentation_models_pytorch.losses import DiceLoss
from torch import nn


def one_hot_nchw(mask: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """(B, H, W) class indices -> (B, C, H, W) one-hot, built directly in the logits' layout.

    Unlike ``F.one_hot(...).permute(0, 3, 1, 2)`` this never materialises an int64 (B, H, W, C) tensor
    and its NCHW copy, and on no device reads the mask's range back to the host (``F.one_hot`` does on
    CPU). Indices outside ``[0, C)`` give an all-zero pixel.
    """
    classes = torch.arange(num_classes, device=mask.device).view(1, -1, 1, 1)
    return (mask.unsqueeze(1) == classes).to(dtype)


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCEWithLogits + dice_weight * Dice`` on (B, C, H, W) logits and (B, H, W) class indices."""

    def __init__(self, bce_weight: float = 0.7, dice_weight: float = 0.3) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.bce = nn.BCEWithLogitsLoss()
        self.dice = DiceLoss(mode="multilabel", from_logits=True)

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        target = one_hot_nchw(mask, logits.shape[1], logits.dtype)
        return self.bce_weight * self.bce(logits, target) + self.dice_weight * self.dice(logits, target)
