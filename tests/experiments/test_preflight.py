"""Before a run starts: an existing run folder is not overwritten, a missing or mismatched checkpoint is one line."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from experiments.cli import cli_main, main
from lightning_modules.segmentation import SegmentationModule
from tests.tiny import TinyData, register_tiny

TINY = {
    "data": {
        "class_path": "datamodules.Synthetic",
        "init_args": {"size": 32, "num_train": 2, "num_val": 1, "num_test": 1, "batch_size": 2},
    },
    "model": {"class_path": "lightning_modules.SegmentationModule", "init_args": {"net": "tiny"}},
    "trainer": {"logger": False, "enable_progress_bar": False, "accelerator": "cpu", "max_epochs": 2},
}


@pytest.fixture
def tiny_config(tmp_path, monkeypatch) -> Path:
    register_tiny(monkeypatch)
    monkeypatch.chdir(tmp_path)  # a run folder left to its default lands in ./outputs
    torch.set_num_threads(1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.slow
def test_fit_into_a_run_folder_refuses_to_replace_the_run(tiny_config, tmp_path, capsys):
    """Before: `--trainer.fast_dev_run=true` replaced last.ckpt (global_step 2 -> 1) without a word."""
    run = tmp_path / "run"
    cli_main(["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={run}"])
    last = run / "checkpoints" / "last.ckpt"
    before = {p.name: p.read_bytes() for p in [last, run / "config.yaml"]}
    err = _error(
        capsys,
        "fit",
        "--config",
        str(tiny_config),
        f"--trainer.default_root_dir={run}",
        "--trainer.fast_dev_run=true",
    )
    assert err.startswith(f"error: {run}: already holds a run (best.ckpt, last.ckpt)")
    assert f"--ckpt_path={last}" in err and "--trainer.default_root_dir=" in err
    assert {p.name: p.read_bytes() for p in [last, run / "config.yaml"]} == before
    # resuming from the folder's own checkpoint is what `run` and sweeps do: allowed
    resumed = cli_main(
        ["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={run}", "--trainer.max_epochs=3",
         f"--ckpt_path={last}"]
    )  # fmt: skip
    assert resumed.trainer.global_step == 3


@pytest.mark.slow
def test_test_writes_its_own_config_and_leaves_the_runs(tiny_config, tmp_path, capsys):
    """Before: `test` (failed or not) rewrote the config.yaml of the run it evaluated."""
    run = tmp_path / "run"
    cli_main(
        ["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={run}", "--trainer.max_epochs=1"]
    )
    recipe = (run / "config.yaml").read_bytes()
    ckpt = run / "checkpoints" / "best.ckpt"
    cli_main(
        ["test", "--config", str(tiny_config), f"--trainer.default_root_dir={run}", f"--ckpt_path={ckpt}"]
    )
    assert (run / "config.yaml").read_bytes() == recipe
    assert "ckpt_path: " + str(ckpt) in (run / "test_config.yaml").read_text()


def test_a_missing_checkpoint_is_one_line_naming_the_ones_there(tiny_config, tmp_path, capsys):
    """Before: a 46-line traceback, after the data had been loaded."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.ckpt").touch()
    missing = tmp_path / "checkpoints" / "bset.ckpt"
    err = _error(capsys, "test", "--config", str(tiny_config), f"--ckpt_path={missing}")
    assert err.startswith(f"error: --ckpt_path {missing}: file not found ({missing.parent} holds best.ckpt)")
    err = _error(capsys, "test", "--config", str(tiny_config), f"--ckpt_path={tmp_path}")  # the run folder
    assert (
        err
        == f"error: --ckpt_path {tmp_path}: is a folder; pass one of its checkpoints: {missing.parent / 'best.ckpt'}"
    )


def _checkpoint(path: Path, module: SegmentationModule) -> Path:
    """A real Lightning checkpoint of ``module`` after one training step, with a config.yaml in its run folder."""
    path.parent.mkdir(parents=True)
    (path.parent.parent / "config.yaml").write_text("{}")
    trainer = L.Trainer(
        accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, TinyData())
    trainer.save_checkpoint(path)
    return path


def test_a_checkpoint_of_other_classes_names_both_class_lists(tiny_config, tmp_path, capsys):
    """Before: `size mismatch for net.body.2.weight` deep in load_state_dict, as a traceback."""
    names = ["matrix", "a", "b", "c", "d"]
    ckpt = _checkpoint(
        tmp_path / "run" / "checkpoints" / "best.ckpt",
        SegmentationModule("tiny", num_classes=5, class_names=names),
    )
    err = _error(capsys, "test", "--config", str(tiny_config), f"--ckpt_path={ckpt}")
    assert err == (
        f"error: --ckpt_path {ckpt}: does not fit this config: it was trained for 5 classes {names}, "
        "this config has 3 classes ['matrix', 'secondary', 'tertiary']; use the config it was trained with "
        f"(--config {tmp_path / 'run' / 'config.yaml'})"
    )


def test_a_checkpoint_of_another_network_names_both(tiny_config, tmp_path, capsys):
    ckpt = _checkpoint(
        tmp_path / "run" / "checkpoints" / "last.ckpt", SegmentationModule("tiny", {"width": 6}, 3)
    )
    err = _error(capsys, "fit", "--config", str(tiny_config), f"--ckpt_path={ckpt}")
    assert (
        "its network tiny(width=6) is not the config's tiny() (net.body.0.weight is [6, 3, 3, 3] there" in err
    )


def test_a_file_that_is_no_checkpoint_is_one_line(tiny_config, tmp_path, capsys):
    bogus = tmp_path / "model.ckpt"
    bogus.write_text("not a checkpoint")
    err = _error(capsys, "test", "--config", str(tiny_config), f"--ckpt_path={bogus}")
    assert err.startswith(f"error: --ckpt_path {bogus}: not a readable checkpoint (")
