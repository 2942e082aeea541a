"""Weight loading on checkpoints written here: what load_weights says it loaded is what the net holds."""

from __future__ import annotations

import hashlib
import inspect

import pytest
import torch
from segmentation_models_pytorch.encoders import get_encoder

from lightning_modules.nets import NETS
from lightning_modules.nets.cs_unet import CSUNet
from lightning_modules.nets.swin_classifier import SwinClassifier
from lightning_modules.nets.swin_unet import SwinUnet
from lightning_modules.nets.unet import UNet
from lightning_modules.weight_files import WeightsUnavailable, fetch
from lightning_modules.weights import SOURCES, load_weights, micronet_url

SWIN_NETS = [
    n for n, c in NETS.items() if "swin" in getattr(c, "encoder_parts", {}) and n != "swin_classifier"
]


@pytest.fixture(autouse=True)
def _hub(tmp_path, monkeypatch):
    """Empty torch hub cache per test (no test finds or writes real downloads); one intra-op thread."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _nasa_encoder_file(tmp_path, encoder: str, data_parallel: bool = False):
    """A NASA-style file: the smp encoder's state dict, perturbed so a load is visible."""
    torch.manual_seed(1)
    state = {
        k: (v + torch.randn_like(v) if v.is_floating_point() else v)
        for k, v in get_encoder(encoder).state_dict().items()
    }
    path = tmp_path / f"{encoder}_pretrained_microscopynet_v1.0.pth.tar"
    torch.save({f"module.{k}" if data_parallel else k: v for k, v in state.items()}, path)
    return path, state


@pytest.mark.parametrize("data_parallel", [False, True])
def test_nasa_encoder_state_dict_loads_exactly_into_unet(tmp_path, data_parallel, capsys):
    path, state = _nasa_encoder_file(tmp_path, "resnet18", data_parallel)
    net = UNet(num_classes=3, encoder_name="resnet18")
    before = net.encoder.conv1.weight.clone()
    report = load_weights(net, path)
    assert report.loaded == report.expected == len(state)
    assert not torch.equal(before, net.encoder.conv1.weight)
    for k, v in net.encoder.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert f"loaded {len(state)}/{len(state)} tensors" in capsys.readouterr().out


def test_nasa_encoder_goes_to_the_cnn_of_cs_unet(tmp_path):
    path, state = _nasa_encoder_file(tmp_path, "resnet18")
    net = CSUNet(num_classes=2, encoder_name="resnet18")
    swin_before = {k: v.clone() for k, v in net.swin.state_dict().items()}
    report = load_weights(net, path)  # a plain path: the part is found from the keys
    assert [p.part for p in report.parts] == ["cnn"] and report.loaded == len(state)
    for k, v in net.cnn.encoder.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(torch.equal(v, swin_before[k]) for k, v in net.swin.state_dict().items())


def _classifier_ckpt(tmp_path, depth: str, mlp: str = "mlp"):
    """A Lightning-style .ckpt of our Swin-T classifier (`net.` prefix, hyperparameters beside)."""
    torch.manual_seed(2)
    clf = SwinClassifier(num_classes=10, depth=depth, mlp=mlp)
    state = clf.state_dict()
    path = tmp_path / f"microlite_{depth}.ckpt"
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in state.items()},
            "hyper_parameters": {"net": "swin_classifier"},
        },
        path,
    )
    return path, {k.removeprefix("swin."): v for k, v in state.items() if k.startswith("swin.")}


@pytest.mark.parametrize("depth", ["original", "intermediate"])
@pytest.mark.parametrize("name", SWIN_NETS)
def test_swin_classifier_ckpt_fills_every_swin_tensor(tmp_path, monkeypatch, name, depth):
    path, swin = _classifier_ckpt(tmp_path, depth)
    kwargs = {"num_classes": 3, "depth": depth}
    if "encoder_name" in inspect.signature(NETS[name]).parameters:
        kwargs["encoder_name"] = "resnet18"
    net = NETS[name](**kwargs)
    monkeypatch.setenv("MICROSEG_MICROLITE", str(path))
    report = load_weights(net, "microlite")
    assert [p.part for p in report.parts] == ["swin"]
    target = net.swin.state_dict()  # HiFormer/TransDeepLab keep only the Swin parts they run
    keys = set(target) - net.swin.optional_keys()  # CS-UNet's ResMLP fc3: no plain-Swin counterpart
    assert report.loaded == report.expected == len(keys) and keys <= set(swin)
    for k in keys:
        assert torch.equal(target[k], swin[k]), k


def test_cs_unet_takes_one_source_per_part(tmp_path):
    cnn_path, cnn = _nasa_encoder_file(tmp_path, "resnet18")
    swin_path, swin = _classifier_ckpt(tmp_path, "intermediate", mlp="resmlp")
    net = CSUNet(num_classes=2, encoder_name="resnet18")
    report = load_weights(net, {"cnn": cnn_path, "swin": swin_path})
    assert [(p.part, p.loaded, p.expected) for p in report.parts] == [
        ("cnn", len(cnn), len(cnn)),
        ("swin", len(swin), len(swin)),  # a ResMLP classifier brings fc3 too
    ]
    assert all(torch.equal(net.swin.state_dict()[k], v) for k, v in swin.items())


def test_plain_swin_into_resmlp_swin_leaves_only_fc3_new(tmp_path):
    path, swin = _classifier_ckpt(tmp_path, "intermediate", mlp="mlp")
    net = SwinUnet(num_classes=2, mlp="resmlp")
    report = load_weights(net, path)
    assert report.loaded == report.expected == len(swin)
    assert len(net.swin.state_dict()) == len(swin) + len(net.swin.optional_keys())


def test_wrong_architecture_raises(tmp_path):
    path, _ = _nasa_encoder_file(tmp_path, "resnet18")
    with pytest.raises(ValueError, match="tensors of `swin` load"):
        load_weights(SwinUnet(num_classes=2), path)
    wide = tmp_path / "swin_wide.pth"
    torch.save(SwinClassifier(num_classes=5, embed_dim=64, num_heads=(2, 4, 8, 16)).state_dict(), wide)
    with pytest.raises(ValueError, match="wrong architecture"):
        load_weights(SwinUnet(num_classes=2, depth="original"), wide)
    path34, _ = _nasa_encoder_file(tmp_path, "resnet50")
    with pytest.raises(ValueError, match="tensors of `cnn` load"):
        load_weights(UNet(num_classes=2, encoder_name="resnet18"), path34)
    with pytest.raises(ValueError, match="for a `swin` encoder"):
        load_weights(UNet(num_classes=2), "microlite")


def test_min_fraction_zero_allows_a_partial_load(tmp_path):
    path, _ = _nasa_encoder_file(tmp_path, "resnet18")
    report = load_weights(SwinUnet(num_classes=2), path, min_fraction=0.0)
    assert report.loaded == 0 and report.expected > 0


def test_offline_error_names_the_url_and_the_local_file_option():
    with pytest.raises(RuntimeError) as err:
        load_weights(UNet(num_classes=2, encoder_name="resnet50"), "micronet")
    message = str(err.value)
    assert micronet_url("resnet50", "micronet") in message and "weights path" in message


def test_imagenet_offline_error_names_the_hub_repo():
    with pytest.raises(RuntimeError, match=r"huggingface.co/smp-hub/resnet18.imagenet.*weights path"):
        load_weights(UNet(num_classes=2, encoder_name="resnet18"), "imagenet")


def test_micronet_urls_follow_nasa_exceptions():
    base = "https://nasa-public-data.s3.amazonaws.com/microscopy_segmentation_models/"
    assert micronet_url("resnet50", "micronet") == base + "resnet50_pretrained_microscopynet_v1.1.pth.tar"
    assert (
        micronet_url("resnet50", "imagenet-micronet")
        == base + "resnet50_pretrained_imagenet-microscopynet_v1.0.pth.tar"
    )
    assert (
        micronet_url("se_resnet50", "micronet") == base + "se_resnet50_pretrained_microscopynet_v1.0.pth.tar"
    )
    assert (
        micronet_url("resnext101_32x8d", "micronet")
        == base + "resnext101_pretrained_microscopynet_v1.0.pth.tar"
    )


def test_fetch_caches_with_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    src = tmp_path / "weights.pth.tar"
    torch.save({"w": torch.ones(2)}, src)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    cached = fetch(src.as_uri(), sha256=sha)
    assert cached.parent == tmp_path / "hub" / "checkpoints" and cached.read_bytes() == src.read_bytes()
    with pytest.raises(RuntimeError, match="sha256"):
        fetch(src.as_uri(), sha256="0" * 64)


def test_none_loads_nothing():
    assert load_weights(UNet(num_classes=2), "none").loaded == 0


@pytest.mark.parametrize("depth", ["original", "intermediate"])
def test_microlite_file_is_chosen_by_depth_for_three_stage_swin(tmp_path, monkeypatch, depth):
    """TransDeepLab/HiFormer hold 3 Swin stages; they still ask for the published file of their depth."""
    monkeypatch.delenv("MICROSEG_MICROLITE", raising=False)
    file_id = SOURCES["microlite"].files[depth]
    with pytest.raises(WeightsUnavailable, match=f"{file_id}.*microlite_swin_t_{depth}.pth"):
        load_weights(NETS["transdeeplab"](num_classes=2, depth=depth), "microlite")


def test_a_file_that_is_no_checkpoint_gives_one_clear_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("micrograph notes, not weights")
    with pytest.raises(WeightsUnavailable, match="notes.pth is not a PyTorch checkpoint.*pass a"):
        load_weights(UNet(num_classes=2, encoder_name="resnet18"), path)
