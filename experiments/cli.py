"""Command-line entry point.

`fit`, `validate`, `test` and `predict` go to LightningCLI (`MicrosegCLI`); the suite's own tools
(`data`, `models`, `sweep`, `table`, ...) are one module each with a `main(argv)` function.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from callbacks.fast_path import default_precision
from experiments.cli_errors import UsageError, config_files, explain, with_source
from experiments.preflight import check_checkpoint_fits, check_ckpt_exists, check_run_folder

#: subcommand -> module providing ``main(argv: list[str]) -> int | None``
TOOLS: dict[str, str] = {
    "data": "experiments.data_cmd",
    "models": "experiments.models_cmd",
    "weights": "experiments.weights_cmd",
    "bench": "experiments.bench.train_step",
    "measure-accuracy": "experiments.bench.measurement_doc",
    "predict-images": "experiments.apply.predict",
    "measure": "experiments.apply.measure",
    "export": "experiments.apply.export",
    "suggest": "experiments.apply.suggest",
    "run": "experiments.reproduce.run",
    "sweep": "experiments.reproduce.sweep",
    "table": "experiments.reproduce.tables",
    "figure": "experiments.reproduce.figures",
    "reproduce-mini": "experiments.reproduce.mini",
    "demo": "experiments.demo",
}
#: `predict` with one of these options segments image files (experiments.apply.predict); with --config it is LightningCLI's
PREDICT_IMAGES_FLAGS = {"--ckpt", "--input"}

CONFIGS = Path(__file__).parent / "configs"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
#: data attributes (known after the datamodule's __init__) that every model receives
LINKED = (
    "num_classes",
    "class_names",
    "class_colors",
    "mean",
    "std",
    "class_kinds",
    "intensity",
    "scale",
    "pixel_size_nm",
)


def resolve_config_names(args: list[str]) -> list[str]:
    """``--config super4.yaml`` -> ``experiments/configs/super4.yaml`` when the name is not a file here."""
    out = []
    for i, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if sep and flag in ("--config", "-c"):
            arg = f"{flag}={_config_path(value)}"
        elif i > 0 and args[i - 1] in ("--config", "-c"):
            arg = _config_path(arg)
        out.append(arg)
    return out


def _config_path(name: str) -> str:
    if Path(name).exists() or not (CONFIGS / name).is_file():
        return name
    return str(CONFIGS / name)


def run_name(model: L.LightningModule, seed: int | None) -> str:
    """``<model>_<encoder>_<weights>_<depth>_s<seed>``, leaving out the axes the model does not have."""
    hp = model.hparams
    kwargs = hp.get("net_kwargs") or {}
    depth = kwargs.get("depth")
    depth = "-".join(map(str, depth)) if isinstance(depth, list | tuple) else depth
    weights = hp.get("weights")
    sources = weights.values() if isinstance(weights, dict) else [weights] if weights else []
    # a weights file counts by its name, not its path; per-part sources join with "+"
    weights = "+".join(Path(str(w)).stem if os.sep in str(w) else str(w) for w in sources)
    parts = [hp.get("net", type(model).__name__.lower()), kwargs.get("encoder_name"), weights, depth]
    return "_".join(str(p) for p in parts if p) + f"_s{seed}"


class LogConfig(SaveConfigCallback):
    """The config in the run folder and in W&B's run config.

    `fit` writes ``config.yaml``, the run's recipe; `validate`/`test`/`predict` write ``<stage>_config.yaml``
    beside it, so a later (or failed) test never replaces the recipe of the run it evaluates.
    """

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                config = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
                logger.log_hyperparams({"config": config})


class MicrosegCLI(LightningCLI):
    """LightningCLI with the suite's defaults file, data->model links and one run folder per experiment.

    The run folder is ``outputs/<dataset>/<run name>`` unless ``--trainer.default_root_dir`` is given;
    checkpoints, the W&B run, config.yaml, overlays and results.json all go there.
    """

    def add_arguments_to_parser(self, parser) -> None:
        for key in LINKED:
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """LightningCLI's parsing; a mistake becomes one line naming the file, the key and the fix."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            argv = list(sys.argv[1:] if args is None else args)
            sub = self._subcommand_parsers.get(argv[0]) if argv else None
            keys = [action.dest for action in (sub or parser)._actions]
            files = [CONFIGS / "defaults.yaml", *config_files(argv)]
            raise UsageError(explain(str(err), keys, files)) from None

    def _subconfig(self, config: Any) -> Any:
        """The running subcommand's part of a config (all of it when run=False)."""
        return config[self.subcommand] if self.subcommand else config

    def _parse_ckpt_path(self) -> None:
        """The model comes from the config files and the checkpoint only gives weights and state.

        LightningCLI would parse the checkpoint's hyperparameters as model arguments; ours are the
        network-rebuilding contract of docs/design.md (read by `load_segmenter`), not config arguments.
        """

    def instantiate_classes(self) -> None:
        """LightningCLI's; a user error raised by a class is re-raised as itself, not inside the ValueError
        with which jsonargparse lists the alternatives of the ``data``/``model`` union."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            cause = err.__cause__
            while cause is not None and not isinstance(cause, user_errors()):
                cause = cause.__cause__
            if cause is None:
                raise
            raise cause from None

    def before_instantiate_classes(self) -> None:
        check_ckpt_exists(self._subconfig(self.config).get("ckpt_path"))
        trainer = self._subconfig(self.config).trainer
        if not trainer.sync_batchnorm and _multi_gpu(trainer.accelerator, trainer.devices, trainer.num_nodes):
            trainer.sync_batchnorm = True
        if trainer.precision is None:  # not chosen: the fast path where it is fast (callbacks/fast_path.py)
            trainer.precision = default_precision(trainer.accelerator)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        config = self._subconfig(self.config)
        dataset = getattr(self.datamodule, "dataset_name", type(self.datamodule).__name__.lower())
        seed = config.seed_everything if isinstance(config.seed_everything, int) else None
        name = run_name(self.model, seed)
        root = (
            config.trainer.default_root_dir
            or Path(os.environ.get("MICROSEG_OUTPUTS", "outputs")) / dataset / name
        )
        root = Path(root)
        trainer = self._subconfig(self.config_init)["trainer"]
        kwargs["default_root_dir"] = str(root)
        kwargs["logger"] = _place_loggers(trainer.get("logger"), config.trainer.logger, root, name, dataset)
        checkpoint_dirs = []
        for callback in trainer.get("callbacks") or []:
            if isinstance(callback, ModelCheckpoint):
                callback.dirpath = callback.dirpath or str(root / "checkpoints")
                checkpoint_dirs.append(Path(callback.dirpath))
        if self.subcommand == "fit":
            check_run_folder(root, checkpoint_dirs, config.get("ckpt_path"))
        self.save_config_kwargs["config_filename"] = (
            "config.yaml" if self.subcommand in (None, "fit") else f"{self.subcommand}_config.yaml"
        )
        return super().instantiate_trainer(**kwargs)

    def _check_checkpoint(self) -> None:
        config = self._subconfig(self.config)
        check_checkpoint_fits(config.get("ckpt_path"), self.model, config.get("weights_only"))

    before_fit = before_validate = before_test = before_predict = _check_checkpoint


def user_errors() -> tuple[type[Exception], ...]:
    """Errors in the user's input or setup, whose message names the file and the fix (no traceback)."""
    from datamodules.io import DataError
    from lightning_modules.weights import WeightsUnavailable

    return DataError, WeightsUnavailable, UsageError


def _multi_gpu(accelerator: Any, devices: Any, num_nodes: int = 1) -> bool:
    """True when the run will use more than one CUDA device, on this node or over several nodes (then
    BatchNorm statistics are synced)."""
    if str(accelerator) not in ("auto", "gpu", "cuda") or torch.cuda.device_count() < 1:
        return False
    if num_nodes > 1:
        return True
    if torch.cuda.device_count() < 2:
        return False
    if devices in ("auto", -1, "-1"):
        return True
    count = len(devices) if isinstance(devices, list | tuple) else len(str(devices).split(","))
    return count > 1 or (str(devices).isdigit() and int(devices) > 1)


def _place_loggers(logger: Any, logger_config: Any, root: Path, name: str, dataset: str) -> Any:
    """W&B loggers left at their default folder are rebuilt from their config to write into the run folder."""
    loggers = logger if isinstance(logger, list) else [logger]
    configs = logger_config if isinstance(logger_config, list) else [logger_config]
    placed = []
    for item, config in zip(loggers, configs, strict=True):
        if isinstance(item, WandbLogger) and item.save_dir in (None, "."):
            given = vars(config.init_args) if hasattr(config, "init_args") else {}
            init = {k: v for k, v in given.items() if v is not None}
            init.update(save_dir=str(root), name=init.get("name") or name, group=init.get("group") or dataset)
            item = WandbLogger(**init)
        placed.append(item)
    return placed if isinstance(logger, list) else placed[0]


def cli_main(args: list[str] | None = None, run: bool = True) -> MicrosegCLI:
    """Run LightningCLI on ``args`` (default: the command line); tests call this in-process."""
    os.environ.setdefault("WANDB_MODE", "offline")  # a network must never block a run
    import callbacks  # noqa: F401  (bare class names in configs resolve once the packages are imported)
    import datamodules  # noqa: F401
    import lightning_modules  # noqa: F401

    if args is None:  # LightningCLI reads sys.argv itself (and warns when given both)
        sys.argv[1:] = resolve_config_names(sys.argv[1:])
    else:
        args = resolve_config_names(list(args))
    # exit_on_error=False: a parse error raises, and MicrosegCLI.parse_arguments words it in one line
    defaults = {"default_config_files": [str(CONFIGS / "defaults.yaml")], "exit_on_error": False}
    cli = MicrosegCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        # without a subcommand (run=False: build, don't run) the one parser takes the defaults itself
        parser_kwargs={"exit_on_error": False, **{sub: defaults for sub in SUBCOMMANDS}} if run else defaults,
        save_config_callback=LogConfig,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
    if run:
        _finish_wandb()
    return cli


def _finish_wandb() -> None:
    """Close the W&B run, so that a next command in the same process (tests, notebooks) starts its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"] and PREDICT_IMAGES_FLAGS & {a.split("=")[0] for a in argv}:
        argv[0] = "predict-images"
    if argv and argv[0] in TOOLS:
        module = importlib.import_module(TOOLS[argv[0]])
        sys.exit(module.main(argv[1:]) or 0)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help"):
        raise SystemExit(f"usage: python -m experiments {{{','.join((*SUBCOMMANDS, *TOOLS))}}} ...")
    try:
        cli_main(None if argv == sys.argv[1:] else argv)
    except user_errors() as err:  # the user's input or setup, not a bug: one line, no traceback
        files = [CONFIGS / "defaults.yaml", *config_files(resolve_config_names(argv))]
        print(f"error: {with_source(user_message(err), files)}", file=sys.stderr)
        sys.exit(2)


def user_message(err: Exception) -> str:
    """The error's own message, also when a DataLoader worker re-raised it with the worker's traceback
    in front (a lazily read sample whose mask is bad fails there, mid-epoch)."""
    text = str(err)
    if "Original Traceback" in text:
        text = text.rpartition(f"{type(err).__name__}: ")[2].strip()
    return text
