"""The command line of `export --format bioimageio`: its options, and one report line per result.

Kept apart from `bioimageio_export` so that `export --format onnx` needs neither bioimageio.spec nor
bioimageio.core (the optional extra ``microseg[bioimageio]``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import warnings
from pathlib import Path

from datamodules.io import DataError

#: warnings raised by microseg's own code (not by torch or bioimageio) are shown to the user
REPO = Path(__file__).resolve().parents[2]


def add_bioimageio_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bioimageio")
    group.add_argument(
        "--output-kind",
        choices=("probabilities", "labels"),
        default="probabilities",
        help="the package's output: per-class softmax probabilities, or the argmax label map",
    )
    group.add_argument(
        "--sample",
        type=Path,
        help="a micrograph for the test tensors and the cover (default: a synthetic one)",
    )
    group.add_argument("--author", action="append", help="an author's name (repeat for several)")
    group.add_argument("--license", default="CC-BY-4.0", help="SPDX licence id of the package")
    group.add_argument("--name", help="the model's name (default: microseg <network> <dataset>)")
    group.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    group.add_argument(
        "--no-test", action="store_true", help="skip bioimageio.core's model test of the written package"
    )


def export_package(args: argparse.Namespace) -> int:
    """Write the package and print its size and validation; errors are one line naming the file."""
    output = args.output or args.ckpt.with_suffix(".zip")
    if output.suffix != ".zip":
        print(
            f"error: --output {output}: a bioimage.io package is a .zip file; name it model.zip",
            file=sys.stderr,
        )
        return 2
    if output.exists() and not args.overwrite:
        print(f"error: {output} exists; choose another --output or pass --overwrite", file=sys.stderr)
        return 2
    try:
        from experiments.apply.bioimageio_export import export_bioimageio
    except ImportError as err:
        print(f"error: {err.name} is not installed; pip install 'microseg[bioimageio]'", file=sys.stderr)
        return 2
    authors = args.author or [getpass.getuser()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            info = export_bioimageio(
                args.ckpt, output, args.output_kind, args.sample, args.size, authors, args.license,
                args.name, not args.no_test,
            )  # fmt: skip
        except (ValueError, FileNotFoundError, DataError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    for warning in caught:
        if Path(warning.filename).resolve().is_relative_to(REPO):
            print(f"warning: {warning.message}", file=sys.stderr)
    tested = {None: "not run (--no-test)", "passed": "passed for torchscript, onnx, pytorch_state_dict"}
    print(
        f"wrote {info.path} ({info.size_bytes / 2**20:.1f} MiB): bioimage.io model 0.5, input sizes "
        f"{info.sizes}, test tensor {info.test_size[1]}x{info.test_size[0]} px; authors {', '.join(authors)}"
    )
    print(
        f"bioimageio.spec validation: {info.validation}; bioimageio.core model test: {tested[info.model_test]}"
    )
    return 0
