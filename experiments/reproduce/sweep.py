"""Run a W&B sweep file locally, without a W&B server: sequential, resumable, one folder per run.

    python -m experiments sweep experiments/sweeps/table4.yaml [--filter dataset=super1,super2]
        [--max-runs N] [--dry-run] [--runs-dir outputs] [--extra --trainer.max_epochs=3 ...]

The grid is expanded from the file's `parameters` (`value` / `values`, in file order) and each run is
the file's own `command` with W&B's macros filled in the way `wandb agent` fills them (`${args}` ->
`--key=value`), so a local run and an agent run execute the same command line. A run whose folder
already holds `results.json` is skipped; failures are listed at the end (log in `<run>/run.log`).
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from tqdm import tqdm

from experiments.reproduce.run import DEFAULT_RUNS, run_dir

SWEEPS = Path(__file__).parents[1] / "sweeps"


def load_sweep(path: str | Path) -> dict:
    """Read a sweep YAML (a bare `table4.yaml` resolves to experiments/sweeps/) and check its shape."""
    path = Path(path)
    if not path.is_file() and (SWEEPS / path).is_file():
        path = SWEEPS / path
    if not path.is_file():
        raise SystemExit(f"sweep file {path} not found; the paper's grids are in {SWEEPS}/table4..8.yaml")
    sweep = yaml.safe_load(path.read_text())
    missing = [key for key in ("command", "parameters") if key not in (sweep or {})]
    if missing:
        raise SystemExit(
            f"{path}: missing {missing}; a sweep file needs `command`, `method` and `parameters`"
        )
    if sweep.get("method", "grid") != "grid":
        raise SystemExit(f"{path}: method {sweep['method']!r}; the local runner expands grids only")
    for name, spec in sweep["parameters"].items():
        if not isinstance(spec, dict) or not ({"value", "values"} & spec.keys()):
            raise SystemExit(f"{path}: parameter {name!r} needs `value` or `values` for a grid")
    return sweep


def expand(parameters: dict) -> list[dict]:
    """Every combination of the grid, as W&B's grid search enumerates it."""
    names = list(parameters)
    choices = [
        parameters[n]["values"] if "values" in parameters[n] else [parameters[n]["value"]] for n in names
    ]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def parse_filters(filters: list[str]) -> dict[str, set[str]]:
    parsed: dict[str, set[str]] = {}
    for item in filters:
        key, sep, values = item.partition("=")
        if not sep:
            raise SystemExit(f"--filter {item!r}: write key=value[,value...], e.g. dataset=super1")
        parsed.setdefault(key, set()).update(values.split(","))
    return parsed


def select(runs: list[dict], filters: dict[str, set[str]]) -> list[dict]:
    unknown = [key for key in filters if runs and key not in runs[0]]
    if unknown:
        raise SystemExit(f"--filter on {unknown}: not a sweep parameter; known: {', '.join(runs[0])}")
    return [r for r in runs if all(str(r[k]) in v for k, v in filters.items())]


def command_line(sweep: dict, params: dict, extra: list[str]) -> list[str]:
    """The sweep's `command` with `${interpreter}`, `${program}`, `${args}`... filled in, plus `extra`."""
    macros = {
        "${env}": [],  # wandb agent puts /usr/bin/env here; the interpreter below is already absolute
        "${interpreter}": [sys.executable],
        "${program}": [str(sweep.get("program", ""))],
        "${args}": [f"--{k}={v}" for k, v in params.items()],
        "${args_no_hyphens}": [f"{k}={v}" for k, v in params.items()],
    }
    command: list[str] = []
    for chunk in sweep["command"]:
        command += macros.get(str(chunk), [str(chunk)])
    return command + extra


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments sweep", description=__doc__.split("\n")[0])
    parser.add_argument("sweep", help="a W&B sweep YAML, e.g. experiments/sweeps/table4.yaml")
    parser.add_argument("--filter", action="append", default=[], help="key=value[,value...] (repeatable)")
    parser.add_argument(
        "--max-runs", type=int, default=None, help="stop after this many runs (not counting skipped)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the command lines, run nothing")
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS, help="root of the run folders")
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="arguments appended to every run"
    )
    args = parser.parse_args(argv)

    sweep = load_sweep(args.sweep)
    grid = expand(sweep["parameters"])
    runs = select(grid, parse_filters(args.filter))
    extra = [f"--runs_dir={args.runs_dir}", *args.extra]
    todo = [r for r in runs if not (run_dir(r, args.runs_dir) / "results.json").is_file()]
    done = len(runs) - len(todo)
    if args.max_runs is not None:
        todo = todo[: args.max_runs]
    print(
        f"{args.sweep}: {len(grid)} runs in the grid, {len(runs)} selected, {done} done, {len(todo)} to run now"
    )
    if args.dry_run:
        for params in todo:
            print(shlex.join(command_line(sweep, params, extra)))
        return 0

    failures = []
    for params in tqdm(todo, desc="runs", unit="run"):
        directory = run_dir(params, args.runs_dir)
        directory.mkdir(parents=True, exist_ok=True)
        tqdm.write(f"-> {directory}")
        with open(directory / "run.log", "w") as log:
            code = subprocess.run(
                command_line(sweep, params, extra), stdout=log, stderr=subprocess.STDOUT
            ).returncode
        if code:
            failures.append((directory, code))
    for directory, code in failures:
        print(f"FAILED (exit {code}): {directory}  (log: {directory / 'run.log'})", file=sys.stderr)
    print(f"{len(todo) - len(failures)}/{len(todo)} runs succeeded")
    return 1 if failures else 0
