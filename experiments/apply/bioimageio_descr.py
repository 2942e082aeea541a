"""The bioimage.io model description (format 0.5) of a packaged segmenter, built with `bioimageio.spec`.

Building the `ModelDescr` validates it (pydantic); the files it names (weights, test tensors, README,
cover) were written by `experiments.apply.bioimageio_export` into one folder. What each field means,
and why the pre-processing is what it is, is in that module's docstring.
"""

from __future__ import annotations

from pathlib import Path

import torch
from bioimageio.spec.model import v0_5 as spec

from experiments.apply.model_card import ModelCard

INPUT = spec.TensorId("image")


def _space_axes(card: ModelCard, fixed: tuple[int, int] | None) -> list[spec.SpaceInputAxis]:
    """y and x: ``{min, step}`` (multiples of the size divisor) or the test input's fixed size."""
    pixel = card.meta.pixel_size_nm
    unit = {"unit": "nanometer", "scale": float(pixel)} if pixel else {}
    axes = []
    for index, name in enumerate(("y", "x")):
        size = fixed[index] if fixed else spec.ParameterizedSize(min=card.minimum, step=card.divisor)
        axes.append(spec.SpaceInputAxis(id=spec.AxisId(name), size=size, **unit))
    return axes


def _output_axes(card: ModelCard) -> list:
    """batch, channel (class names; one channel for labels), then y/x the size of the input's."""
    pixel = card.meta.pixel_size_nm
    unit = {"unit": "nanometer", "scale": float(pixel)} if pixel else {}
    channels = ["label"] if card.output == "labels" else list(card.meta.class_names)
    return [
        spec.BatchAxis(),
        spec.ChannelAxis(channel_names=[spec.Identifier(_identifier(c)) for c in channels]),
        *(
            spec.SpaceOutputAxis(
                id=spec.AxisId(a), size=spec.SizeReference(tensor_id=INPUT, axis_id=spec.AxisId(a)), **unit
            )
            for a in ("y", "x")
        ),
    ]


def _identifier(name: str) -> str:
    """A class name as a spec identifier (letters, digits, underscores; no leading digit)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in name)
    return cleaned if cleaned[:1].isalpha() else f"class_{cleaned}"


def _input(card: ModelCard, folder: Path, fixed: tuple[int, int] | None) -> spec.InputTensorDescr:
    mean, std = card.meta.mean, card.meta.std
    to_float = spec.EnsureDtypeDescr(kwargs=spec.EnsureDtypeKwargs(dtype="float32"))
    return spec.InputTensorDescr(
        id=INPUT,
        description="8-bit RGB micrograph at the training pixel size (see the README)",
        axes=[
            spec.BatchAxis(),
            spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in "RGB"]),
            *_space_axes(card, fixed),
        ],
        test_tensor=spec.FileDescr(source=folder / "test_input.npy"),
        data=spec.IntervalOrRatioDataDescr(type="uint8", range=(0, 255)),
        preprocessing=[  # ending on float32: the spec would otherwise cast back to the input's uint8
            to_float,
            spec.ScaleLinearDescr(
                kwargs=spec.ScaleLinearAlongAxisKwargs(
                    axis=spec.AxisId("channel"),
                    gain=[1.0 / (255.0 * s) for s in std],
                    offset=[-m / s for m, s in zip(mean, std, strict=True)],
                )
            ),
            to_float,
        ],
    )


def _output(card: ModelCard, folder: Path) -> spec.OutputTensorDescr:
    if card.output == "labels":
        data = spec.NominalOrOrdinalDataDescr(values=list(range(card.meta.num_classes)), type="int64")
        description = "class index per pixel: " + ", ".join(
            f"{i} {n}" for i, n in enumerate(card.meta.class_names)
        )
    else:
        data = spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0))
        description = "per-class softmax probabilities"
    return spec.OutputTensorDescr(
        id=spec.TensorId(card.output),
        description=description[:128],
        axes=_output_axes(card),
        test_tensor=spec.FileDescr(source=folder / "test_output.npy"),
        data=data,
    )


def _weights(card: ModelCard, folder: Path, opset: int) -> spec.WeightsDescr:
    version = spec.Version(torch.__version__.split("+")[0])
    architecture = spec.ArchitectureFromLibraryDescr(
        callable=spec.Identifier("PackagedSegmenter"),
        import_from="lightning_modules.nets.packaged",
        kwargs={
            "net": card.meta.net,
            "num_classes": card.meta.num_classes,
            "net_kwargs": card.meta.net_kwargs,
            "output": card.output,
        },
    )
    parent = "pytorch_state_dict"
    return spec.WeightsDescr(
        pytorch_state_dict=spec.PytorchStateDictWeightsDescr(
            source=folder / "weights.pt",
            architecture=architecture,
            pytorch_version=version,
            comment="needs the microseg package importable (lightning_modules.nets.packaged)",
        ),
        torchscript=spec.TorchscriptWeightsDescr(
            source=folder / "model.torchscript.pt", pytorch_version=version, parent=parent
        ),
        onnx=spec.OnnxWeightsDescr(source=folder / "model.onnx", opset_version=opset, parent=parent),
    )


def model_description(
    card: ModelCard,
    folder: Path,
    authors: list[str],
    license_id: str,
    citations: tuple[tuple[str, str], ...],
    tags: list[str],
    opset: int,
) -> spec.ModelDescr:
    """The validated description; ``folder`` holds the files it names (see `bioimageio_export`)."""
    import numpy as np

    fixed = None if card.dynamic else tuple(np.load(folder / "test_input.npy").shape[2:])
    classes = ", ".join(card.meta.class_names[1:]) or card.meta.class_names[0]
    return spec.ModelDescr(
        name=card.title,
        description=f"Segments micrographs into {', '.join(card.meta.class_names)} ({card.meta.net}, trained with microseg)"[
            :1024
        ],
        authors=[spec.Author(name=a) for a in authors],
        cite=[spec.CiteEntry(text=text, doi=spec.Doi(doi)) for text, doi in citations],
        license=spec.LicenseId(license_id),
        tags=[*tags, card.meta.net, *(_identifier(c).lower() for c in card.meta.class_names[1:])],
        documentation=spec.FileDescr(source=folder / "README.md"),
        covers=[spec.FileDescr(source=folder / "cover.png")],
        inputs=[_input(card, folder, fixed)],
        outputs=[_output(card, folder)],
        weights=_weights(card, folder, opset),
        config={
            "microseg": {"intensity": card.meta.intensity, "scale": card.meta.scale, "foreground": classes}
        },
    )
