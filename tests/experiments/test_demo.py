"""`make demo`'s data paths: data/, ../shared, NASA's source (a local server here), else synthetic."""

from __future__ import annotations

import functools
import http.server
import tarfile
import threading
from pathlib import Path

import pytest

from datamodules.download import COMMIT, verify
from experiments import demo
from tests.datamodules.helpers import write_set


@pytest.fixture
def archive(tmp_path) -> Path:
    """A tiny Super1 in the layout of NASA's GitHub archive (``<repo>-<commit>/benchmark_segmentation_data``)."""
    sets = tmp_path / "src"
    write_set(sets, "Super1", size=64)
    path = tmp_path / "served" / f"{COMMIT}.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        tar.add(
            sets / "Super1",
            arcname=f"pretrained-microscopy-models-{COMMIT}/benchmark_segmentation_data/Super1",
        )
    return path


def _serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (a free port) serving ``folder`` from a thread."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def no_shared(tmp_path, monkeypatch) -> None:
    """No ../shared beside the repository."""
    monkeypatch.setenv("MICROSEG_SHARED", str(tmp_path / "empty"))


@pytest.fixture
def served(archive, monkeypatch, no_shared):
    """NASA's source replaced by a local server that has the archive."""
    server = _serve(archive.parent)
    monkeypatch.setenv("MICROSEG_NASA_URL", f"http://127.0.0.1:{server.server_port}/{archive.name}")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server_down(monkeypatch, no_shared) -> str:
    """NASA's source unreachable: a port on 127.0.0.1 that was just closed."""
    server = _serve(Path("."))
    port = server.server_port
    server.shutdown()
    server.server_close()
    url = f"http://127.0.0.1:{port}/{COMMIT}.tar.gz"
    monkeypatch.setenv("MICROSEG_NASA_URL", url)
    return url


def test_super1_is_downloaded_verified_and_then_found(tmp_path, served, capsys) -> None:
    root = tmp_path / "data"
    assert demo.find_super1(root).startswith("http://127.0.0.1:")
    assert verify(root / "Super1") == []
    assert "getting NASA Super1 from http://127.0.0.1" in capsys.readouterr().out
    served.shutdown()  # a second demo needs no network
    assert demo.find_super1(root) == str(root / "Super1")
    assert "found in" in capsys.readouterr().out


def test_server_down_falls_back_with_one_line(tmp_path, server_down, capsys) -> None:
    assert demo.find_super1(tmp_path / "data") is None
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"demo: no NASA Super1 (could not download {server_down}")
    assert last.endswith("using synthetic micrographs instead")
    assert not (tmp_path / "data" / "Super1").exists()


def test_shared_archive_comes_before_the_network(tmp_path, archive, server_down, monkeypatch) -> None:
    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    (shared / "data" / "nasa-benchmark.tar.gz").write_bytes(archive.read_bytes())
    monkeypatch.setenv("MICROSEG_SHARED", str(shared))
    assert demo.find_super1(tmp_path / "data") == str(shared / "data" / "nasa-benchmark.tar.gz")


@pytest.mark.real_data
def test_download_of_the_shared_archive_from_a_local_server(tmp_path, monkeypatch, no_shared) -> None:
    """The real archive over HTTP: Super1 unpacked, every file matching NASA's published content."""
    from tests.conftest import _shared_archive

    server = _serve(_shared_archive("nasa-benchmark.tar.gz").parent)
    monkeypatch.setenv("MICROSEG_NASA_URL", f"http://127.0.0.1:{server.server_port}/nasa-benchmark.tar.gz")
    try:
        assert demo.find_super1(tmp_path / "data") is not None
    finally:
        server.shutdown()
        server.server_close()
    assert verify(tmp_path / "data" / "Super1") == []
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".cache", "Super1"]


def test_output_folder_is_replaced_only_when_it_is_a_demo_run(tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("keep")
    assert demo.main(["--output", str(mine), "--synthetic"]) == 2
    assert "not a demo run folder" in capsys.readouterr().err and (mine / "thesis.docx").is_file()
    run = tmp_path / "run"
    demo.claim_output(run)
    (run / "results.json").write_text("{}")
    demo.claim_output(run)
    assert "replacing the previous demo run" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == [demo.MARKER]


SHRINK = [  # a demo of seconds: two epochs of a few small images, validated once
    "--trainer.max_time=null", "--trainer.max_epochs=2", "--trainer.logger=false",
    "--trainer.enable_progress_bar=false", "--data.init_args.crop_size=32", "--data.init_args.train_repeats=1",
]  # fmt: skip


@pytest.mark.slow
def test_demo_trains_on_the_downloaded_super1(tmp_path, served, capsys) -> None:
    out = tmp_path / "out"
    assert demo.main(["--root", str(tmp_path / "data"), "--output", str(out), *SHRINK]) == 0
    printed = capsys.readouterr().out
    assert "demo: training on NASA Super1 (from http://127.0.0.1" in printed and "tertiary" in printed
    assert (out / "demo_panel.png").is_file() and (out / "results.json").is_file()
