"""The loss and both IoU definitions against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_modules.losses import IGNORE_INDEX, BCEDiceLoss, one_hot_nchw
from lightning_modules.metrics import NasaIoU, SegmentationMetrics, WeightedMean
from tests.host_syncs import HostSyncCounter


def test_loss_known_value() -> None:
    # 1 image, 2 classes, 2 pixels; logits 0 -> sigmoid 0.5 everywhere
    logits = torch.zeros(1, 2, 1, 2)
    mask = torch.tensor([[[0, 1]]])
    bce = math.log(2)  # -log(0.5) on every element
    dice = 1 - (2 * 0.5) / (0.5 + 0.5 + 1)  # per class: intersection 0.5, |pred| 1, |truth| 1
    expected = 0.7 * bce + 0.3 * dice
    assert torch.isclose(BCEDiceLoss()(logits, mask), torch.tensor(expected), atol=1e-6)
    assert torch.isclose(BCEDiceLoss(1.0, 0.0)(logits, mask), torch.tensor(bce), atol=1e-6)


def test_loss_is_small_for_confident_correct_logits() -> None:
    mask = torch.tensor([[[0, 1], [2, 1]]])
    logits = torch.nn.functional.one_hot(mask, 3).permute(0, 3, 1, 2).float() * 40 - 20
    assert BCEDiceLoss()(logits, mask) < 1e-6


def test_bf16_logits_get_the_fp32_loss() -> None:
    """Under bf16 autocast the logits are bf16; the loss must not sum in bf16 (257 rounds to 256 there)."""
    torch.manual_seed(0)
    mask = torch.randint(0, 3, (1, 1, 300))
    mask[..., 257:] = IGNORE_INDEX  # 257 labelled pixels
    logits = torch.randn(1, 3, 1, 300).bfloat16()
    loss = BCEDiceLoss()(logits, mask)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, BCEDiceLoss()(logits.float(), mask), rtol=1e-6, atol=1e-7)


def _logits_for(pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(pred, num_classes).permute(0, 3, 1, 2).float() * 10 - 5


def test_per_class_and_foreground_iou_by_hand() -> None:
    truth = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, 0]]])
    pred = torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 0]]])
    metrics = SegmentationMetrics(["matrix", "secondary", "tertiary"])
    # split across two updates: the IoU is of the whole split, not a mean over batches
    metrics.update(_logits_for(pred[:, :1], 3), truth[:, :1], torch.tensor(1.0))
    metrics.update(_logits_for(pred[:, 1:], 3), truth[:, 1:], torch.tensor(3.0))
    out = metrics.results()
    # class 0: truth {0,1,7}, pred {0,6,7} -> I=2, U=4; class 1: truth {2,3}, pred {1,2,3} -> 2/3;
    # class 2: truth {4,5,6}, pred {4,5} -> 2/3
    assert math.isclose(out["iou_matrix"], 0.5, abs_tol=1e-6)
    assert math.isclose(out["iou_secondary"], 2 / 3, abs_tol=1e-6)
    assert math.isclose(out["iou_tertiary"], 2 / 3, abs_tol=1e-6)
    assert math.isclose(out["iou"], 2 / 3, abs_tol=1e-6)  # foreground only: matrix excluded
    # NASA's, per image (each row is one image): I=3, U=5 in both -> 0.6
    assert math.isclose(out["nasa_iou"], 0.6, abs_tol=1e-6)
    assert math.isclose(out["loss"], 2.0, abs_tol=1e-6)  # batches of one image each


def nasa_iou_reference(logits: np.ndarray, mask: np.ndarray) -> float:
    """NASA's test IoU written from their code, independently of ours, in NumPy, one image at a time.

    nasa/pretrained-microscopy-models: segmentation_training.py `create_segmentation_model` ends the
    model in softmax2d (several classes) or sigmoid (one foreground channel: `classes=2` is refused)
    and scores with smp 0.2.1 `utils.metrics.IoU(threshold=0.5)`; the notebooks test at batch size 1,
    and smp's `ValidEpoch` averages the per-batch values. smp 0.2.1 `utils/functional.py::iou`:
    `(sum(gt*pr) + eps) / (sum(gt) + sum(pr) - sum(gt*pr) + eps)`, eps=1e-7, pr = activation > 0.5.
    """
    scores = []
    for image_logits, image_mask in zip(logits.astype(np.float64), mask, strict=True):
        if len(image_logits) == 2:  # NASA's one oxide logit is our l1 - l0; its sigmoid
            pr = 1 / (1 + np.exp(-(image_logits[1] - image_logits[0]))) > 0.5
            gt = image_mask == 1
        else:  # softmax2d over the classes
            e = np.exp(image_logits - image_logits.max(0))
            pr = e / e.sum(0) > 0.5
            gt = np.stack([image_mask == c for c in range(len(image_logits))])
        inter = float((gt & pr).sum())
        scores.append((inter + 1e-7) / (gt.sum() + pr.sum() - inter + 1e-7))
    return float(np.mean(scores))


def _pixels(*logits: tuple[float, ...]) -> list[list[float]]:
    """Per-pixel logit tuples of a 1 x N image -> (C, 1, N) nested lists."""
    return [[[px[c] for px in logits]] for c in range(len(logits[0]))]


# Super, 3 classes, two 1x4 images. Image A: truth [0, 1, 2, 1]; softmax > 0.5 gives pixel 2 no class at
# all (equal logits: 1/3 each) and pixel 3 the wrong one: I=2 (pixels 0, 1), |gt|=4, |pr|=3 -> 2/5.
# Image B: truth all matrix, pixel 3 unassigned: I=3, |gt|=4, |pr|=3 -> 3/4. Mean 0.575 (pooled: 5/9).
SUPER_LOGITS = torch.tensor(
    [
        _pixels((2, 0, 0), (0, 2, 0), (0, 0, 0), (0, 0, 2)),
        _pixels((2, 0, 0), (2, 0, 0), (2, 0, 0), (0, 0, 0)),
    ]
)
SUPER_MASK = torch.tensor([[[0, 1, 2, 1]], [[0, 0, 0, 0]]])
# EBC, 2 classes. Image A: truth [0, 1, 1, 1]; oxide predicted where l1 > l0 (pixels 1, 3): I=2, U=3
# -> 2/3 (the background channel is not scored: with it, 3/5). Image B: no oxide in truth or
# prediction -> eps/eps = 1. Mean 5/6.
EBC_LOGITS = torch.tensor([_pixels((0, -1), (0, 2), (1, 0), (0, 3)), _pixels((1, 0), (1, 0), (1, 0), (1, 0))])
EBC_MASK = torch.tensor([[[0, 1, 1, 1]], [[0, 0, 0, 0]]])


@pytest.mark.parametrize(
    ("logits", "mask", "by_hand"), [(SUPER_LOGITS, SUPER_MASK, 0.575), (EBC_LOGITS, EBC_MASK, 5 / 6)]
)
def test_nasa_iou_equals_nasas_formula_by_hand(logits, mask, by_hand) -> None:
    metric = NasaIoU(logits.shape[1])
    metric.update(logits, mask)
    assert math.isclose(nasa_iou_reference(logits.numpy(), mask.numpy()), by_hand, abs_tol=1e-6)
    assert math.isclose(metric.compute(), by_hand, abs_tol=1e-6)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_nasa_iou_equals_reference_per_image_at_any_batch_size(num_classes) -> None:
    generator = torch.Generator().manual_seed(num_classes)
    logits = torch.randn(5, num_classes, 24, 20, generator=generator) * 2
    mask = torch.randint(0, num_classes, (5, 24, 20), generator=generator)
    expected = nasa_iou_reference(logits.numpy(), mask.numpy())
    batched, one_by_one = NasaIoU(num_classes), NasaIoU(num_classes)
    batched.update(logits[:3], mask[:3])
    batched.update(logits[3:], mask[3:])
    for i in range(5):
        one_by_one.update(logits[i : i + 1], mask[i : i + 1])
    assert math.isclose(batched.compute(), expected, abs_tol=1e-6)
    assert math.isclose(one_by_one.compute(), expected, abs_tol=1e-6)


def test_one_hot_nchw_matches_torch_one_hot() -> None:
    mask = torch.randint(0, 4, (2, 5, 7))
    expected = torch.nn.functional.one_hot(mask, 4).permute(0, 3, 1, 2)
    assert torch.equal(one_hot_nchw(mask, 4, torch.long), expected)
    assert one_hot_nchw(mask, 4).dtype == torch.bool


def test_loss_mean_is_weighted_by_batch_size() -> None:
    # 1 image with loss 1 and 3 images with loss 4: the per-image mean is 13/4, not (1+4)/2
    mean = WeightedMean()
    mean.update(torch.tensor(1.0), 1)
    mean.update(torch.tensor(4.0), 3)
    assert math.isclose(mean.compute(), 3.25, abs_tol=1e-6)


def _padded(logits: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch as ``datamodules.base.pad_collate`` makes it, with confident junk logits in the padding."""
    height = max(m.shape[-2] for m in masks)
    width = max(m.shape[-1] for m in masks)
    batch = torch.full((len(logits), logits[0].shape[1], height, width), -20.0)
    batch[:, -1] = 20.0  # the padding "predicts" the last class: counted, it would change every score
    mask = torch.full((len(masks), height, width), IGNORE_INDEX)
    for k, (lg, m) in enumerate(zip(logits, masks, strict=True)):
        batch[k, :, : m.shape[-2], : m.shape[-1]] = lg[0]
        mask[k, : m.shape[-2], : m.shape[-1]] = m[0]
    return batch, mask


def test_padded_batch_scores_what_its_images_score_one_by_one() -> None:
    g = torch.Generator().manual_seed(0)
    sizes = [(5, 7), (6, 4), (3, 8)]
    logits = [torch.randn(1, 3, h, w, generator=g) for h, w in sizes]
    masks = [torch.randint(0, 3, (1, h, w), generator=g) for h, w in sizes]
    names = ["matrix", "secondary", "tertiary"]
    alone, together = SegmentationMetrics(names), SegmentationMetrics(names)
    for lg, m in zip(logits, masks, strict=True):
        alone.update(lg, m, torch.tensor(0.0))
    together.update(*_padded(logits, masks), torch.tensor(0.0))
    expected, got = alone.results(), together.results()
    for key in ("iou", "iou_matrix", "iou_secondary", "iou_tertiary", "nasa_iou"):
        assert math.isclose(got[key], expected[key], abs_tol=1e-6), key


def test_loss_ignores_padded_pixels() -> None:
    g = torch.Generator().manual_seed(1)
    logits = [torch.randn(1, 3, h, w, generator=g) for h, w in [(4, 6), (5, 3)]]
    masks = [torch.randint(0, 3, (1, *lg.shape[-2:]), generator=g) for lg in logits]
    # BCE is a mean over labelled pixels and Dice pools the batch: both equal those of the labelled pixels in a row
    row_logits = torch.cat([lg.flatten(2) for lg in logits], 2).unsqueeze(2)
    row_mask = torch.cat([m.flatten(1) for m in masks], 1).unsqueeze(1)
    loss = BCEDiceLoss()
    assert math.isclose(loss(*_padded(logits, masks)), loss(row_logits, row_mask), abs_tol=1e-6)


def test_loss_and_metric_updates_read_nothing_back_from_the_device() -> None:
    g = torch.Generator().manual_seed(0)
    logits, mask = _padded(
        [torch.randn(1, 3, 8, 8, generator=g), torch.randn(1, 3, 6, 7, generator=g)],
        [torch.randint(0, 3, (1, 8, 8), generator=g), torch.randint(0, 3, (1, 6, 7), generator=g)],
    )
    metrics = SegmentationMetrics(["matrix", "secondary", "tertiary"])
    with HostSyncCounter() as syncs:
        loss = BCEDiceLoss()(logits, mask)
        metrics.update(logits, mask, loss)
    assert not syncs.origins, "\n".join(syncs.origins)
