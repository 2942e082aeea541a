"""Shared fixtures: offline environment, and the real data from ../shared extracted once per run."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MICROSEG_SHARED", REPO.parent / "shared"))


def _shared_archive(name: str) -> Path:
    """Path of a ../shared archive; fail on CI, skip elsewhere, when it is missing."""
    path = SHARED / "data" / name
    if not path.is_file():
        message = f"real data {path} is missing (set MICROSEG_SHARED to the shared/ folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _extract_once(archive: Path, dest: Path) -> Path:
    marker = dest / ".extracted"
    if not marker.exists():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        marker.touch()
    return dest


@pytest.fixture(scope="session")
def nasa_root(tmp_path_factory) -> Path:
    """Folder holding Super1..4 and EBC1..3 (the NASA benchmark from ../shared)."""
    archive = _shared_archive("nasa-benchmark.tar.gz")
    out = _extract_once(archive, tmp_path_factory.getbasetemp() / "nasa")
    return out / "benchmark_segmentation_data"


@pytest.fixture(scope="session")
def microlite_root(tmp_path_factory) -> Path:
    """ImageFolder tree of microlite-mini (10 classes x 30 real micrographs)."""
    archive = _shared_archive("microlite-mini.tar.gz")
    out = _extract_once(archive, tmp_path_factory.getbasetemp() / "microlite")
    return out / "microlite-mini"
