"""`python -m experiments data download|check`: get the NASA benchmark and look at what is on disk.

python -m experiments data download [--dataset NAME|all] [--root DIR] [--from FILE_OR_DIR_OR_URL] [--force]
python -m experiments data check [--dataset NAME|all] [--root DIR] [--keep-crack]

Results go to stdout, errors to stderr (one line each, naming the file and the fix).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from datamodules.download import EXPECTED, SETS, count_files, fetch, set_files, set_name, verify
from datamodules.io import DataError, default_root, list_images, read_image, read_mask


def _names(dataset: str) -> list[str]:
    return list(SETS) if dataset.lower() == "all" else [set_name(dataset)]


def class_fractions(
    name: str, root: Path, keep_crack: bool = False
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Class names and ``split -> pixel fraction per class`` over every mask file of each split."""
    from datamodules.nasa import NASA_SETS  # imports Lightning: only `check` needs it

    cls = NASA_SETS[name.lower()]
    dm = cls(root=str(root), keep_crack=keep_crack) if name.startswith("EBC") else cls(root=str(root))
    fractions = {}
    for split in EXPECTED[name]:
        folder = root / name / f"{split}_annot"
        counts = np.zeros(dm.num_classes, np.int64)
        for path in list_images(folder) if folder.is_dir() else []:
            counts += np.bincount(dm.decode(read_mask(path), path).ravel(), minlength=dm.num_classes)
        fractions[split] = counts / max(1, counts.sum())
    return dm.class_names, fractions


def image_problems(set_dir: Path) -> list[str]:
    """Every image of the set read as training reads it: one line per file that cannot be."""
    problems = []
    for path in set_files(set_dir):
        if not path.parent.name.endswith("_annot"):
            try:
                read_image(path)
            except DataError as err:
                problems.append(str(err).split("; ")[0])
    return problems


def check(names: list[str], root: Path, keep_crack: bool, console: Console, errors: Console) -> int:
    """Print per-split counts and class fractions; return 1 when a set is missing, incomplete or damaged."""
    status = 0
    for name in names:
        set_dir = root / name
        repair = f"run `python -m experiments data download --dataset {name.lower()} --root {root}`"
        if not set_dir.is_dir():
            errors.print(f"[red]{set_dir}: missing[/red]; {repair}", soft_wrap=True)
            status = 1
            continue
        problems = verify(set_dir) + image_problems(set_dir)
        try:
            classes, fractions = class_fractions(name, root, keep_crack)
        except DataError as err:
            classes, fractions = [], {}
            problems.append(str(err).split("; ")[0])
        first = {}
        for problem in problems:  # one line per file: the first thing found wrong with it
            first.setdefault(problem.split(": ")[0], problem)
        counts = count_files(set_dir)
        table = Table(title=f"{name} ({set_dir})")
        for column in ["split", "images", "masks", *classes]:
            table.add_column(column, justify="left" if column == "split" else "right")
        for split, (images, masks) in counts.items():
            label = "different_test (test_ood)" if split == "different_test" else split
            shares = (f"{f:.3f}" for f in fractions[split]) if fractions else ()
            table.add_row(label, str(images), str(masks), *shares)
        console.print(table)
        for problem in first.values():
            errors.print(f"[red]error[/red]: {problem}; {repair} to repair it", soft_wrap=True)
            status = 1
        for split, (images, masks) in counts.items():
            if images < masks:
                console.print(
                    f"note: {name}/{split} lacks {masks - images} image(s) that have masks; loaders skip those"
                )
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("download", "check"):
        p = sub.add_parser(action)
        p.add_argument("--dataset", default="all", help="super1..super4, ebc1..ebc3 or all (default)")
        p.add_argument(
            "--root",
            type=Path,
            default=None,
            help="folder holding the sets (default $MICROSEG_DATA or data/)",
        )
        if action == "download":
            p.add_argument(
                "--from", dest="source", default=None, help="tarball, folder or URL (default: GitHub archive)"
            )
            p.add_argument(
                "--force", action="store_true", help="re-install every file even when the set verifies"
            )
        else:
            p.add_argument("--keep-crack", action="store_true", help="EBC: count crack as its own class")
    args = parser.parse_args(argv)
    root = args.root or default_root()
    console, errors = Console(), Console(stderr=True)
    try:
        names = _names(args.dataset)
        if args.action == "download":
            for name, what in fetch(names, root, args.source, force=args.force).items():
                console.print(f"{name}: {what} in {root / name}", soft_wrap=True)
            return 0
        return check(names, root, args.keep_crack, console, errors)
    except DataError as err:
        errors.print(f"[red]error[/red]: {err}", soft_wrap=True)
        return 2
