"""The paper's Tables 4-8 from our runs: `python -m experiments table 4 --runs outputs|wandb:ENTITY/PROJECT`.

A table is read over its sweep's grid (`experiments/sweeps/tableN.yaml`): each grid point is one run,
found as `<runs>/<dataset>/<run>/results.json` (or as the W&B run whose config holds those axes).
Cells are IoU in percent on the `test` split (`--metric iou`, our headline, or `nasa_iou`, NASA's IoU,
the definition their and the paper's published numbers use): the best set-up's mean over seeds (Table 4) or
mean ± std over seeds (Tables 5-8); the best cell of each row is bold. The paper's published numbers
(`experiments/reproduce/published/tableN.csv`, data only) are shown beside ours; a missing number is "–", and the
runs of the grid that have no result yet are listed under the table.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from experiments.reproduce.run import AXES, resolve, run_dir
from experiments.reproduce.sweep import expand, load_sweep, parse_filters, select

PAPER = Path(__file__).parent / "published"
DATASET_NAMES = {f"super{i}": f"Super-{i}" for i in range(1, 5)} | {
    f"ebc{i}": f"EBC-{i}" for i in range(1, 4)
}
DASH = "–"
MAX_LISTED = 30


@dataclass(frozen=True)
class Layout:
    """How runs become a table: which axes form rows and columns, and how seeds are reduced."""

    title: str
    sweep: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    reduce: str = "mean"  # "mean": mean ± std over seeds; "best": best set-up's mean


TABLES = {
    "4": Layout("Table 4: best test IoU (%) per model, microscopy-pretrained encoders", "table4.yaml", ("dataset",), ("model",), "best"),
    "5": Layout("Table 5: UNet encoders x pretraining, test IoU (%)", "table5.yaml", ("dataset", "encoder"), ("weights",)),
    "6": Layout("Table 6: transformer segmenters x Swin-T depth x pretraining, test IoU (%)", "table6.yaml", ("dataset", "model"), ("swin_depth", "weights")),
    "7": Layout("Table 7: CS-UNet x Swin-T depth x pretraining, test IoU (%)", "table7.yaml", ("dataset",), ("swin_depth", "weights")),
    "8": Layout("Table 8 (ours): CS-UNet CNN encoders, microscopy pretraining, test IoU (%)", "table8.yaml", ("dataset",), ("encoder",)),
}  # fmt: skip


def _key(record: dict, axes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(record.get(axis) or DASH) for axis in axes)


def local_records(
    grid: list[dict], runs: Path, split: str, metric: str = "iou"
) -> tuple[list[dict], list[dict]]:
    """(records with the metric's `value` in %, grid points without results.json) from a runs folder."""
    found, missing = [], []
    for point in grid:
        path = run_dir(point, runs) / "results.json"
        if not path.is_file():
            missing.append(point)
            continue
        metrics = json.loads(path.read_text()).get("metrics", {}).get(split, {})
        if metric in metrics:
            found.append({**resolve(point), "value": 100 * float(metrics[metric])})
        else:
            missing.append(point)
    return found, missing


def wandb_records(
    grid: list[dict], path: str, split: str, metric: str = "iou"
) -> tuple[list[dict], list[dict]]:
    """The same from W&B: runs whose config holds a grid point's axes, metric from the run summary."""
    import wandb

    by_axes = {}
    for run in wandb.Api().runs(path):
        config = resolve({k: v for k, v in run.config.items() if k in (*AXES, "setup")})
        value = run.summary.get(f"{split}/{metric}")
        if value is not None:
            by_axes[_key(config, AXES)] = 100 * float(value)
    found, missing = [], []
    for point in grid:
        axes = resolve(point)
        key = _key(axes, AXES)
        (found.append({**axes, "value": by_axes[key]}) if key in by_axes else missing.append(point))
    return found, missing


def paper_numbers(table: str) -> dict[str, dict[str, str]]:
    """{dataset: {column label: IoU %}} from experiments/reproduce/published/tableN.csv (absent file: none)."""
    path = PAPER / f"table{table}.csv"
    numbers: dict[str, dict[str, str]] = defaultdict(dict)
    if path.is_file():
        with path.open() as f:
            for row in csv.DictReader(f):
                numbers[row["dataset"]][row["column"]] = row["iou"]
    return numbers


def aggregate(layout: Layout, records: list[dict]) -> dict[tuple, dict[tuple, dict]]:
    """{row key: {column key: {"mean", "std", "n", "setup"}}} over seeds (and set-ups for "best")."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    setup_axes = tuple(a for a in AXES if a != "seed")
    for r in records:
        groups[(_key(r, layout.rows), _key(r, layout.columns), _key(r, setup_axes))].append(r["value"])
    table: dict[tuple, dict[tuple, dict]] = defaultdict(dict)
    for (row, col, setup), values in groups.items():
        cell = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values),
            "setup": " ".join(f"{a}={v}" for a, v in zip(setup_axes, setup, strict=True) if v != DASH),
        }
        if layout.reduce == "mean" and col in table[row]:
            raise ValueError(
                f"{layout.sweep}: row {row} column {col} mixes set-ups; add an axis to the layout"
            )
        if col not in table[row] or cell["mean"] > table[row][col]["mean"]:
            table[row][col] = cell
    return table


def _order(keys: list[tuple]) -> list[tuple]:
    return list(dict.fromkeys(keys))


def render(
    layout: Layout, records: list[dict], grid: list[dict], paper: dict | None = None
) -> tuple[str, list[dict]]:
    """(Markdown table, CSV rows) in the grid's order of rows and columns."""
    points = [resolve(p) for p in grid]
    rows = _order([_key(p, layout.rows) for p in points])
    cols = _order([_key(p, layout.columns) for p in points])
    cells = aggregate(layout, records)
    paper_cols = _order([c for numbers in (paper or {}).values() for c in numbers])
    header = [*layout.rows, *(" / ".join(c) for c in cols), *(f"paper: {c}" for c in paper_cols)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    csv_rows = []
    for row in rows:
        present = cells.get(row, {})
        best = max((c["mean"] for c in present.values()), default=None)
        shown = []
        for col in cols:
            cell = present.get(col)
            text = DASH
            if cell is not None:
                text = f"{cell['mean']:.2f}" + (
                    f" ± {cell['std']:.2f}" if cell["std"] is not None and layout.reduce == "mean" else ""
                )
                text = f"**{text}**" if cell["mean"] == best and len(present) > 1 else text
                csv_rows.append(
                    {**dict(zip(layout.rows, row, strict=True)), "column": " / ".join(col), **cell}
                )
            shown.append(text)
        published = (paper or {}).get(row[0], {})
        label = [DATASET_NAMES.get(row[0], row[0]), *row[1:]]
        lines.append(
            "| " + " | ".join([*label, *shown, *(published.get(c, DASH) for c in paper_cols)]) + " |"
        )
    return "\n".join([f"**{layout.title}**", "", *lines]), csv_rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments table", description=__doc__.split("\n")[0])
    parser.add_argument("table", choices=sorted(TABLES), help="which of the paper's tables")
    parser.add_argument("--runs", default="outputs", help="runs folder, or wandb:ENTITY/PROJECT")
    parser.add_argument("--split", default="test", help="test set to report (test, test_ood)")
    parser.add_argument(
        "--metric",
        choices=("iou", "nasa_iou"),
        default="iou",
        help="iou: our headline (mean foreground IoU); nasa_iou: NASA's IoU, comparable with the published numbers",
    )
    parser.add_argument(
        "--filter", action="append", default=[], help="restrict the grid: key=value[,value...]"
    )
    parser.add_argument(
        "--sweep", default=None, help="another grid in this table's layout (default tableN.yaml)"
    )
    parser.add_argument("--output-dir", default=None, help="where tableN.md/.csv go (default <runs>/tables)")
    args = parser.parse_args(argv)

    layout = TABLES[args.table]
    sweep_file = args.sweep or layout.sweep
    grid = select(expand(load_sweep(sweep_file)["parameters"]), parse_filters(args.filter))
    if args.runs.startswith("wandb:"):
        records, missing = wandb_records(grid, args.runs.removeprefix("wandb:"), args.split, args.metric)
        out = Path(args.output_dir or "tables")
    else:
        runs = Path(args.runs)
        records, missing = local_records(grid, runs, args.split, args.metric)
        out = Path(args.output_dir or runs / "tables")
    if not records:
        print(
            f"No results for Table {args.table} in {args.runs}: none of its {len(grid)} runs has a results.json "
            f"with {args.split}/{args.metric}.\nRun the grid first: python -m experiments sweep "
            f"{sweep_file} --runs-dir {args.runs}  (or `wandb agent` on it), "
            "or pass --runs DIR / --runs wandb:ENTITY/PROJECT.",
            file=sys.stderr,
        )
        return 2
    if args.metric != "iou":
        layout = dataclasses.replace(layout, title=f"{layout.title}, metric {args.metric}")
    markdown, csv_rows = render(layout, records, grid, paper_numbers(args.table))
    if missing:
        markdown += f"\n\nMissing runs ({len(missing)} of {len(grid)}; run the sweep to fill them):\n"
        on_wandb = args.runs.startswith("wandb:")
        names = [
            " ".join(f"{k}={v}" for k, v in p.items()) if on_wandb else str(run_dir(p, args.runs))
            for p in missing
        ]
        markdown += "\n".join(f"- {name}" for name in names[:MAX_LISTED])
        markdown += f"\n- ... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    print(markdown)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"table{args.table}.md").write_text(markdown + "\n")
    with (out / f"table{args.table}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        writer.writeheader()
        writer.writerows(csv_rows)
    print(f"\nwritten: {out / f'table{args.table}.md'}, {out / f'table{args.table}.csv'}")
    return 0
