"""`export --format bioimageio`: a bioimage.io model package (format 0.5) that Fiji/deepImageJ, ilastik,
napari and the model zoo read.

The package is described and validated with `bioimageio.spec` and written by its
`save_bioimageio_package`; `bioimageio.core` then runs its model test (the package's prediction of the
test input must equal the stored test output) for every weight format before the export counts.

What the package reproduces exactly, and what it cannot (both said in its README):

* Input ``image``: uint8 RGB (batch, channel, y, x), the 8-bit micrograph the network saw. Our
  normalisation ``(x / 255 - mean) / std`` (`datamodules.transforms.eval_transform`, the checkpoint's
  mean/std) is the spec's ``scale_linear`` along the channel axis with gain ``1 / (255 std)`` and
  offset ``-mean / std``, preceded by ``ensure_dtype float32``.
* 8-bit images pass our intensity rule unchanged. The rules for 16-bit/float images
  (`datamodules.intensity`: per-image percentiles, bit depth, type range, each rounded to 8 bits)
  have no exact equivalent among the spec's operations (``scale_range`` neither rounds nor knows the
  file's type), so the package takes 8-bit input and its README gives the rule to apply first.
* y/x sizes ``{min, step}`` are multiples of the network's size divisor (`nets.packaged.size_divisor`):
  such inputs need no internal padding, so the traced graphs run at every declared size (probed).
  The axes' ``scale`` is the training pixel size in nanometres when the checkpoint knows it; resizing
  to it (or by the training ``scale``) is the user's step, as the spec has no resampling operation.
* Output: per-class probabilities (softmax) or the argmax label map, computed inside the graph
  (`nets.packaged.PackagedSegmenter`), as TorchScript, ONNX and a ``pytorch_state_dict`` whose
  architecture entry is ``lightning_modules.nets.packaged.PackagedSegmenter`` (needs microseg installed).
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from experiments.apply.export import PARITY_TOLERANCE, export_graph, onnx_max_abs_diff
from experiments.apply.model_card import ModelCard, sample_image, write_card
from lightning_modules.checkpoint import SegmenterMeta, load_segmenter
from lightning_modules.nets.packaged import Output, PackagedSegmenter, size_divisor

#: the two papers every package cites (the method, and the encoders' pretraining)
CITATIONS = (
    (
        "Alrfou, Zhao, Kordijazi: CS-UNet: A generalizable and flexible segmentation algorithm (2023)",
        "10.48550/arXiv.2308.13917",
    ),
    (
        "Stuckner, Harder, Smith: Microstructure segmentation with deep learning encoders pre-trained on "
        "a large microscopy dataset. npj Computational Materials 8, 200 (2022)",
        "10.1038/s41524-022-00878-5",
    ),
)
TAGS = [
    "segmentation",
    "semantic-segmentation",
    "electron-microscopy",
    "materials-science",
    "micrograph",
    "microseg",
]
OPSET = 17


@dataclass
class PackageInfo:
    path: Path
    size_bytes: int
    test_size: tuple[int, int]
    sizes: str  # how y/x sizes are declared, for the report
    validation: str  # bioimageio.spec's status
    model_test: str | None  # bioimageio.core's status, None when not run


def packaged_net(net: torch.nn.Module, meta: SegmenterMeta, output: Output) -> PackagedSegmenter:
    """The checkpoint's trained network inside `PackagedSegmenter` (weights copied, eval mode)."""
    packaged = PackagedSegmenter(meta.net, meta.num_classes, meta.net_kwargs, output)
    packaged.net.load_state_dict(net.state_dict())
    return packaged.eval()


def smallest_side(net: torch.nn.Module, divisor: int) -> int:
    """The smallest multiple of ``divisor`` the network runs at (Swin windows may need two)."""
    for side in (divisor, 2 * divisor, 4 * divisor):
        try:
            with torch.inference_mode():
                net(torch.zeros(1, 3, side, side))
            return side
        except RuntimeError:
            continue
    raise ValueError(f"the network does not run at {divisor}-{4 * divisor} px inputs")


def test_crop(image: np.ndarray, divisor: int, minimum: int, size: int) -> np.ndarray:
    """The centre of ``image`` cut to the largest multiple of ``divisor`` (≥ ``minimum``) up to ``size``."""
    height, width = image.shape[:2]
    side_h, side_w = (max(minimum, min(n, size) // divisor * divisor) for n in (height, width))
    if side_h > height or side_w > width:
        raise ValueError(f"the sample image ({width}x{height} px) is smaller than the network's {minimum} px")
    top, left = (height - side_h) // 2, (width - side_w) // 2
    return image[top : top + side_h, left : left + side_w]


def write_weights(packaged: PackagedSegmenter, example: torch.Tensor, folder: Path, divisor: int) -> bool:
    """TorchScript (traced), ONNX and the state dict into ``folder``; True when both graphs run at
    another multiple of ``divisor`` and batch size (then sizes are declared ``{min, step}``)."""
    torch.save(packaged.state_dict(), folder / "weights.pt")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings: the probes below are the real check
        traced = torch.jit.trace(packaged, example)
    traced.save(str(folder / "model.torchscript.pt"))
    export_graph(
        packaged, example, folder / "model.onnx", {0: "batch", 2: "y", 3: "x"}, "torchscript", "output"
    )
    _, _, height, width = example.shape
    probe = torch.randn(2, 3, height + divisor, width + 2 * divisor)
    with torch.inference_mode():
        expected = packaged(probe)
        try:
            ts_ok = (
                torch.equal(traced(probe), expected)
                or (traced(probe) - expected).abs().max() < PARITY_TOLERANCE
            )
        except RuntimeError:
            ts_ok = False
    return bool(ts_ok) and onnx_max_abs_diff(packaged, folder / "model.onnx", probe) < PARITY_TOLERANCE


def export_bioimageio(
    ckpt: Path,
    output: Path,
    kind: Output = "probabilities",
    sample: Path | None = None,
    size: int = 256,
    authors: list[str] | None = None,
    license_id: str = "CC-BY-4.0",
    name: str | None = None,
    run_test: bool = True,
) -> PackageInfo:
    """Write the bioimage.io package of checkpoint ``ckpt`` to ``output`` (a .zip); see the module docstring."""
    from bioimageio.spec import save_bioimageio_package

    from experiments.apply.bioimageio_descr import model_description

    net, meta = load_segmenter(ckpt)
    packaged = packaged_net(net, meta, kind)
    divisor = size_divisor(net)
    minimum = smallest_side(net, divisor)
    image, source = sample_image(sample, meta)
    crop = test_crop(image, divisor, minimum, size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        test_input = np.ascontiguousarray(crop.transpose(2, 0, 1)[None])
        normalised = _normalise(test_input, meta)
        with torch.inference_mode():
            test_output = packaged(normalised).numpy()
        np.save(folder / "test_input.npy", test_input)
        np.save(folder / "test_output.npy", test_output)
        dynamic = write_weights(packaged, normalised, folder, divisor)
        card = ModelCard(ckpt, meta, kind, divisor, minimum, dynamic, source, name)
        write_card(card, folder, crop, test_output)
        descr = model_description(card, folder, authors or [], license_id, CITATIONS, TAGS, OPSET)
        output.parent.mkdir(parents=True, exist_ok=True)
        save_bioimageio_package(descr, output_path=output)
    validation = descr.validation_summary.status
    model_test = test_package(output) if run_test else None
    sizes = f"{{min: {minimum}, step: {divisor}}}" if dynamic else f"fixed {crop.shape[1]}x{crop.shape[0]}"
    return PackageInfo(output, output.stat().st_size, crop.shape[:2], sizes, validation, model_test)


def _normalise(test_input: np.ndarray, meta: SegmenterMeta) -> torch.Tensor:
    """What the package's pre-processing makes of ``test_input``, by our own transform (the reference)."""
    from datamodules.transforms import eval_transform

    image = test_input[0].transpose(1, 2, 0)
    return eval_transform(meta.mean, meta.std)(image=image)["image"].float()[None]


def test_package(path: Path) -> str:
    """bioimageio.core's model test of the package (every weight format); its status, or the failures."""
    from bioimageio.core import test_model

    summary = test_model(path)
    if summary.status == "passed":
        return "passed"
    failed = [f"{d.name}: {e.msg}" for d in summary.details for e in d.errors]
    raise ValueError(f"{path}: bioimageio.core's model test failed: " + "; ".join(failed[:3]))
