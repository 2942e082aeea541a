"""One run of the paper's grid: `fit`, then `test` of the best checkpoint, in one run folder.

This is what every sweep launches (`wandb agent` and the local `python -m experiments sweep` alike):

    python -m experiments run --dataset=super4 --model=cs_unet --encoder=resnet50 \
        --weights=imagenet-micronet+microlite --swin_depth=intermediate --seed=0 [CLI args...]

The axes become LightningCLI arguments (`AXIS_ARGS`); `--setup=model=unet,encoder=resnet50,...` sets several
axes at once (for grids whose models differ in their axes, like Table 4). Anything else is passed through
to both `fit` and `test` (e.g. `--trainer.max_epochs=3`). The two stages run as separate `python -m experiments fit|test`
processes so that each is exactly the documented command line; they share one W&B run id
(`WANDB_RUN_ID`, resumed by the test stage), so a sweep shows one run with training and test metrics.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

#: sweep axis -> LightningCLI option it sets (dataset and model select config files instead)
AXIS_ARGS = {
    "encoder": "--model.init_args.encoder_name",
    "weights": "--model.init_args.weights",
    "swin_depth": "--model.init_args.depth",
    "seed": "--seed_everything",
}
AXES = ("dataset", "model", *AXIS_ARGS)
DEFAULT_RUNS = os.environ.get("MICROSEG_RUNS", "outputs")


def _slug(value: object) -> str:
    """A folder-safe token for an axis value (a weights path becomes its file stem)."""
    if value is None or value == "":
        return "none"
    text = str(value)
    if "/" in text or text.endswith((".ckpt", ".pth", ".pt", ".tar")):
        text = Path(text).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text)


def resolve(params: dict) -> dict:
    """The run's axes, with a `setup` string ("model=unet,encoder=resnet50,...") spread into its axes."""
    setup = params.get("setup") or ""
    params = {k: v for k, v in params.items() if k != "setup"}
    for pair in filter(None, str(setup).split(",")):
        key, sep, value = pair.partition("=")
        if not sep or key not in AXES:
            raise SystemExit(f"setup {pair!r}: write axis=value with an axis in {', '.join(AXES)}")
        if params.get(key) not in (None, "", value):
            raise SystemExit(f"setup sets {key}={value} but the run also has {key}={params[key]}")
        params[key] = value
    return params


def run_dir(params: dict, runs_dir: str | Path = DEFAULT_RUNS) -> Path:
    """`<runs>/<dataset>/<model>_<encoder>_<weights>_<depth>_s<seed>` (docs/design.md, "Runs")."""
    params = resolve(params)
    axes = ("model", "encoder", "weights", "swin_depth")
    name = "_".join(_slug(params.get(axis)) for axis in axes)
    return Path(runs_dir) / _slug(params.get("dataset")) / f"{name}_s{params.get('seed', 0)}"


def cli_args(params: dict, directory: Path) -> list[str]:
    """LightningCLI arguments shared by the `fit` and `test` stages of one run."""
    if not params.get("dataset") or not params.get("model"):
        raise SystemExit("run: --dataset and --model are required (e.g. --dataset=super1 --model=unet)")
    args = ["--config", f"{params['dataset']}.yaml", "--config", f"models/{params['model']}.yaml"]
    for axis, option in AXIS_ARGS.items():
        if params.get(axis) not in (None, ""):
            args.append(f"{option}={params[axis]}")
    return [*args, f"--trainer.default_root_dir={directory}"]


def best_checkpoint(directory: Path) -> Path | None:
    """`checkpoints/best.ckpt`, else the newest `*best*` or non-`last` checkpoint under the run folder."""
    preferred = directory / "checkpoints" / "best.ckpt"
    if preferred.is_file():
        return preferred
    found = sorted(directory.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    ranked = [p for p in found if "best" in p.name] + [
        p for p in found if "best" not in p.name and p.stem != "last"
    ]
    return ranked[0] if ranked else None


def parse(argv: list[str]) -> tuple[dict, Path, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m experiments run", description=__doc__.split("\n")[0])
    for axis in (*AXES, "setup"):
        parser.add_argument(f"--{axis}", default=None)
    parser.add_argument("--runs_dir", "--runs-dir", default=DEFAULT_RUNS, help="root of the run folders")
    known, extra = parser.parse_known_args(argv)
    params = resolve({axis: getattr(known, axis) for axis in (*AXES, "setup")})
    params["seed"] = int(params["seed"] or 0)
    return params, run_dir(params, known.runs_dir), extra


def main(argv: list[str]) -> int:
    params, directory, extra = parse(argv)
    directory.mkdir(parents=True, exist_ok=True)
    shared = cli_args(params, directory)
    env = dict(os.environ)
    if "WANDB_RUN_ID" not in env:
        import wandb.util

        env["WANDB_RUN_ID"] = wandb.util.generate_id()
    command = [sys.executable, "-m", "experiments"]
    print(f"run {directory}: fit", flush=True)
    fit = subprocess.run([*command, "fit", *shared, *extra], env=env)
    if fit.returncode:
        print(f"run {directory}: fit failed (exit {fit.returncode})", file=sys.stderr)
        return fit.returncode
    ckpt = best_checkpoint(directory)
    if ckpt is None:
        print(
            f"run {directory}: fit saved no checkpoint; cannot test (is checkpointing disabled?)",
            file=sys.stderr,
        )
        return 1
    print(f"run {directory}: test {ckpt}", flush=True)
    test = subprocess.run(
        [*command, "test", *shared, f"--ckpt_path={ckpt}", *extra], env={**env, "WANDB_RESUME": "allow"}
    )
    if test.returncode:
        return test.returncode
    if not (directory / "results.json").is_file():
        print(f"run {directory}: test finished but wrote no results.json there", file=sys.stderr)
        return 1
    return 0
