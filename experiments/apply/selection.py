"""Which unlabelled micrographs to label next: how informative each one is, and a diverse choice among them.

An image is worth labelling when the network is unsure about it (**uncertainty**: the mean normalised
softmax entropy of its pixels, `lightning_modules.inference.normalised_entropy`) or when it is unlike
what the network was trained on (**unfamiliarity**). A network can be confidently wrong on a kind of
image it never saw, so uncertainty alone misses new kinds; unfamiliarity is read from the network's own
BatchNorm layers, which recorded the mean and variance of every channel over the training images: for
each BN layer, the squared distance of the image's channel means from those running means in units of
the running standard deviation, averaged over channels and layers (near 0 for training-like images).
The score is the mean of the uncertainty and ``v / (1 + v)`` of the unfamiliarity ``v`` (both in
[0, 1]); a network without BatchNorm (Swin-Unet) is ranked by uncertainty alone.

Greedy selection then takes the highest score, and each next image by its score minus ``diversity``
times the fourth power of its similarity to the closest image already chosen: near-copies (similarity
≈ 1) are not proposed together, while images that only share a kind (two EBC cross-sections, ≈ 0.5,
penalty 0.06) or are unrelated (≈ 0) barely interact. Similarity is the correlation of 16×16 grey
thumbnails, clipped at 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

THUMB = 16
#: the similarity's power in the penalty: only close resemblance counts
SIMILARITY_POWER = 4


@dataclass
class Candidate:
    name: str
    uncertainty: float
    unfamiliarity: float | None  # None: the network has no BatchNorm
    descriptor: np.ndarray  # unit-norm, zero-mean thumbnail

    @property
    def score(self) -> float:
        if self.unfamiliarity is None:
            return self.uncertainty
        return 0.5 * (self.uncertainty + self.unfamiliarity / (1.0 + self.unfamiliarity))


class BatchNormDistance:
    """Collects, while active, each sample's distance from the BN running statistics (see the module docstring)."""

    def __init__(self, net: nn.Module) -> None:
        self.layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.per_layer: list[torch.Tensor] = []

    def _hook(self, module: nn.modules.batchnorm._BatchNorm, inputs: tuple, output: torch.Tensor) -> None:
        activation = inputs[0].float()
        means = activation.mean(dim=tuple(range(2, activation.ndim)))  # (batch, channels)
        z2 = (means - module.running_mean) ** 2 / (module.running_var + module.eps)
        self.per_layer.append(z2.mean(dim=1).cpu())

    @contextmanager
    def recording(self) -> Iterator[BatchNormDistance]:
        self.per_layer = []
        handles = [
            layer.register_forward_hook(self._hook) for layer in self.layers if layer.track_running_stats
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def value(self) -> float | None:
        """Mean over layers and every sample (window) seen while recording; None without BatchNorm."""
        if not self.per_layer:
            return None
        return float(torch.cat(self.per_layer).mean())


def descriptor(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB image as a zero-mean, unit-norm 16×16 grey thumbnail (a flat image gives zeros)."""
    grey = image.mean(axis=2).astype(np.float32)
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).ravel()
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 1e-6 else thumb


@dataclass
class Pick:
    candidate: Candidate
    adjusted: float  # score less the diversity penalty when it was picked
    closest: str | None  # the already chosen image it resembles most
    similarity: float


def select(candidates: list[Candidate], n: int, diversity: float = 1.0) -> list[Pick]:
    """Greedy diverse ranking of all ``candidates`` (the first ``n`` are the proposal)."""
    remaining = list(candidates)
    picks: list[Pick] = []
    while remaining:
        best = None
        for c in remaining:
            sims = [
                (float(np.clip(c.descriptor @ p.candidate.descriptor, 0, 1)), p.candidate.name) for p in picks
            ]
            similarity, closest = max(sims) if sims else (0.0, None)
            adjusted = c.score - (diversity * similarity**SIMILARITY_POWER if len(picks) < n else 0.0)
            if best is None or adjusted > best.adjusted:
                best = Pick(c, adjusted, closest, similarity)
        picks.append(best)
        remaining.remove(best.candidate)
    return picks
