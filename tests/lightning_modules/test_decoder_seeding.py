"""Decoder seeding (`seed_decoder`): Swin decoder stages receive the mirrored encoder stages' tensors."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.nets.cs_unet import CSUNet
from lightning_modules.nets.swin_unet import SwinUnet
from lightning_modules.nets.transdeeplab import TransDeepLab
from lightning_modules.weights import load_weights
from tests.lightning_modules.published_layout import NARROW, write_published


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A published-layout Swin-T of depth [2,2,6,2] (narrow)."""
    path = tmp_path_factory.mktemp("seed") / "swin.pth"
    write_published(path, "original", seed=5)
    return path


def _blocks(state: dict, prefix: str) -> dict:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


@pytest.mark.parametrize("cls", [SwinUnet, CSUNet])
def test_swin_unet_decoder_stage_gets_the_encoder_stage_of_its_scale(cls, original, capsys):
    kwargs = {"encoder_name": "resnet18"} if cls is CSUNet else {}
    net = cls(num_classes=2, depth="original", **kwargs, **NARROW)
    (part,) = load_weights(net, original, part="swin").parts
    state = net.state_dict()
    # decoder.stages.j runs at scale 2 - j, like Swin-Unet's layers_up.(3-k) <- layers.k
    for j, scale in enumerate((2, 1, 0)):
        encoder = _blocks(state, f"swin.layers.{scale}.blocks.")
        decoder = _blocks(state, f"decoder.stages.{j}.blocks.")
        seeded = {k for k in decoder if ".mlp.fc3." not in k}  # CS-UNet's ResMLP fc3: no plain-Swin source
        assert seeded and seeded <= encoder.keys()
        assert all(torch.equal(decoder[k], encoder[k]) for k in seeded)
    seeds = {s.target: (s.source, s.loaded, s.skipped) for s in part.seeds}
    assert seeds["decoder.stages.0"] == ("swin.layers.2", 6 * 13, 0)  # 6 blocks x 13 tensors
    assert "seeded `decoder.stages.0` from `swin.layers.2`: 78/" in capsys.readouterr().out
    assert not any(k.startswith("decoder.") for k in part.unexpected + part.extra)


def test_seed_decoder_false_leaves_the_decoder_at_its_init(original):
    torch.manual_seed(0)
    net = CSUNet(num_classes=2, encoder_name="resnet18", depth="original", seed_decoder=False, **NARROW)
    before = {k: v.clone() for k, v in net.decoder.state_dict().items()}
    (part,) = load_weights(net, original, part="swin").parts
    assert part.seeds == [] and part.loaded == part.expected
    assert all(torch.equal(v, before[k]) for k, v in net.decoder.state_dict().items())


def test_transdeeplab_decoder_is_seeded_as_its_load_from(original):
    """layers.k -> layers_up.(1-k) and last_layers_up.(1-k), the tensors whose shapes fit."""
    torch.manual_seed(0)
    net = TransDeepLab(num_classes=2, depth="original", **NARROW)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    (part,) = load_weights(net, original).parts
    state = net.state_dict()
    stage0, stage1 = _blocks(state, "swin.layers.0.blocks."), _blocks(state, "swin.layers.1.blocks.")
    up1 = _blocks(state, "decoder.up.1.0.blocks.")  # the /8 step: stage 1's width and heads, all fit
    assert up1.keys() == stage0.keys() and all(torch.equal(up1[k], stage0[k]) for k in up1)
    last = _blocks(state, "decoder.last.0.blocks.")  # 6 blocks at stage 2's width, 3 heads (stage 2: 2)
    for key, value in last.items():
        if key in stage1 and "relative_position_bias_table" not in key:
            assert torch.equal(value, stage1[key]), key
        else:  # other heads, or a block the encoder stage does not have: untouched
            assert torch.equal(value, before["decoder.last.0.blocks." + key]), key
    assert all(torch.equal(v, before[k]) for k, v in state.items() if k.startswith("decoder.up.0."))
    seeds = {s.target: (s.loaded, s.skipped) for s in part.seeds}
    assert seeds == {"decoder.up.0.0": (0, 26), "decoder.up.1.0": (26, 0), "decoder.last.0": (24, 2)}
