"""The human side of a bioimage.io package: its README (documentation) and cover image.

The README says what a microscopist needs before using the model elsewhere: its classes and colours,
the exact input it expects (8 bits, normalisation, pixel size, what to do with 16-bit images), its
output, its training data and the test metrics of `results.json` when the checkpoint lies in a run
folder that has one. The cover shows the test image beside its segmentation overlay.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.io import read_micrograph
from datamodules.transforms import resize_image, scaled_size
from experiments.apply.imageio import default_colors, overlay
from experiments.apply.preprocess import resample_factor
from lightning_modules.checkpoint import SegmenterMeta

#: how each intensity rule (`datamodules.intensity`) turns a 16-bit/float image into the 8 bits the package takes
RULE_TEXT = {
    "percentile": "map the 0.5th-99.5th percentile of the image's finite values to 0-255 (clip, round)",
    "bit_depth": "divide integers by the smallest 2^n - 1 (at least 255) holding their maximum, floats by "
    "their maximum when above 1; times 255, rounded",
    "full": "divide integers by their type's maximum (65535 for 16-bit), take floats as 0-1 (clipped); "
    "times 255, rounded",
}
SAMPLE_SIZE = 256


@dataclass
class ModelCard:
    ckpt: Path
    meta: SegmenterMeta
    output: str  # probabilities | labels
    divisor: int
    minimum: int
    dynamic: bool
    sample_source: str
    name: str | None = None

    @property
    def results(self) -> dict:
        """`results.json` of the checkpoint's run folder (beside it or one level up), else {}."""
        for folder in (self.ckpt.parent, self.ckpt.parent.parent):
            path = folder / "results.json"
            if path.is_file():
                try:
                    return json.loads(path.read_text())
                except json.JSONDecodeError:
                    warnings.warn(f"{path} is not valid JSON; the README has no metrics", stacklevel=2)
        return {}

    @property
    def title(self) -> str:
        dataset = self.results.get("dataset")
        return self.name or " ".join(["microseg", self.meta.net, *([dataset] if dataset else [])])

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        return self.meta.class_colors or default_colors(self.meta.num_classes)


def sample_image(sample: Path | None, meta: SegmenterMeta) -> tuple[np.ndarray, str]:
    """The test/cover image as the network sees it (uint8 RGB, at the training resolution), and its source.

    ``sample`` is read and resampled as `predict` does; without one a synthetic Super-like micrograph
    stands in, with a warning, since the cover should show the user's material.
    """
    if sample is None:
        from datamodules.synthetic import make_super

        warnings.warn(
            "no --sample: the package's cover and test image are a synthetic micrograph; pass "
            "--sample IMAGE (one of your micrographs) to show your material",
            stacklevel=2,
        )
        return make_super(np.random.default_rng(0), SAMPLE_SIZE)[0], "a synthetic Super-like micrograph"
    micrograph = read_micrograph(sample, meta.intensity)
    factor, basis = resample_factor(meta, micrograph.calibration, None, sample)
    image = resize_image(micrograph.image, scaled_size(*micrograph.image.shape[:2], factor))
    return image, f"`{sample.name}` (resampled x{factor:.3g}: {basis})" if factor != 1 else f"`{sample.name}`"


def write_card(card: ModelCard, folder: Path, image: np.ndarray, test_output: np.ndarray) -> None:
    """``README.md`` and ``cover.png`` (test image | overlay of its segmentation) into ``folder``."""
    mask = test_output[0, 0] if card.output == "labels" else test_output[0].argmax(0)
    tinted = np.asarray(overlay(image, mask.astype(np.int64), card.meta.class_names, card.colors))
    Image.fromarray(np.hstack([image, tinted])).save(folder / "cover.png")
    (folder / "README.md").write_text(readme(card))


def readme(card: ModelCard) -> str:
    meta, results = card.meta, card.results
    pixel = f"{meta.pixel_size_nm:g} nm" if meta.pixel_size_nm else None
    classes = "\n".join(
        f"| {i} | {name} | {tuple(color)} |"
        for i, (name, color) in enumerate(zip(meta.class_names, card.colors, strict=True))
    )
    sizes = (
        f"any multiple of {card.divisor} px from {card.minimum} px (y and x)"
        if card.dynamic
        else "the fixed size of the test input (the traced graph did not run at other sizes)"
    )
    output = (
        "`labels`: int64 (batch, 1, y, x), the class index of each pixel (argmax)"
        if card.output == "labels"
        else "`probabilities`: float32 (batch, class, y, x), per-class softmax probabilities"
    )
    scale = (
        f"Images must have the training pixel size, {pixel} (the axes' `scale`): resize others to it first."
        if pixel
        else f"Images must be at the training resolution: training images were resized by {meta.scale:g}."
        if meta.scale != 1
        else "Images are used at their own resolution (the training images were not resized)."
    )
    return f"""# {card.title}

Semantic segmentation of micrographs into {meta.num_classes} classes, trained with
microseg (network `{meta.net}`, arguments `{json.dumps(meta.net_kwargs)}`).

## Classes

| index | class | colour (RGB) |
|---|---|---|
{classes}

## Input

`image`: uint8 RGB (batch, channel, y, x), {sizes}. Grey micrographs are repeated into the three
channels. The package's pre-processing normalises exactly as training did: `(x / 255 - mean) / std` with
mean {list(meta.mean)} and std {list(meta.std)} (a `scale_linear` per channel).

**8 bits.** 8-bit images are used as they are. 16-bit or float images must first be brought to 8 bits
by the training rule, `{meta.intensity}`: {RULE_TEXT.get(meta.intensity, meta.intensity)}. bioimage.io's
operations cannot express this rule exactly (`scale_range` neither rounds to 8 bits nor knows the file's
type), so it is not part of the package; microseg's own reader applies it.

**Pixel size.** {scale}

## Output

{output}.

## Training and metrics

{_training(results)}

The test image ({card.sample_source}) and the package's output for it are the test tensors; the cover
shows it beside its segmentation.

## Cite

- Alrfou, Zhao, Kordijazi, CS-UNet: A generalizable and flexible segmentation algorithm, arXiv 2308.13917.
- Stuckner, Harder, Smith, Microstructure segmentation with deep learning encoders pre-trained on a large
  microscopy dataset, npj Computational Materials 8, 200 (2022).
"""


def _training(results: dict) -> str:
    """Training set-up and per-split test metrics from results.json, or a note that none was found."""
    if not results:
        return "No `results.json` was found beside the checkpoint, so the training data and metrics are not recorded here."
    keys = ("dataset", "model", "encoder", "weights", "swin_depth", "seed", "epochs")
    setup = ", ".join(f"{k} `{results[k]}`" for k in keys if results.get(k) is not None)
    rows = [
        f"| {split} | {name} | {value:.3f} |"
        for split, metrics in (results.get("metrics") or {}).items()
        for name, value in metrics.items()
        if isinstance(value, int | float)
    ]
    table = (
        "\n".join(["| split | metric | value |", "|---|---|---|", *rows]) if rows else "No metrics recorded."
    )
    return f"Training: {setup}. IoU values are fractions (0-1).\n\n{table}"
