"""`weights: microlite | imagenet-microlite`: the CS-UNet authors' Swin-T files, downloaded through the
real code path (gdown replaced by a copy of files written here in the published layout)."""

from __future__ import annotations

import hashlib
import inspect
import re
import shutil
from pathlib import Path

import gdown
import pytest
import torch

from experiments import weights_cmd
from lightning_modules.nets import NETS
from lightning_modules.nets.swin import DEPTHS
from lightning_modules.weight_files import WeightsUnavailable, read_state_dict
from lightning_modules.weights import SOURCES, load_weights
from tests.lightning_modules.published_layout import NARROW, write_published

SWIN_NETS = ["swin_unet", "cs_unet", "hiformer", "transdeeplab"]
PUBLISHED = ("microlite", "imagenet-microlite")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """Drive file id -> (path, `model` state dict), one file per source and depth, each with other values."""
    folder = tmp_path_factory.mktemp("drive")
    files = {}
    for seed, (source, depth) in enumerate((s, d) for s in PUBLISHED for d in DEPTHS):
        path = folder / f"{source}_{depth}.pth"
        files[SOURCES[source].files[depth]] = (path, write_published(path, depth, seed))
    return files


@pytest.fixture
def drive(published, tmp_path, monkeypatch) -> list[str]:
    """Downloads allowed, an empty hub cache, and Google Drive served from `published`; returns the ids asked."""
    asked: list[str] = []

    def download(id: str, output: str, quiet: bool = False, **kwargs) -> str:
        asked.append(id)
        shutil.copyfile(published[id][0], output)
        return output

    monkeypatch.setattr(gdown, "download", download)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("MICROSEG_MICROLITE", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield asked
    torch.set_num_threads(threads)


def _build(name: str, depth: str) -> torch.nn.Module:
    kwargs = (
        {"encoder_name": "resnet18"} if "encoder_name" in inspect.signature(NETS[name]).parameters else {}
    )
    return NETS[name](num_classes=3, depth=depth, **kwargs, **NARROW)


def _microsoft_key(key: str) -> str:
    """Our encoder key -> the published file's (patch merging one stage earlier)."""
    return re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)


def test_the_published_layout_needs_yacs_to_unpickle(published):
    """The files written here really are what torch cannot read without yacs (the class is gone)."""
    path, _ = next(iter(published.values()))
    with pytest.raises(ModuleNotFoundError, match="yacs"):
        torch.load(path, weights_only=False)


@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_published_swin_t_fills_every_swin_net_by_name(drive, published, depth):
    for name in SWIN_NETS:
        net = _build(name, depth)
        for source in PUBLISHED:
            (part,) = load_weights(net, source).parts
            assert part.part == "swin" and part.loaded == part.expected >= 0.95 * part.expected > 0
            assert source in part.source
            _, model = published[SOURCES[source].files[depth]]
            optional = net.swin.optional_keys()  # CS-UNet's ResMLP fc3: no plain-Swin counterpart
            for key, value in net.swin.state_dict().items():
                if key not in optional:
                    assert torch.equal(value, model[_microsoft_key(key)]), (name, source, key)
    # each file was downloaded once, into the cache, with its sha256 recorded beside it
    assert sorted(drive) == sorted(SOURCES[s].files[depth] for s in PUBLISHED)
    for source in PUBLISHED:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / f"{source}_swin_t_{depth}.pth"
        record = cached.with_name(cached.name + ".sha256").read_text()
        assert record.split()[0] == hashlib.sha256(cached.read_bytes()).hexdigest()


def test_a_changed_cached_file_fails_its_recorded_sha256(drive):
    net = _build("swin_unet", "intermediate")
    load_weights(net, "microlite")
    cached = torch.hub.get_dir() + "/checkpoints/microlite_swin_t_intermediate.pth"
    with open(cached, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsUnavailable, match=r"microlite_swin_t_intermediate.pth has sha256 .* recorded"):
        load_weights(net, "microlite")
    assert len(drive) == 1  # no silent re-download over the changed file


def test_offline_error_names_the_drive_url_and_the_local_file_option(drive, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as err:
        load_weights(_build("transdeeplab", "original"), "imagenet-microlite")
    message = str(err.value)
    assert "https://drive.google.com/uc?id=" + SOURCES["imagenet-microlite"].files["original"] in message
    assert "weights path" in message and "--from" in message and not drive


def test_weights_fetch_from_a_local_file_then_loads_offline(drive, published, monkeypatch, capsys):
    file_id = SOURCES["imagenet-microlite"].files["original"]
    path, model = published[file_id]
    argv = ["fetch", "imagenet-microlite", "--depth", "original", "--from", str(path)]
    assert weights_cmd.main(argv) == 0
    assert "imagenet-microlite_swin_t_original.pth" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    net = _build("cs_unet", "original")
    load_weights(net, {"swin": "imagenet-microlite"})
    assert torch.equal(
        net.swin.state_dict()["layers.2.blocks.5.attn.qkv.weight"], model["layers.2.blocks.5.attn.qkv.weight"]
    )
    assert not drive
    assert (
        weights_cmd.main(["fetch", "microlite", "--depth", "original", "--from", str(path.with_name("x"))])
        == 2
    )
    assert "no such file" in capsys.readouterr().err


def test_microseg_microlite_still_replaces_the_published_file(drive, tmp_path, monkeypatch):
    """Our own classifier's checkpoint (a Lightning .ckpt) through `$MICROSEG_MICROLITE`."""
    from lightning_modules.nets.swin_classifier import SwinClassifier

    clf = SwinClassifier(num_classes=10, depth="intermediate", **NARROW)
    ckpt = tmp_path / "own.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in clf.state_dict().items()}}, ckpt)
    monkeypatch.setenv("MICROSEG_MICROLITE", str(ckpt))
    net = _build("swin_unet", "intermediate")
    (part,) = load_weights(net, "microlite").parts
    assert part.loaded == part.expected and "MICROSEG_MICROLITE" in part.source and not drive


def _mark(path: str) -> None:
    with open(path, "w") as f:
        f.write("ran")


class _Payload:
    """Unpickling this calls `_mark`: a stand-in for code a malicious checkpoint would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (_mark, (self.path,))


def test_reading_runs_no_code_named_in_the_file(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.ones(2)}, "payload": _Payload(str(marker))}, path)
    state = read_state_dict(path)
    assert list(state) == ["w"] and not marker.exists()
