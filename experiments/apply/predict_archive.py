"""`predict --devices N [--num-nodes M] [--resume]`: an archive of micrographs through Lightning's predict loop.

Every process (rank) predicts its share of the images with the same `predict_file` as the single-process
run, one image per step, and `callbacks.archive_writer.ArchiveWriter` marks each image done beside its
outputs as soon as it is written. At the end rank 0 merges the marks of all images, in input order, into
``predictions.json`` and ``summary.csv`` exactly as the single-process run writes them. ``--resume``
skips the images whose mask and mark exist (found before any image is read), so a killed run loses
only the images it was predicting.

The strategy is Lightning's ``ddp``, not ``ddp_spawn``: launched from the command line, Lightning starts
the other local ranks by re-running this same command (``python -m experiments predict ...``), and under
SLURM (``srun``) or ``torchrun`` it joins the processes those started, which ``ddp_spawn`` cannot do.
It cannot start ranks from inside a Python session (a notebook or a test calling `main`), which is
why ranks > 1 go through the command. CPU ranks talk over gloo, GPUs over NCCL (Lightning's choice).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from callbacks.archive_writer import ArchiveWriter, marker_path, read_marker
from experiments.apply.predict import predict_one
from experiments.apply.predict_folder import report_folder, run_settings, write_classes
from lightning_modules.checkpoint import SegmenterMeta

#: how long the ranks that finished wait for the slowest at the end (their shares of a large archive
#: may differ by many large images; torch's default of 30 minutes would abort a good run)
FINISH_TIMEOUT = timedelta(hours=12)


def finished(out_dir: Path, stems: list[str], settings: dict[str, str]) -> set[str]:
    """The stems whose mask (PNG, or tiled BigTIFF for a huge image) and done mark exist (failed images
    are retried).

    Raises ValueError when one was predicted with other settings: merging it would mix two runs.
    """
    done = set()
    for stem in stems:
        entry = read_marker(out_dir, stem)
        masks = (out_dir / f"{stem}_mask.png", out_dir / f"{stem}_mask.tif")
        if entry is None or entry.get("failure") or not any(mask.is_file() for mask in masks):
            continue
        changed = sorted(
            k
            for k in settings.keys() | entry.get("settings", {}).keys()
            if settings.get(k) != entry.get("settings", {}).get(k)
        )
        if changed:
            theirs = ", ".join(f"{k}={entry.get('settings', {}).get(k)}" for k in changed)
            raise ValueError(
                f"{marker_path(out_dir, stem)} was predicted with other settings ({theirs}); resume with "
                "those, or pass --overwrite or another --output to predict everything with these"
            )
        done.add(stem)
    return done


def _one_image(batch: list[int]) -> int:
    return batch[0]


class ArchivePredictor(L.LightningModule):
    """One image per predict step: `predict_one` on this rank's device; returns what its mark holds."""

    def __init__(
        self,
        net: torch.nn.Module,
        meta: SegmenterMeta,
        todo: list[tuple[Path, str]],
        args: argparse.Namespace,
        declared: list[str] | None,
    ) -> None:
        super().__init__()
        self.net, self.meta, self.todo, self.args, self.declared = net, meta, todo, args, declared

    def setup(self, stage: str) -> None:
        """Agree on rank 0's to-do list, write ``classes.json`` once and drop stale marks, then start."""
        trainer = self.trainer
        self.todo = trainer.strategy.broadcast(self.todo, src=0)
        if trainer.is_global_zero:
            write_classes(self.args, self.meta, self.declared)
            for _, stem in self.todo:  # an earlier run's mark must not vouch for outputs replaced now
                marker_path(self.args.output, stem).unlink(missing_ok=True)
        else:  # one set of per-window progress bars, not one per rank
            self.args = argparse.Namespace(**{**vars(self.args), "quiet": True})
        if self.device.type == "cpu":  # N processes share the cores instead of each taking all of them
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // trainer.num_devices))
        if trainer.is_global_zero:
            print(f"predicting {len(self.todo)} image(s) in {trainer.world_size} process(es)")
        trainer.strategy.barrier("archive_setup")

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(range(len(self.todo)), batch_size=1, collate_fn=_one_image)

    def predict_step(self, index: int) -> dict:
        path, stem = self.todo[index]
        outcome = predict_one(self.net, self.meta, path, stem, self.args, self.device)
        return {"stem": stem, "image": path, "outcome": outcome}


def merge(args: argparse.Namespace, meta: SegmenterMeta, files: list[Path], names: dict[Path, str]) -> int:
    """The folder's predictions.json and summaries from every image's mark, in input order."""
    records, summaries, failures = {}, {}, []
    for path in files:
        entry = read_marker(args.output, names[path])
        if entry is None:
            failures.append(f"{path}: not predicted (the run stopped before it); rerun with --resume")
        elif entry["failure"]:
            failures.append(entry["failure"])
        else:
            records[names[path]] = entry["record"]
            if entry["summary"] is not None:
                summaries[names[path]] = entry["summary"]
    return report_folder(args, meta, len(files), records, summaries, failures)


def predict_archive(
    args: argparse.Namespace,
    files: list[Path],
    names: dict[Path, str],
    net: torch.nn.Module,
    meta: SegmenterMeta,
    declared: list[str] | None,
) -> int:
    """Predict the images not done yet on ``--devices`` x ``--num-nodes`` ranks; rank 0 merges and reports."""
    if args.devices < 1 or args.num_nodes < 1:
        print("error: --devices and --num-nodes must be at least 1", file=sys.stderr)
        return 2
    if args.device != "auto":
        print(
            f"error: --device {args.device} picks one device; with --devices/--resume choose the kind "
            "with --accelerator cpu or gpu",
            file=sys.stderr,
        )
        return 2
    try:
        done = finished(args.output, list(names.values()), run_settings(args)) if args.resume else set()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    todo = [(path, names[path]) for path in files if names[path] not in done]
    if args.resume and rank_zero_only.rank == 0:
        print(f"resume: {len(done)} of {len(files)} image(s) already predicted; predicting {len(todo)}")
    if todo:
        distributed = args.devices * args.num_nodes > 1
        with lightning_quiet():
            trainer = _trainer(args, distributed)
            trainer.predict(ArchivePredictor(net, meta, todo, args, declared), return_predictions=False)
        if not trainer.is_global_zero:
            return 0
    elif rank_zero_only.rank != 0:
        return 0
    else:
        write_classes(args, meta, declared)
    return merge(args, meta, files, names)


@contextmanager
def lightning_quiet() -> Iterator[None]:
    """Lightning's banners and tips (once per rank) off for the run, its log levels restored after it."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _trainer(args: argparse.Namespace, distributed: bool) -> L.Trainer:
    return L.Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy=DDPStrategy(timeout=FINISH_TIMEOUT) if distributed else "auto",
        callbacks=[ArchiveWriter(args.output, run_settings(args))],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=not args.quiet,
    )
