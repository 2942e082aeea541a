"""predict over a folder on several processes (2 gloo ranks on CPU) and --resume after a killed run.

Ranks > 1 are started by Lightning re-running the command, so those runs go through a subprocess.
What a run predicted is counted from its per-image report lines (``<file>: WxH px ...``), never from
timestamps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.apply import predict as predict_cmd
from lightning_modules.nets import NETS
from tests.experiments.stand_in import FIT_PREPROCESSING, brightness_ckpt, write_checkpoint  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
SIZES = [(64, 64), (80, 96), (96, 72), (64, 90), (72, 72), (90, 64), (96, 96)]  # 7: an odd count
FOLDER_FILES = (
    "summary.csv",
    "summary.json",
    "predictions.json",
    "folder_summary.csv",
    "folder_summary.json",
)


def predicted(stdout: str) -> list[str]:
    """The images a run segmented, from its one report line per image."""
    return sorted(line.split(":")[0] for line in stdout.splitlines() if line.startswith("img"))


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "experiments", "predict", *argv, "--quiet"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict[str, Path]:
    """A tiny untrained UNet, 7 random images of mixed sizes, and their single-process outputs."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("archive")
    torch.manual_seed(0)
    kwargs = {"encoder_name": "resnet18", "decoder_channels": [8, 8, 8, 8, 8]}
    net = NETS["unet"](num_classes=3, **kwargs)
    names = ["matrix", "secondary", "tertiary"]
    ckpt = write_checkpoint(root / "tiny.ckpt", net, "unet", names, kwargs, **FIT_PREPROCESSING)
    images = root / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(images / f"img{i}.png")
    single = root / "single"
    argv = ["--ckpt", str(ckpt), "--input", str(images), "--output", str(single), "--quiet"]
    assert predict_cmd.main([*argv, "--device", "cpu"]) == 0
    return {"root": root, "ckpt": ckpt, "in": images, "single": single}


def _two_ranks(archive: dict[str, Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = ["--ckpt", str(archive["ckpt"]), "--input", str(archive["in"]), "--output", str(out)]
    return run_cli(*argv, "--devices", "2", "--accelerator", "cpu", *extra)


@pytest.mark.slow
def test_two_processes_predict_each_image_once_as_one_process_does(archive):
    out = archive["root"] / "two"
    done = _two_ranks(archive, out)
    assert done.returncode == 0, done.stderr
    assert predicted(done.stdout) == [f"img{i}.png" for i in range(7)]  # none twice, none skipped
    assert "predicting 7 image(s) in 2 process(es)" in done.stdout
    assert sorted(p.name for p in out.glob("*_mask.png")) == [f"img{i}_mask.png" for i in range(7)]
    for i in range(7):
        for suffix in ("_mask.png", "_overlay.png", "_measurements.json"):
            name = f"img{i}{suffix}"
            assert (out / name).read_bytes() == (archive["single"] / name).read_bytes(), name
    rows = (out / "summary.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [f"img{i}" for i in range(7)]  # input order
    for name in FOLDER_FILES:
        assert (out / name).read_bytes() == (archive["single"] / name).read_bytes(), name


@pytest.mark.slow
def test_a_killed_run_resumed_predicts_only_the_missing_images(archive):
    out = archive["root"] / "killed"
    shutil.copytree(archive["single"], out)
    # what a kill leaves: no folder summaries, img2 not started, img5 killed between its mask and mark
    for name in FOLDER_FILES:
        (out / name).unlink()
    for path in out.glob("img2[._]*"):
        path.unlink()
    (out / "img5.summary.json").rename(out / "img5.summary.json.tmp")
    (out / "img0_mask.png").write_bytes(b"kept")  # proves img0 is not predicted again

    refused = _two_ranks(archive, out)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "--overwrite" in refused.stderr

    resumed = _two_ranks(archive, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resume: 5 of 7 image(s) already predicted; predicting 2" in resumed.stdout
    assert predicted(resumed.stdout) == ["img2.png", "img5.png"]
    assert (out / "img0_mask.png").read_bytes() == b"kept"
    for name in ("img2_mask.png", "img5_mask.png", "img5.summary.json", *FOLDER_FILES):
        assert (out / name).read_bytes() == (archive["single"] / name).read_bytes(), name


def _run(ckpt: Path, folder: Path, out: Path, *extra: str) -> int:
    argv = ["--ckpt", str(ckpt), "--input", str(folder), "--output", str(out), "--quiet", *extra]
    return predict_cmd.main(argv)


def test_resume_retries_failures_keeps_finished_images_and_refuses_other_settings(
    tmp_path,
    brightness_ckpt,  # noqa: F811
    capsys,
):
    """One process: a folder run with a corrupt file, the file replaced, then --resume."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name, level in (("a", 30), ("b", 120), ("c", 200)):
        Image.fromarray(np.full((40, 48), level, np.uint8)).save(folder / f"{name}.png")
    (folder / "d.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert _run(brightness_ckpt, folder, out) == 1
    first = capsys.readouterr()
    assert "FAILED" in first.err and "d.jpg" in first.err
    Image.fromarray(np.full((40, 48), 200, np.uint8)).save(folder / "d.jpg")  # the user fixes the file
    (out / "b.summary.json").unlink()  # and b was cut short

    assert _run(brightness_ckpt, folder, out, "--resume") == 0
    printed = capsys.readouterr().out
    assert "resume: 2 of 4 image(s) already predicted; predicting 2" in printed
    assert [line.split(":")[0] for line in printed.splitlines() if ".png:" in line or ".jpg:" in line] == [
        "b.png",
        "d.jpg",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == ["a", "b", "c", "d"]
    assert summary["d"]["area_fraction"] == summary["c"]["area_fraction"]  # same brightness, same mask

    assert _run(brightness_ckpt, folder, out, "--resume", "--tile", "256") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a.summary.json was predicted with other settings (tile=512)" in err


def test_conflicting_archive_options_are_one_line_errors(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        _run(brightness_ckpt, tmp_path / "a.png", out, "--resume", "--overwrite")
    assert "not allowed with argument" in capsys.readouterr().err
    assert _run(brightness_ckpt, tmp_path / "a.png", out, "--devices", "2", "--device", "cpu") == 2
    assert "--accelerator cpu or gpu" in capsys.readouterr().err
    assert _run(brightness_ckpt, tmp_path / "a.png", out, "--devices", "0") == 2
    assert "at least 1" in capsys.readouterr().err
    assert not (out / "a_mask.png").exists()


def test_an_image_with_a_tiled_bigtiff_mask_counts_as_finished(tmp_path):
    """A huge image's mask is `<stem>_mask.tif` (predict_strips): --resume must not predict it again."""
    from callbacks.archive_writer import write_marker
    from experiments.apply.predict_archive import finished

    for stem, suffix in (("huge", "_mask.tif"), ("small", "_mask.png"), ("unmasked", None)):
        write_marker(tmp_path, stem, tmp_path / f"{stem}.tif", ({"input": stem}, None, None), {"tile": "512"})
        if suffix:
            (tmp_path / f"{stem}{suffix}").write_bytes(b"mask")
    assert finished(tmp_path, ["huge", "small", "unmasked"], {"tile": "512"}) == {"huge", "small"}


def test_lightning_logs_are_quiet_only_during_the_run() -> None:
    """The archive run silences Lightning's banners, and gives a notebook or a later `fit` its logs back."""
    import logging

    from experiments.apply.predict_archive import lightning_quiet

    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with lightning_quiet():
        assert logger.level == logging.WARNING
    assert logger.level == before
