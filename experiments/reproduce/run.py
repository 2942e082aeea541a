"""One run of the paper's grid: `fit`, then `test` of the best checkpoint, in one run folder.

This is what every sweep launches (`wandb agent` and the local `python -m experiments sweep` alike):

    python -m experiments run --dataset=super4 --model=cs_unet --encoder=resnet50 \
        --weights=imagenet-micronet+microlite --swin_depth=intermediate --seed=0 [CLI args...]

The axes become LightningCLI arguments (`AXIS_ARGS`); `--setup=model=unet,encoder=resnet50,...` sets several
axes at once (for grids whose models differ in their axes, like Table 4). Anything else is passed through
to both `fit` and `test` (e.g. `--trainer.max_epochs=3`). The two stages run as separate `python -m experiments fit|test`
processes so that each is exactly the documented command line (`fit` resumes from the run folder's
`checkpoints/last.ckpt` when an earlier attempt left one, as `fit` refuses to overwrite a run); they share one W&B run id
(`WANDB_RUN_ID`, resumed by the test stage), so a sweep shows one run with training and test metrics.
The run folder is the CLI's own (`$MICROSEG_OUTPUTS/<dataset>/<run name>`, set from `--runs_dir`).
A `weights` value `cnn+swin` (e.g. `imagenet-micronet+microlite`) names one source per encoder of
CS-UNet (passed to the CLI as the mapping `{cnn: ..., swin: ...}`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

#: sweep axis -> LightningCLI option it sets (dataset and model select config files instead)
AXIS_ARGS = {
    "encoder": "--model.init_args.encoder_name",
    "weights": "--model.init_args.weights",
    "swin_depth": "--model.init_args.depth",
    "seed": "--seed_everything",
}
AXES = ("dataset", "model", *AXIS_ARGS)
DEFAULT_RUNS = os.environ.get("MICROSEG_OUTPUTS", "outputs")


def weights_arg(value: str) -> str:
    """`cnn+swin` (e.g. `imagenet-micronet+microlite`) -> the per-part mapping the model's `weights` takes.

    `experiments.cli.run_name` joins a per-part mapping back with "+", so the run folder keeps this name.
    """
    if "+" not in value:
        return value
    cnn, swin = value.split("+", 1)
    return f"{{cnn: {cnn}, swin: {swin}}}"


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
    """`<runs>/<dataset>/<model>_<encoder>_<weights>_<depth>_s<seed>`, axes the model lacks left out.

    The same name `experiments.cli.run_name` gives the folder `fit` writes into (docs/design.md, "Runs").
    """
    params = resolve(params)
    weights = params.get("weights")
    if weights and ("/" in str(weights) or str(weights).endswith((".ckpt", ".pth", ".pt", ".tar"))):
        weights = Path(str(weights)).stem  # a weights file: its name, not its path
    parts = [params.get("model"), params.get("encoder"), weights, params.get("swin_depth")]
    name = "_".join(str(p) for p in parts if p not in (None, "")) + f"_s{params.get('seed') or 0}"
    return Path(runs_dir) / str(params.get("dataset")) / name


def cli_args(params: dict) -> list[str]:
    """LightningCLI arguments shared by the `fit` and `test` stages of one run."""
    if not params.get("dataset") or not params.get("model"):
        raise SystemExit("run: --dataset and --model are required (e.g. --dataset=super1 --model=unet)")
    args = ["--config", f"{params['dataset']}.yaml", "--config", f"models/{params['model']}.yaml"]
    for axis, option in AXIS_ARGS.items():
        if params.get(axis) not in (None, ""):
            value = weights_arg(str(params[axis])) if axis == "weights" else params[axis]
            args.append(f"{option}={value}")
    return args


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
    shared = cli_args(params)
    env = {**os.environ, "MICROSEG_OUTPUTS": str(directory.parents[1])}
    env.setdefault("WANDB_RUN_ID", uuid.uuid4().hex[:8])  # wandb agent sets its own
    command = [sys.executable, "-m", "experiments"]
    last = directory / "checkpoints" / "last.ckpt"
    resume = [f"--ckpt_path={last}"] if last.is_file() else []  # an interrupted run continues where it was
    print(f"run {directory}: fit" + (f" (resuming {last})" if resume else ""), flush=True)
    fit = subprocess.run([*command, "fit", *shared, *resume, *extra], env=env)
    if fit.returncode:
        print(f"run {directory}: fit failed (exit {fit.returncode})", file=sys.stderr)
        return fit.returncode
    if not directory.is_dir():
        print(
            f"run {directory}: fit wrote its run folder elsewhere (see experiments.cli.run_name)",
            file=sys.stderr,
        )
        return 1
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
