"""`make demo`: train a real segmenter in a few CPU minutes, test it, and show what it sees.

Where the data comes from, in this order (the demo prints which it took):

1. NASA's Super1 already in the data root (``data/``), every file verified;
2. unpacked from ``../shared/data/nasa-benchmark.tar.gz`` (``$MICROSEG_SHARED`` moves ``../shared``);
3. downloaded from NASA's public source (``$MICROSEG_NASA_URL`` or ``--from`` to override), verified;
4. only when all of that fails: synthetic Super-like micrographs, with the one-line reason.

Writes the run (checkpoints, W&B offline run, results.json) and ``demo_panel.png`` (image | truth |
prediction per test image, errors coloured) to ``--output``. Other options go to `fit` and `test`, e.g.
``--trainer.max_time=00:00:10:00`` for a longer run (the configs' budget is 3.5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from datamodules.download import fetch, source_url, verify
from datamodules.io import DataError, default_root

REPO = Path(__file__).resolve().parents[1]
#: written into the run folder first, so a later demo knows the folder is its own to replace
MARKER = ".microseg-demo"


def shared_archive() -> Path:
    """The benchmark tarball in ``../shared`` (or ``$MICROSEG_SHARED``) beside the repository."""
    return Path(os.environ.get("MICROSEG_SHARED", REPO.parent / "shared")) / "data/nasa-benchmark.tar.gz"


def find_super1(root: Path, source: str | None = None) -> str | None:
    """Make ``root/Super1`` complete; returns where it came from, or None (the reason printed in one line).

    ``source`` (a URL, tarball or folder) replaces the ../shared archive and the public download.
    """
    if not verify(root / "Super1"):
        print(f"demo: NASA Super1 found in {root / 'Super1'} (every file verified)")
        return str(root / "Super1")
    if source:
        sources = [source]
    else:
        sources = [str(shared_archive())] if shared_archive().is_file() else []
        sources.append(source_url())
    reasons = []
    for candidate in sources:
        print(f"demo: getting NASA Super1 from {candidate} into {root / 'Super1'}", flush=True)
        try:
            fetch(["super1"], root, candidate)
        except DataError as err:
            reasons.append(str(err))
            continue
        print(f"demo: NASA Super1 ready in {root / 'Super1'} (every file verified)")
        return candidate
    print(f"demo: no NASA Super1 ({' / '.join(reasons)}); using synthetic micrographs instead")
    return None


def claim_output(out: Path) -> None:
    """Make ``out`` an empty folder for this demo, replacing a previous demo run there (and saying so)."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DataError(f"{out}: not empty and not a demo run folder; pass another --output")
        print(f"demo: replacing the previous demo run in {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--root", type=Path, default=None, help="data root holding Super1/ (default: data/)")
    parser.add_argument(
        "--from", dest="source", default=None, help="Super1's source: a URL, tarball or folder"
    )
    parser.add_argument("--output", type=Path, default=Path("outputs/demo"), help="run folder")
    parser.add_argument(
        "--synthetic", action="store_true", help="use synthetic micrographs even if Super1 can be had"
    )
    args, extra = parser.parse_known_args(argv)
    unknown = [
        a for a in extra if a.startswith("-") and not a.startswith(("--trainer.", "--data.", "--model."))
    ]
    if unknown:
        parser.error(
            f"unrecognized arguments: {' '.join(unknown)} (fit's are --trainer.*, --data.*, --model.*)"
        )

    from experiments.cli import cli_main
    from experiments.reproduce.figures import make_figure

    root = args.root or default_root()
    try:
        claim_output(args.output)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    origin = None if args.synthetic else find_super1(root, args.source)
    config = "demo.yaml" if origin is None else "demo_super1.yaml"
    data = "synthetic Super-like micrographs" if origin is None else f"NASA Super1 (from {origin})"
    print(f"demo: training on {data} with {config}", flush=True)
    common = ["--config", config, f"--trainer.default_root_dir={args.output}"]
    if origin is not None:
        common.append(f"--data.init_args.root={root}")
    common += extra
    cli = cli_main(["fit", *common])
    ckpt = cli.trainer.checkpoint_callback.best_model_path or cli.trainer.checkpoint_callback.last_model_path
    cli = cli_main(["test", *common, f"--ckpt_path={ckpt}"])

    results = json.loads((args.output / "results.json").read_text())
    test = results["metrics"]["test"]
    print(f"\nper-class test IoU on {data}, after {results['wall_time_s']:.0f} s of training:")
    for name in results["class_names"][1:]:
        print(f"  {name:<12} {test[f'iou_{name}']:.3f}")
    print(f"  {'mean (fg)':<12} {test['iou']:.3f}    NASA IoU {test['nasa_iou']:.3f}")
    panel = args.output / "demo_panel.png"
    make_figure(cli.datamodule, [Path(ckpt)], ["prediction"], 4, "test", panel)
    print(f"\npanel: {panel}\nrun folder: {args.output}")
    return 0
