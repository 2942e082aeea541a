"""MicrosegCLI: config names, every YAML through --print_config, run names, and tiny runs of every model config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from experiments.cli import CONFIGS, cli_main, resolve_config_names, run_name

DATASETS = sorted(
    p.name
    for p in CONFIGS.glob("*.yaml")
    if p.name not in ("defaults.yaml", "microlite_finetune.yaml", "microlite_cnn.yaml")
)
MODELS = sorted(f"models/{p.name}" for p in (CONFIGS / "models").glob("*.yaml"))
TINY = [  # shrink any segmentation config to seconds on a CPU, with no time budget (steps, not seconds)
    "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu",
    "--trainer.max_time=null", "--trainer.check_val_every_n_epoch=1", "--data.init_args.crop_size=null",
    "--data.init_args.train_repeats=1", "--model.init_args.weights=none",
]  # fmt: skip


def test_bare_config_names_resolve_to_the_configs_folder(tmp_path) -> None:
    local = tmp_path / "mine.yaml"
    local.write_text("{}")
    args = [
        "fit",
        "--config",
        "super4.yaml",
        "--config=models/cs_unet.yaml",
        "-c",
        str(local),
        "--config",
        "nope.yaml",
    ]
    assert resolve_config_names(args) == [
        "fit", "--config", str(CONFIGS / "super4.yaml"), f"--config={CONFIGS / 'models/cs_unet.yaml'}",
        "-c", str(local), "--config", "nope.yaml",
    ]  # fmt: skip


def _print_config(capsys, *configs: str) -> str:
    args = ["fit"] + [a for c in configs for a in ("--config", c)] + ["--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("config", DATASETS)
def test_dataset_config_parses(capsys, config: str) -> None:
    out = _print_config(capsys, config)
    assert "class_path: datamodules." in out and "class_path: lightning_modules." in out


@pytest.mark.parametrize("model", MODELS)
def test_model_config_composes_with_a_dataset(capsys, model: str) -> None:
    out = _print_config(capsys, "super4.yaml", model)
    class_path = next(line for line in Path(CONFIGS / model).read_text().splitlines() if "class_path" in line)
    assert class_path.strip() in out and "datamodules.Super4" in out
    assert "val/iou" in out  # defaults.yaml was loaded first


def test_run_name_encodes_the_axes() -> None:
    hparams = {"net": "cs_unet", "net_kwargs": {"encoder_name": "resnet18", "depth": "intermediate"}}
    model = SimpleNamespace(hparams={**hparams, "weights": {"cnn": "micronet", "swin": "/x/my.ckpt"}})
    assert run_name(model, 3) == "cs_unet_resnet18_micronet+my_intermediate_s3"
    model = SimpleNamespace(
        hparams={"net": "unet", "net_kwargs": {"encoder_name": "resnet50"}, "weights": "none"}
    )
    assert run_name(model, 0) == "unet_resnet50_none_s0"


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_fast_dev_run(tmp_path, model: str) -> None:
    torch.set_num_threads(1)
    cli = cli_main(
        ["fit", "--config", "demo.yaml", "--config", model, *TINY, "--trainer.fast_dev_run=true",
         "--data.init_args.size=64", "--data.init_args.batch_size=2", f"--trainer.default_root_dir={tmp_path}"]
    )  # fmt: skip
    assert cli.trainer.global_step == 1
    assert "val/iou" in cli.trainer.callback_metrics


def _fit_demo(root: Path, *extra: str):
    return cli_main(
        ["fit", "--config", "demo.yaml", *TINY, "--model.init_args.encoder_name=resnet18",
         "--data.init_args.size=32", "--data.init_args.num_train=4", "--data.init_args.num_val=2",
         "--data.init_args.batch_size=2", f"--trainer.default_root_dir={root}", *extra]
    )  # fmt: skip


@pytest.mark.slow
def test_deterministic_and_resume_continues_at_the_exact_step(tmp_path) -> None:
    torch.set_num_threads(1)
    straight = _fit_demo(tmp_path / "a", "--trainer.max_epochs=2")
    again = _fit_demo(tmp_path / "b", "--trainer.max_epochs=2")
    for key in ("val/iou", "val/loss"):
        assert float(straight.trainer.callback_metrics[key]) == float(again.trainer.callback_metrics[key])
    _fit_demo(tmp_path / "c", "--trainer.max_epochs=1")
    last = tmp_path / "c" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2
    resumed = _fit_demo(tmp_path / "c", "--trainer.max_epochs=2", f"--ckpt_path={last}")
    assert resumed.trainer.global_step == straight.trainer.global_step == 4
    assert resumed.trainer.current_epoch == straight.trainer.current_epoch


def test_sync_batchnorm_only_on_several_gpus(monkeypatch) -> None:
    from experiments.cli import _multi_gpu

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert (
        _multi_gpu("auto", "auto")
        and _multi_gpu("gpu", 2)
        and _multi_gpu("cuda", "0,1")
        and _multi_gpu("gpu", [0, 1])
    )
    assert not _multi_gpu("gpu", 1) and not _multi_gpu("cpu", 2) and not _multi_gpu("gpu", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert not _multi_gpu("auto", "auto")


def test_sync_batchnorm_over_nodes_of_one_gpu_each(monkeypatch) -> None:
    from experiments.cli import _multi_gpu

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _multi_gpu("gpu", 1, num_nodes=2) and _multi_gpu("auto", "auto", num_nodes=4)
    assert not _multi_gpu("gpu", 1) and not _multi_gpu("cpu", 1, num_nodes=2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert not _multi_gpu("auto", 1, num_nodes=2)


@pytest.mark.slow
def test_given_root_dir_holds_checkpoints_and_wandb_run(tmp_path, monkeypatch) -> None:
    """With the default W&B logger, --trainer.default_root_dir is still the one run folder (not ./microseg/)."""
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "run"
    cli_main(
        ["fit", "--config", "demo.yaml", *TINY[1:-1], "--trainer.max_epochs=1", "--data.init_args.size=32",
         "--data.init_args.num_train=2", "--data.init_args.num_val=1", "--data.init_args.batch_size=2",
         f"--trainer.default_root_dir={root}"]  # the W&B logger of defaults.yaml
    )  # fmt: skip
    assert (root / "checkpoints" / "best.ckpt").is_file()
    assert any((root / "wandb").glob("offline-run-*"))
    assert not (tmp_path / "microseg").exists()


@pytest.mark.slow
def test_unavailable_weights_end_with_one_clear_error(tmp_path, capsys, monkeypatch) -> None:
    """Offline and not cached: exit 2 with the URL and the way out, not a traceback."""
    from experiments.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "demo.yaml", *TINY[:-1], "--model.init_args.weights=imagenet",
              "--data.init_args.size=32", f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "huggingface.co/smp-hub/resnet18.imagenet" in err and "weights: none" in err
    assert "Traceback" not in err


def test_an_error_raised_in_a_dataloader_worker_is_still_one_line() -> None:
    from torch._utils import ExceptionWrapper

    from datamodules.io import DataError
    from experiments.cli import user_message

    message = "lab/train/masks/s4.png: mask values [7] are outside the class map {0: 0, 255: 1}; fix the mask"
    try:
        raise DataError(message)
    except DataError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")  # what torch sends back
    with pytest.raises(DataError) as raised:
        wrapped.reraise()
    assert "Traceback" in str(raised.value) and user_message(raised.value) == message
    assert user_message(DataError(message)) == message
