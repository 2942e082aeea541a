"""Sweep files and the local sweep runner: grid expansion, W&B-style command lines, resume, run folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from datamodules.nasa import NASA_EBC_EVAL_CROP, NASA_SETS
from experiments.cli import CONFIGS
from experiments.reproduce import sweep
from experiments.reproduce.run import AXES, best_checkpoint, cli_args, resolve, run_dir

SWEEP_FILES = sorted(sweep.SWEEPS.glob("table*.yaml"))
TWO_RUNS = {
    "program": "experiments/__main__.py",
    "command": ["${env}", "${interpreter}", "-m", "experiments", "run", "${args}"],
    "method": "grid",
    "parameters": {
        "dataset": {"value": "synthetic"},
        "model": {"value": "unet"},
        "encoder": {"value": "resnet18"},
        "weights": {"value": "none"},
        "seed": {"values": [0, 1]},
    },
}


def test_every_table_has_a_wandb_grid_file():
    assert [f.stem for f in SWEEP_FILES] == ["table4", "table5", "table6", "table7", "table8"]
    for path in SWEEP_FILES:
        spec = sweep.load_sweep(path)
        assert spec["method"] == "grid" and "${args}" in spec["command"]
        assert spec["command"][:5] == ["${env}", "${interpreter}", "-m", "experiments", "run"]
        for point in sweep.expand(spec["parameters"]):
            axes = resolve(point)
            assert set(axes) <= set(AXES) and axes["dataset"] and axes["model"]


def test_table_sweeps_train_and_score_as_nasa():
    """Every dataset config a table sweep runs uses NASA's pipeline and, for EBC, NASA's evaluation crop."""
    datasets = {p["dataset"] for f in SWEEP_FILES for p in sweep.expand(sweep.load_sweep(f)["parameters"])}
    assert datasets == set(NASA_SETS)
    for name in datasets:
        init_args = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["data"]["init_args"]
        dm = NASA_SETS[name](**init_args)
        assert dm.augment == ("nasa_ebc" if name.startswith("ebc") else "nasa_super"), name
        assert dm.eval_crop == (NASA_EBC_EVAL_CROP if name.startswith("ebc") else None), name


def test_grid_expansion_and_filters():
    runs = sweep.expand(sweep.load_sweep("table5.yaml")["parameters"])
    assert len(runs) == 7 * 5 * 3 * 3
    picked = sweep.select(runs, sweep.parse_filters(["dataset=super1,super2", "weights=micronet"]))
    assert len(picked) == 2 * 5 * 3 and {r["dataset"] for r in picked} == {"super1", "super2"}
    with pytest.raises(SystemExit, match="not a sweep parameter"):
        sweep.select(runs, {"colour": {"red"}})


def test_command_line_is_what_wandb_agent_runs():
    point = {"dataset": "super4", "setup": "model=cs_unet,encoder=resnet50", "seed": 1}
    command = sweep.command_line(sweep.load_sweep("table4.yaml"), point, ["--trainer.max_epochs=2"])
    assert command == [
        sys.executable, "-m", "experiments", "run",
        "--dataset=super4", "--setup=model=cs_unet,encoder=resnet50", "--seed=1", "--trainer.max_epochs=2",
    ]  # fmt: skip


def test_run_folder_and_cli_arguments(tmp_path):
    params = resolve(
        {"dataset": "super4", "setup": "model=cs_unet,encoder=resnet50,weights=microlite", "seed": 2}
    )
    assert run_dir(params, tmp_path) == tmp_path / "super4" / "cs_unet_resnet50_microlite_s2"
    swin = {"dataset": "ebc3", "model": "swin_unet", "weights": "/w/my.ckpt", "swin_depth": "original"}
    assert run_dir(swin, tmp_path) == tmp_path / "ebc3" / "swin_unet_my_original_s0"
    args = cli_args({**params, "swin_depth": "intermediate", "weights": "imagenet-micronet+microlite"})
    assert args[:4] == ["--config", "super4.yaml", "--config", "models/cs_unet.yaml"]
    assert "--model.init_args.weights={cnn: imagenet-micronet, swin: microlite}" in args
    assert "--model.init_args.depth=intermediate" in args and "--seed_everything=2" in args
    with pytest.raises(SystemExit, match="also has"):
        resolve({"model": "unet", "setup": "model=cs_unet"})


def test_best_checkpoint_prefers_best_over_last(tmp_path):
    assert best_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").touch()
    (tmp_path / "checkpoints" / "epoch=3-best.ckpt").touch()
    assert best_checkpoint(tmp_path).name == "epoch=3-best.ckpt"
    (tmp_path / "checkpoints" / "best.ckpt").touch()
    assert best_checkpoint(tmp_path).name == "best.ckpt"


def test_dry_run_lists_pending_runs_and_skips_finished(tmp_path, capsys):
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(TWO_RUNS, sort_keys=False))
    runs = tmp_path / "outputs"
    done = run_dir(
        {"dataset": "synthetic", "model": "unet", "encoder": "resnet18", "weights": "none", "seed": 0}, runs
    )
    done.mkdir(parents=True)
    (done / "results.json").write_text(json.dumps({"metrics": {"test": {"iou": 0.5}}}))
    assert (
        sweep.main(
            [str(path), "--dry-run", "--runs-dir", str(runs), "--extra", "--trainer.fast_dev_run=true"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 runs in the grid, 2 selected, 1 done, 1 to run now" in out
    assert f"--seed=1 --runs_dir={runs} --trainer.fast_dev_run=true" in out and "--seed=0" not in out


def test_failures_are_listed_and_exit_nonzero(tmp_path, capsys):
    spec = {**TWO_RUNS, "command": ["${interpreter}", "-c", "import sys; sys.exit(3)", "${args}"]}
    path = tmp_path / "fail.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert sweep.main([str(path), "--runs-dir", str(tmp_path / "out"), "--max-runs", "1"]) == 1
    err = capsys.readouterr().err
    assert "FAILED (exit 3)" in err and "unet_resnet18_none_s0" in err


@pytest.mark.parametrize("interrupted", [False, True])
def test_run_resumes_an_interrupted_fit_from_its_last_checkpoint(tmp_path, monkeypatch, interrupted):
    """`fit` refuses to overwrite a run folder's checkpoints, so `run` (and sweeps) continue from last.ckpt."""
    from experiments.reproduce import run

    params = {"dataset": "synthetic", "model": "unet", "encoder": "resnet18", "weights": "none", "seed": 0}
    folder = run_dir(params, tmp_path)
    if interrupted:
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "last.ckpt").touch()
    commands = []

    def fake(command, env=None, **kwargs):
        commands.append(command)
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        (folder / "checkpoints" / "best.ckpt").touch()
        (folder / "results.json").write_text("{}")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(run.subprocess, "run", fake)
    assert run.main([f"--{k}={v}" for k, v in params.items()] + [f"--runs_dir={tmp_path}"]) == 0
    fit = commands[0]
    assert fit[3] == "fit" and (f"--ckpt_path={folder / 'checkpoints' / 'last.ckpt'}" in fit) == interrupted
