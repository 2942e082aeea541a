"""`python -m experiments export --ckpt CKPT --format onnx [--output FILE]`: a network for other tools.

The ONNX graph takes ``image``: float32 (batch, 3, height, width), normalised with the ``mean``/``std``
stored in the file's metadata, and returns ``logits`` (batch, classes, height, width). Batch, height
and width are dynamic only where the exported graph proves it (onnxruntime matches PyTorch on another
shape); otherwise height and width (and, failing that, batch) are fixed at ``--size``, which the
printed report and the metadata ``microseg.input_shape`` state. Metadata props (``microseg.*``) also
carry the class names, colours, network name and arguments, and the training preprocessing: the
intensity rule (``datamodules.intensity``) that made 8-bit images of other bit depths, the training
``scale`` and ``pixel_size_nm`` (the pixel side the network saw, ``null`` when unknown), so another
tool can prepare its inputs as `predict` does."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from experiments.apply.bioimageio_cli import add_bioimageio_arguments, export_package
from lightning_modules.checkpoint import SegmenterMeta, load_segmenter

PARITY_TOLERANCE = 1e-4
OPSET = 17
EXPORTERS = ("torchscript", "dynamo")


def export_graph(
    net: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    dynamic_dims: dict[int, str],
    exporter: str,
    output_name: str = "logits",
) -> None:
    """``torchscript`` (default) takes seconds but its traced shape arithmetic often freezes height and
    width; ``dynamo`` keeps them symbolic (UNet: fully dynamic) but took over 20 minutes for CS-UNet on
    a CPU. Either way the probes in `export_onnx` decide what is dynamic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings; the probe is the real check
        if exporter == "dynamo":
            from torch.export import Dim

            shapes = ({i: Dim.AUTO for i in dynamic_dims},) if dynamic_dims else None
            program = torch.onnx.export(
                net,
                (example,),
                input_names=["image"],
                output_names=[output_name],
                dynamic_shapes=shapes,
                dynamo=True,
            )
            program.save(str(path), external_data=False)
            return
        axes = {"image": dynamic_dims, output_name: dynamic_dims} if dynamic_dims else None
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["image"],
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def onnx_max_abs_diff(net: torch.nn.Module, path: Path, image: torch.Tensor) -> float:
    """Largest |ONNX − PyTorch| output value on ``image`` (onnxruntime, CPU; the graph's first output)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing probe is expected for non-dynamic graphs: no log noise
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = net(image).numpy()
    got = session.run(None, {"image": image.numpy()})[0]
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got.astype(np.float64) - expected).max())


def _add_metadata(path: Path, meta: SegmenterMeta, input_shape: list) -> None:
    import onnx

    model = onnx.load(str(path))
    props = {
        "net": meta.net,
        "net_kwargs": json.dumps(meta.net_kwargs),
        "num_classes": str(meta.num_classes),
        "class_names": json.dumps(meta.class_names),
        "class_colors": json.dumps([list(c) for c in meta.class_colors]),
        "mean": json.dumps(list(meta.mean)),
        "std": json.dumps(list(meta.std)),
        "input_shape": json.dumps(input_shape),
        "input": "float32 RGB (batch, 3, height, width), 0-1 scaled then (x - mean) / std",
        "intensity": meta.intensity,
        "scale": json.dumps(meta.scale),
        "pixel_size_nm": json.dumps(meta.pixel_size_nm),
    }
    onnx.helper.set_model_props(model, {f"microseg.{k}": v for k, v in props.items()})
    onnx.save(model, str(path))


def export_onnx(
    ckpt: Path, output: Path, size: int = 512, dynamic: bool = True, exporter: str = "torchscript"
) -> dict:
    """Export a checkpoint's network, as dynamic as it proves to be: batch, height and width; else batch
    only (height and width fixed at ``size``); else all fixed. Each dynamic variant must match PyTorch
    on a probe of another shape (odd sizes, batch 2). Returns path, input_shape and max_abs_diff."""
    net, meta = load_segmenter(ckpt)
    torch.manual_seed(0)
    example = torch.randn(1, 3, size, size)
    tiers = [
        ({0: "batch", 2: "height", 3: "width"}, torch.randn(2, 3, size + 19, size + 45)),
        ({0: "batch"}, torch.randn(2, 3, size, size)),
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    chosen: dict[int, str] = {}
    for dims, probe in tiers if dynamic else []:
        try:
            export_graph(net, example, output, dims, exporter)
            if onnx_max_abs_diff(net, output, probe) < PARITY_TOLERANCE:
                chosen = dims
                break
        except Exception:  # exporter and onnxruntime raise many kinds for a graph that is not dynamic
            continue
    if not chosen:
        export_graph(net, example, output, {}, exporter)
    input_shape = [chosen.get(i, n) for i, n in enumerate(example.shape)]
    _add_metadata(output, meta, input_shape)
    diff = onnx_max_abs_diff(net, output, example)
    return {"path": str(output), "input_shape": input_shape, "max_abs_diff": diff}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments export", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="segmentation checkpoint written by `fit`")
    parser.add_argument(
        "--format",
        choices=["onnx", "bioimageio"],
        default="onnx",
        help="onnx: one graph; bioimageio: a bioimage.io model package (.zip) for Fiji, ilastik, napari",
    )
    parser.add_argument(
        "--output", type=Path, help="output file (default: the checkpoint path with .onnx or .zip)"
    )
    parser.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="torchscript",
        help="dynamo: slower, more often fully dynamic",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=512,
        help="example size, the fixed size if not dynamic (bioimageio: the test image's largest side)",
    )
    parser.add_argument(
        "--static", action="store_true", help="export at the fixed --size even if dynamic works"
    )
    add_bioimageio_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.format == "bioimageio":
        return export_package(args)
    output = args.output or args.ckpt.with_suffix(".onnx")
    try:
        info = export_onnx(args.ckpt, output, args.size, not args.static, args.exporter)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fixed = [n for n in info["input_shape"][2:] if isinstance(n, int)]
    shape = f"input shape {info['input_shape']}" + (" (FIXED height x width)" if fixed else " (dynamic)")
    print(f"wrote {info['path']}: {shape}; onnxruntime vs PyTorch max |diff| = {info['max_abs_diff']:.2e}")
    if info["max_abs_diff"] >= PARITY_TOLERANCE:
        print(f"error: ONNX logits differ from PyTorch by more than {PARITY_TOLERANCE}", file=sys.stderr)
        return 1
    return 0
