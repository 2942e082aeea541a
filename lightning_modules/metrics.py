"""The two IoU definitions the suite reports, both accumulated over a whole split and DDP-safe.

* ``iou`` (headline): per-class Jaccard index from one confusion matrix over the split
  (torchmetrics ``MulticlassJaccardIndex(average=None)``), averaged over the foreground classes
  (class 0, the matrix/background, is excluded): it answers "how well are the phases found".
* ``nasa_iou``: NASA's pooled IoU, for comparability with their published numbers: sigmoid of every
  logit thresholded at 0.5, compared with the one-hot truth, intersection and union summed over all
  pixels *and* all channels including the matrix.

Pixels labelled ``IGNORE_INDEX`` (the padding of a batch of images of different sizes) count in neither,
so a padded batch scores exactly what its images score one by one on the same logits.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassJaccardIndex

from lightning_modules.losses import IGNORE_INDEX, one_hot_nchw


class NasaIoU(Metric):
    """Pooled IoU of thresholded sigmoid outputs against one-hot truth (sum states: exact under DDP)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("intersection", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("union", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, mask: torch.Tensor) -> None:
        labelled = (mask != IGNORE_INDEX).unsqueeze(1)
        pred = (logits.sigmoid() > self.threshold) & labelled
        truth = one_hot_nchw(mask, logits.shape[1])  # all zero on ignored pixels
        self.intersection += (pred & truth).sum()
        self.union += (pred | truth).sum()

    def compute(self) -> torch.Tensor:
        return self.intersection.float() / self.union.clamp_min(1).float()


class WeightedMean(Metric):
    """Mean of per-batch values weighted by their batch sizes, in sum states (exact under DDP).

    Replaces torchmetrics' ``MeanMetric``, whose NaN check reads a flag back to the host on every update
    (a GPU sync per training step), and whose ``nan_strategy="disable"`` drops the weights (1.9.0). A NaN
    loss is not hidden: it makes the logged mean NaN.
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: float) -> None:
        self.total += value.detach().float() * weight
        self.weight += weight

    def compute(self) -> torch.Tensor:
        return self.total / self.weight


class SegmentationMetrics(MetricCollection):
    """Loss, per-class IoU and NASA IoU of one stage, over the whole split; `results` gives the logged values.

    The loss is a per-image weighted mean in sum states too, so every value is exact under DDP.
    Ignored pixels go to an extra class ``C`` in both truth and prediction: they land on the diagonal
    cell (C, C) of the confusion matrix, which no real class's intersection or union reads, and that
    class is dropped. (torchmetrics' own ``ignore_index`` selects the kept pixels with a boolean index,
    a data-dependent shape that reads the mask back to the host on every training step.)
    """

    def __init__(self, class_names: list[str]) -> None:
        super().__init__(
            {
                "iou_per_class": MulticlassJaccardIndex(
                    num_classes=len(class_names) + 1, average=None, validate_args=False
                ),
                "nasa_iou": NasaIoU(),
                "loss": WeightedMean(),
            },
            compute_groups=False,
        )
        self.class_names = list(class_names)

    def update(self, logits: torch.Tensor, mask: torch.Tensor, loss: torch.Tensor) -> None:
        ignored, extra = mask == IGNORE_INDEX, len(self.class_names)
        pred = logits.argmax(1).masked_fill(ignored, extra)
        self["iou_per_class"].update(pred, mask.masked_fill(ignored, extra))
        self["nasa_iou"].update(logits, mask)
        self["loss"].update(loss, weight=len(logits))

    def results(self) -> dict[str, torch.Tensor]:
        """``{"iou", "iou_<class>" for each class, "nasa_iou", "loss"}`` over everything since the last reset."""
        per_class = self["iou_per_class"].compute()[: len(self.class_names)]
        foreground = per_class[1:] if len(per_class) > 1 else per_class
        out = {"iou": foreground.mean()}
        out.update({f"iou_{name}": value for name, value in zip(self.class_names, per_class, strict=True)})
        out["nasa_iou"] = self["nasa_iou"].compute()
        out["loss"] = self["loss"].compute()
        return out
