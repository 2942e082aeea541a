"""Checks before a `fit`/`validate`/`test`/`predict` starts: a mistake costs one line, never a run's work.

* `fit` into a run folder that already holds checkpoints would replace them (a `fast_dev_run` turned a
  2-step `last.ckpt` into a 1-step one, silently): refused unless ``--ckpt_path`` resumes from that
  folder (``last`` or a checkpoint in it), which is how `run` and sweeps continue an interrupted run.
* ``--ckpt_path`` must exist (Lightning said so in a 46-line traceback, after loading the data).
* The checkpoint's network must be the one the config builds: a 5-class checkpoint on a 3-class config
  failed deep in ``load_state_dict`` with ``size mismatch for net.segmentation_head.0.weight``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from experiments.cli_errors import UsageError

#: ``ckpt_path`` values that Lightning resolves itself rather than opening as a file
CKPT_KEYWORDS = ("best", "last", "hpc", "registry")


def _is_file_path(ckpt_path: Any) -> bool:
    text = str(ckpt_path)
    return ckpt_path is not None and text not in CKPT_KEYWORDS and not text.startswith(("registry:", "http"))


def check_run_folder(root: Path, checkpoint_dirs: Iterable[Path], ckpt_path: Any) -> None:
    """Refuse a `fit` that would write over the checkpoints of a run already in ``root``."""
    dirs = [Path(d) for d in checkpoint_dirs]
    found = sorted(p for d in dirs if d.is_dir() for p in d.glob("*.ckpt"))
    if not found or str(ckpt_path) == "last":
        return
    if _is_file_path(ckpt_path):
        resumed = Path(ckpt_path).resolve()
        if any(resumed.is_relative_to(folder.resolve()) for folder in (Path(root), *dirs)):
            return
    last = next((p for p in found if p.stem == "last"), found[-1])
    raise UsageError(
        f"{root}: already holds a run ({', '.join(p.name for p in found)}), which this fit would replace; "
        f"continue it with --ckpt_path={last}, train into another folder with "
        f"--trainer.default_root_dir=<new folder>, or delete {last.parent} to start over"
    )


def check_ckpt_exists(ckpt_path: Any) -> None:
    """A ``--ckpt_path`` that is not a file: one line, with the checkpoints that are beside it."""
    if not _is_file_path(ckpt_path) or Path(ckpt_path).is_file():
        return
    path = Path(ckpt_path)
    if path.is_dir():  # a run folder: name its checkpoints
        inside = sorted(str(p) for p in path.rglob("*.ckpt"))
        hint = f"; pass one of its checkpoints: {', '.join(inside)}" if inside else ", with no .ckpt in it"
        raise UsageError(f"--ckpt_path {path}: is a folder{hint}")
    beside = sorted(p.name for p in path.parent.glob("*.ckpt")) if path.parent.is_dir() else []
    hint = f" ({path.parent} holds {', '.join(beside)})" if beside else ""
    raise UsageError(
        f"--ckpt_path {path}: file not found{hint}; pass a checkpoint written by fit, "
        "e.g. outputs/<dataset>/<run>/checkpoints/best.ckpt"
    )


def _classes(hparams: Mapping[str, Any]) -> str:
    """``3 classes ['matrix', 'secondary', 'tertiary']`` from a module's hyperparameters."""
    names = list(hparams.get("class_names") or [])
    return f"{hparams.get('num_classes', len(names))} classes {names}"


def _network(hparams: Mapping[str, Any]) -> str:
    """``unet(encoder_name=resnet18)`` from a module's hyperparameters."""
    kwargs = ", ".join(f"{k}={v}" for k, v in (hparams.get("net_kwargs") or {}).items())
    return f"{hparams.get('net', '?')}({kwargs})"


def _mismatch(saved: Mapping[str, torch.Tensor], wanted: Mapping[str, torch.Tensor]) -> str | None:
    """The first difference that would stop a strict ``load_state_dict``, or None."""
    for key, tensor in wanted.items():
        if key not in saved:
            return f"it has no {key}"
        if tuple(saved[key].shape) != tuple(tensor.shape):
            return f"{key} is {list(saved[key].shape)} there, {list(tensor.shape)} in the model"
    extra = sorted(set(saved) - set(wanted))
    return f"it has {extra[0]}, which the model lacks" if extra else None


def check_checkpoint_fits(ckpt_path: Any, model: torch.nn.Module, weights_only: bool | None) -> None:
    """Refuse a checkpoint whose weights the config's model cannot take, naming both sides' classes."""
    if not _is_file_path(ckpt_path):
        return
    path = Path(ckpt_path)
    try:  # memory-mapped: only the shapes are read here, Lightning loads the tensors once more
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=weights_only)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(
            f"--ckpt_path {path}: not a readable checkpoint ({reason[:200]}); pass a .ckpt written by fit"
        ) from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, Mapping):
        raise UsageError(
            f"--ckpt_path {path}: not a Lightning checkpoint (no state_dict); pass a .ckpt written by fit"
        )
    problem = _mismatch(state, model.state_dict())
    if problem is None:
        return
    saved, wanted = ckpt.get("hyper_parameters") or {}, model.hparams
    if saved.get("num_classes") != wanted.get("num_classes"):
        what = f"it was trained for {_classes(saved)}, this config has {_classes(wanted)}"
    else:
        what = f"its network {_network(saved)} is not the config's {_network(wanted)} ({problem})"
    config = path.parent.parent / "config.yaml"
    fix = f"--config {config}" if config.is_file() else "the data and model configs it was trained with"
    raise UsageError(
        f"--ckpt_path {path}: does not fit this config: {what}; use the config it was trained with ({fix})"
    )
