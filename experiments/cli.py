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
    "run": "experiments.run",
    "sweep": "experiments.sweep",
    "table": "experiments.tables",
    "figure": "experiments.figures",
    "reproduce-mini": "experiments.reproduce_mini",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        module = importlib.import_module(TOOLS[argv[0]])
        sys.exit(module.main(argv[1:]) or 0)
    raise SystemExit(f"usage: python -m experiments {{{','.join(TOOLS)}}} ...")
