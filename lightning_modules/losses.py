"""Training loss of the segmenters: 0.7·BCE + 0.3·Dice on one-hot targets (the weights of NASA's loss).

Both terms treat each class channel as an independent sigmoid of its logit, and the Dice is per class
(smp ``DiceLoss(mode="multilabel")``). NASA's ``DiceBCELoss`` differs: it takes the sigmoid of outputs
their model has already activated (softmax2d, or sigmoid for one channel) and computes one Dice over
all channels and pixels together (docs/fidelity.md).
Pixels labelled ``IGNORE_INDEX`` (the padding of a batch of images of different sizes) count in neither
term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torch import nn

#: mask value of pixels that belong to no image (batch padding, docs/design.md): no loss, no metric
IGNORE_INDEX = 255


def one_hot_nchw(mask: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """(B, H, W) class indices -> (B, C, H, W) one-hot, built directly in the logits' layout.

    Unlike ``F.one_hot(...).permute(0, 3, 1, 2)`` this never materialises an int64 (B, H, W, C) tensor
    and its NCHW copy, and on no device reads the mask's range back to the host (``F.one_hot`` does on
    CPU). Indices outside ``[0, C)`` (such as ``IGNORE_INDEX``) give an all-zero pixel.
    """
    classes = torch.arange(num_classes, device=mask.device).view(1, -1, 1, 1)
    return (mask.unsqueeze(1) == classes).to(dtype)


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCEWithLogits + dice_weight * Dice`` on (B, C, H, W) logits and (B, H, W) class indices.

    The BCE is the mean over the labelled pixels; smp's Dice drops ``IGNORE_INDEX`` pixels from both its
    intersection and its cardinality. Neither term reads anything back from the device. Under bf16
    autocast the logits arrive in bf16; the loss is computed in fp32, as mixed precision intends: its
    sums over ~10^5 pixels (the labelled count, Dice's intersection and cardinality) would otherwise be
    rounded to bf16's 8-bit mantissa.
    """

    def __init__(self, bce_weight: float = 0.7, dice_weight: float = 0.3) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.dice = DiceLoss(mode="multilabel", from_logits=True, ignore_index=IGNORE_INDEX)

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = one_hot_nchw(mask, logits.shape[1], logits.dtype)
        labelled = (mask != IGNORE_INDEX).unsqueeze(1).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        bce = (bce * labelled).sum() / (labelled.sum() * logits.shape[1]).clamp_min(1)
        dice_target = torch.where(labelled.bool(), target, torch.full_like(target, IGNORE_INDEX))
        return self.bce_weight * bce + self.dice_weight * self.dice(logits, dice_target)
