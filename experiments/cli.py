"""Command-line entry point.

`fit`, `validate`, `test` and `predict` (with a config) go to LightningCLI; the suite's own tools
(`data`, `models`, `sweep`, `table`, ...) are one module each with a `main(argv)` function.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> module providing ``main(argv: list[str]) -> int | None``
TOOLS: dict[str, str] = {
    "data": "experiments.data_cmd",
    "predict-images": "experiments.predict_cmd",
    "measure": "experiments.measure_cmd",
    "export": "experiments.export_cmd",
}
#: `predict` with one of these options segments image files (predict_cmd); with --config it is LightningCLI's
PREDICT_IMAGES_FLAGS = {"--ckpt", "--input"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"] and PREDICT_IMAGES_FLAGS & {a.split("=")[0] for a in argv}:
        argv[0] = "predict-images"
    if argv and argv[0] in TOOLS:
        module = importlib.import_module(TOOLS[argv[0]])
        sys.exit(module.main(argv[1:]) or 0)
    raise SystemExit(f"usage: python -m experiments {{{','.join(TOOLS)}}} ...")
