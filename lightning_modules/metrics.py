"""The two IoU definitions the suite reports, both accumulated over a whole split and DDP-safe.

* ``iou`` (headline): per-class Jaccard index from one confusion matrix over the split
  (torchmetrics ``MulticlassJaccardIndex(average=None)``), averaged over the foreground classes
  (class 0, the matrix/background, is excluded): it answers "how well are the phases found".
* ``nasa_iou``: the IoU NASA's example notebooks report (``nasa/pretrained-microscopy-models``), so our
  numbers can sit beside theirs; :class:`NasaIoU` says exactly what it computes.

Pixels labelled ``IGNORE_INDEX`` (the padding of a batch of images of different sizes) count in neither,
so a padded batch scores exactly what its images score one by one on the same logits.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassJaccardIndex

from lightning_modules.losses import IGNORE_INDEX, one_hot_nchw


class NasaIoU(Metric):
    """NASA's test IoU: smp 0.2.1's ``utils.metrics.IoU(threshold=0.5)`` per image, averaged over images.

    What NASA's code does (``segmentation_training.py`` + their notebooks, smp 0.2.1): the model ends in
    its activation (``create_segmentation_model``: ``softmax2d`` for several classes, ``sigmoid`` for
    one), the test loader has batch size 1, and ``ValidEpoch`` averages the per-batch values of
    ``iou(pr, gt) = (I + eps) / (|gt| + |pr| - I + eps)``, ``pr = activation > 0.5``, sums over every
    channel and pixel of the batch, ``eps = 1e-7``. Here each image of a batch is scored on its own, so
    the value is that of batch size 1 at any batch size.

    * Three or more classes (Super: matrix, secondary, tertiary): every channel's softmax probability
      > 0.5 against the one-hot truth, all channels including the matrix.
    * Two classes (EBC): NASA trains one sigmoid channel for the foreground (their
      ``create_segmentation_model`` refuses ``classes=2``). Our two logits give that probability as
      ``softmax(logits)[1]``; it is thresholded at 0.5 against ``mask == 1`` and the background channel
      is not scored.

    NASA evaluates EBC on a fixed 512² crop; that is the datamodule's ``eval_crop`` (datamodules/nasa.py).
    """

    full_state_update = False
    higher_is_better = True
    eps = 1e-7

    def __init__(self, num_classes: int, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes, self.threshold = num_classes, threshold
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("images", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, mask: torch.Tensor) -> None:
        labelled = (mask != IGNORE_INDEX).unsqueeze(1)
        probs = logits.float().softmax(1)
        truth = one_hot_nchw(mask, self.num_classes)  # all zero on ignored pixels
        if self.num_classes == 2:  # NASA's single foreground channel
            probs, truth = probs[:, 1:], truth[:, 1:]
        pred = (probs > self.threshold) & labelled
        intersection = (pred & truth).sum((1, 2, 3)).double()
        union = pred.sum((1, 2, 3)) + truth.sum((1, 2, 3)) - intersection
        self.total += ((intersection + self.eps) / (union + self.eps)).sum()
        self.images += len(logits)

    def compute(self) -> torch.Tensor:
        return (self.total / self.images.clamp_min(1)).float()


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
                "nasa_iou": NasaIoU(len(class_names)),
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
