"""`python -m experiments export --ckpt CKPT --format onnx [--output FILE]`: a network for other tools.

The ONNX graph takes ``image``: float32 (batch, 3, height, width), normalised with the ``mean``/``std``
stored in the file's metadata, and returns ``logits`` (batch, classes, height, width). Batch, height
and width are dynamic when the exported graph proves it: onnxruntime must match PyTorch on a second,
different shape. Otherwise the graph is re-exported at the fixed ``--size`` and the metadata
(``microseg.input_shape``) and the printed report say so. Metadata props (``microseg.*``) also carry
the class names, colours, network name and arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from lightning_modules.checkpoint import SegmenterMeta, load_segmenter

PARITY_TOLERANCE = 1e-4


def _export(net: torch.nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    from torch.export import Dim

    shapes = ({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO},) if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            (example,),
            input_names=["image"],
            output_names=["logits"],
            dynamic_shapes=shapes,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    program.save(str(path), external_data=False)


def onnx_max_abs_diff(net: torch.nn.Module, path: Path, image: torch.Tensor) -> float:
    """Largest |ONNX − PyTorch| logit on ``image`` (onnxruntime, CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = net(image).numpy()
    got = session.run(["logits"], {"image": image.numpy()})[0]
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max())


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
    }
    onnx.helper.set_model_props(model, {f"microseg.{k}": v for k, v in props.items()})
    onnx.save(model, str(path))


def export_onnx(ckpt: Path, output: Path, size: int = 512, dynamic: bool = True) -> dict:
    """Export a checkpoint's network; returns ``{"path", "dynamic", "input_shape", "max_abs_diff"}``."""
    net, meta = load_segmenter(ckpt)
    torch.manual_seed(0)
    example = torch.randn(1, 3, size, size)
    probe = torch.randn(2, 3, size + 19, size + 45)  # batch, height, width all differ (and are odd)
    output.parent.mkdir(parents=True, exist_ok=True)
    is_dynamic = False
    if dynamic:
        try:
            _export(net, example, output, dynamic=True)
            is_dynamic = onnx_max_abs_diff(net, output, probe) < PARITY_TOLERANCE
        except Exception as err:  # the exporter raises many kinds when a graph cannot be made dynamic
            print(
                f"dynamic export failed ({type(err).__name__}: {str(err)[:200]}); exporting at a fixed size"
            )
    if not is_dynamic:
        _export(net, example, output, dynamic=False)
    input_shape = ["batch", 3, "height", "width"] if is_dynamic else [1, 3, size, size]
    _add_metadata(output, meta, input_shape)
    diff = onnx_max_abs_diff(net, output, example)
    return {"path": str(output), "dynamic": is_dynamic, "input_shape": input_shape, "max_abs_diff": diff}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments export", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="segmentation checkpoint written by `fit`")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    parser.add_argument("--output", type=Path, help="output file (default: the checkpoint path with .onnx)")
    parser.add_argument("--size", type=int, default=512, help="example size; the fixed size if not dynamic")
    parser.add_argument(
        "--static", action="store_true", help="export at the fixed --size even if dynamic works"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = args.output or args.ckpt.with_suffix(".onnx")
    try:
        info = export_onnx(args.ckpt, output, size=args.size, dynamic=not args.static)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shape = (
        "dynamic batch, height and width" if info["dynamic"] else f"FIXED input shape {info['input_shape']}"
    )
    print(f"wrote {info['path']}: {shape}; onnxruntime vs PyTorch max |diff| = {info['max_abs_diff']:.2e}")
    if info["max_abs_diff"] >= PARITY_TOLERANCE:
        print(f"error: ONNX logits differ from PyTorch by more than {PARITY_TOLERANCE}", file=sys.stderr)
        return 1
    return 0
