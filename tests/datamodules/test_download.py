"""`data download` from a tarball, a folder or a URL: only the wanted sets, idempotent, verified, safe."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest

from datamodules.download import MANIFEST, fetch, verify
from datamodules.io import DataError
from experiments import data_cmd
from tests.datamodules.helpers import write_set


def _tarball(src: Path, dest: Path, prefix: str) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=prefix)
    return dest


@pytest.fixture
def fake_benchmark(tmp_path) -> Path:
    """A tiny complete Super1 + EBC2 under ``benchmark_segmentation_data``."""
    sets = tmp_path / "src" / "benchmark_segmentation_data"
    write_set(sets, "Super1", size=4)
    write_set(sets, "EBC2", size=4)
    return sets


@pytest.mark.parametrize(
    "prefix", ["benchmark_segmentation_data", "pretrained-microscopy-models-main/benchmark_segmentation_data"]
)
def test_from_tarball_extracts_only_wanted_sets(tmp_path, fake_benchmark, prefix):
    archive = _tarball(fake_benchmark, tmp_path / "bench.tar.gz", prefix)
    root = tmp_path / "data"
    assert fetch(["super1"], root, str(archive)) == {"Super1": "installed"}
    assert sorted(p.name for p in root.iterdir()) == ["Super1"]
    assert verify(root / "Super1") == []
    # second run: nothing to do, no source needed
    assert fetch(["super1"], root, "/nonexistent/source") == {"Super1": "present"}


def test_from_folder_and_repair_of_an_incomplete_set(tmp_path, fake_benchmark):
    root = tmp_path / "data"
    assert fetch(["EBC2"], root, str(fake_benchmark.parent)) == {"EBC2": "installed"}
    (root / "EBC2" / "train" / "img1.tif").unlink()
    assert verify(root / "EBC2")
    status = fetch(["ebc2"], root, str(fake_benchmark))
    assert status == {"EBC2": "repaired (replaced 1 damaged or missing file(s): train/img1.tif)"}
    assert verify(root / "EBC2") == []


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_install_is_found_and_only_the_broken_file_replaced(tmp_path, fake_benchmark):
    """`fit` says "re-run data download" for a truncated file; download must then find and repair it."""
    root = tmp_path / "data"
    fetch(["super1"], root, str(fake_benchmark))
    _truncate(root / "Super1/test/img2.tif")
    good = root / "Super1/train/img0.tif"
    inode = good.stat().st_ino
    assert any("Super1/test/img2.tif" in p and "truncated" in p for p in verify(root / "Super1"))
    status = fetch(["super1"], root, str(fake_benchmark))
    assert status == {"Super1": "repaired (replaced 1 damaged or missing file(s): test/img2.tif)"}
    assert verify(root / "Super1") == [] and good.stat().st_ino == inode  # intact files untouched


def test_nasa_files_are_checked_by_content_hash(tmp_path):
    """A file named like one of NASA's must have its content: a readable but different file is damaged."""
    write_set(tmp_path, "Super1", size=4)
    nasa_name = next(p for p in MANIFEST if p.startswith("Super1/test/") and p.endswith(".tif"))
    (tmp_path / "Super1/test/img0.tif").rename(tmp_path / nasa_name)
    (problem,) = verify(tmp_path / "Super1")
    assert nasa_name in problem and "differs from NASA's published file" in problem


def test_force_reinstalls_and_files_not_in_the_source_are_kept(tmp_path, fake_benchmark, capsys):
    root = tmp_path / "data"
    fetch(["super1"], root, str(fake_benchmark))
    args = ["download", "--dataset", "super1", "--root", str(root), "--from", str(fake_benchmark)]
    assert data_cmd.main([*args, "--force"]) == 0
    assert "Super1: re-installed (36 files)" in capsys.readouterr().out
    mine = root / "Super1/train/my_extra.tif"
    mine.write_bytes((root / "Super1/train/img0.tif").read_bytes())
    _truncate(root / "Super1/val/img0.tif")
    assert data_cmd.main(args) == 2
    err = capsys.readouterr().err
    assert "my_extra.tif" in err and "move them elsewhere" in err
    assert mine.is_file() and verify(root / "Super1") == [
        f"{root / 'Super1/train'}: 11 images / 10 masks, expected 10 / 10"
    ]


def test_a_bad_cached_download_is_fetched_again(tmp_path, fake_benchmark):
    archive = _tarball(fake_benchmark, tmp_path / "main.tar.gz", "repo-main/benchmark_segmentation_data")
    cached = tmp_path / "data" / ".cache" / "main.tar.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(archive.read_bytes()[:1000])  # an earlier download that broke off
    assert fetch(["super1"], tmp_path / "data", archive.as_uri()) == {"Super1": "installed"}
    assert cached.read_bytes() == archive.read_bytes()


def test_hard_linked_members_are_written_from_their_target(tmp_path, fake_benchmark):
    archive = tmp_path / "linked.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(fake_benchmark / "EBC2", arcname="benchmark_segmentation_data/EBC2")
        tar.add(fake_benchmark / "Super1", arcname="benchmark_segmentation_data/Super1")
    # rewrite Super1/test/img0.tif as a hard link to a file of another set
    rebuilt = tmp_path / "rebuilt.tar"
    with tarfile.open(archive) as src, tarfile.open(rebuilt, "w") as out:
        for m in src.getmembers():
            if m.name.endswith("Super1/test/img0.tif"):
                m.type, m.linkname, m.size = (
                    tarfile.LNKTYPE,
                    "benchmark_segmentation_data/EBC2/train/img0.tif",
                    0,
                )
                out.addfile(m)
            else:
                out.addfile(m, src.extractfile(m) if m.isfile() else None)
    root = tmp_path / "data"
    fetch(["super1"], root, str(rebuilt))
    assert (root / "Super1/test/img0.tif").read_bytes() == (
        fake_benchmark / "EBC2/train/img0.tif"
    ).read_bytes()


def test_unsafe_member_is_refused(tmp_path, fake_benchmark):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(fake_benchmark / "Super1", arcname="benchmark_segmentation_data/Super1")
        info = tarfile.TarInfo("benchmark_segmentation_data/Super1/../../../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(DataError, match="evil.tar"):
        fetch(["super1"], tmp_path / "data", str(archive))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()


def test_incomplete_source_is_an_error_and_leaves_nothing(tmp_path, fake_benchmark):
    next((fake_benchmark / "Super1" / "val").iterdir()).unlink()
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"Super1 is incomplete.*val"):
        fetch(["super1"], root, str(fake_benchmark))
    assert not (root / "Super1").exists() and not (root / ".staging").exists()


def test_no_network_fails_fast_naming_from(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="--from"):
        fetch(["super1"], tmp_path / "data")
    assert data_cmd.main(["download", "--dataset", "super1", "--root", str(tmp_path / "data")]) == 2
    out, err = capsys.readouterr()
    assert "--from" in err and err.count("\n") == 1 and "error" not in out  # one line, on stderr


def test_url_source_downloads_then_extracts(tmp_path, fake_benchmark):
    archive = _tarball(fake_benchmark, tmp_path / "main.tar.gz", "repo-main/benchmark_segmentation_data")
    status = fetch(["super1", "ebc2"], tmp_path / "data", archive.as_uri())
    assert status == {"Super1": "installed", "EBC2": "installed"}
    assert (tmp_path / "data" / ".cache" / "main.tar.gz").is_file()


def test_unknown_dataset_lists_the_valid_names(tmp_path):
    assert data_cmd.main(["download", "--dataset", "super9", "--root", str(tmp_path)]) == 2
    with pytest.raises(DataError, match="super1.*ebc3"):
        fetch(["super9"], tmp_path)


def test_check_prints_counts_and_fractions(tmp_path, fake_benchmark, capsys):
    assert data_cmd.main(["check", "--dataset", "super1", "--root", str(fake_benchmark)]) == 0
    out = capsys.readouterr().out
    assert "secondary" in out and "train" in out and "10" in out
    assert data_cmd.main(["check", "--dataset", "ebc1", "--root", str(fake_benchmark)]) == 1
    assert "ebc1" in capsys.readouterr().err


def test_check_reads_the_images_too(fake_benchmark, capsys):
    _truncate(fake_benchmark / "Super1/val/img1.tif")
    assert data_cmd.main(["check", "--dataset", "super1", "--root", str(fake_benchmark)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "Super1/val/img1.tif" in line and "truncated" in line
    assert "data download --dataset super1" in line  # the fix


@pytest.mark.slow
def test_command_line(tmp_path, fake_benchmark):
    root = tmp_path / "data"
    cmd = [sys.executable, "-m", "experiments", "data", "download", "--dataset", "ebc2", "--root", str(root)]
    done = subprocess.run([*cmd, "--from", str(fake_benchmark)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "EBC2: installed" in done.stdout, done.stderr
    assert verify(root / "EBC2") == []
