"""HiFormer and TransDeepLabv3+: shapes at any size, DLF reaches the prediction, pretrained Swin untouched."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.nets import NETS
from lightning_modules.nets.cnn_encoder import CNNEncoder
from lightning_modules.nets.hiformer import HiFormer
from lightning_modules.nets.swin import SwinEncoder, resolve_depths
from lightning_modules.nets.swin_classifier import SwinClassifier
from lightning_modules.nets.transdeeplab import TransDeepLab
from lightning_modules.weights import load_weights

NAMES = ("hiformer", "transdeeplab")


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CI shares 2 cores between 2 pytest workers
    yield
    torch.set_num_threads(threads)


def build(name: str, depth: str = "intermediate", num_classes: int = 3) -> torch.nn.Module:
    kwargs = {"encoder_name": "resnet18"} if name == "hiformer" else {}
    return NETS[name](num_classes=num_classes, depth=depth, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_at_an_odd_size(name):
    """Shape, padding/crop and gradients; the 256², 512x768 runs per depth are test_nets.py's contract."""
    torch.manual_seed(0)
    net = build(name).train()
    y = net(torch.randn(1, 3, 67, 93))
    assert y.shape == (1, 3, 67, 93)
    assert torch.isfinite(y).all()
    y.pow(2).mean().backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert [n for n, p in trainable if p.grad is None] == []  # DDP needs every parameter used
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)


def test_dlf_output_reaches_the_prediction():
    """The official code discards the DLF output; here perturbing DLF weights changes the logits."""
    torch.manual_seed(0)
    net = HiFormer(num_classes=2, encoder_name="resnet18").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        # the first block's cross-attention: the only path from one level's tokens to the other's
        for p in net.dlf.blocks[0].fusion.parameters():
            p.add_(torch.randn_like(p))
        after_cross = net(x)
        for p in net.dlf.norms.parameters():
            p.mul_(2.0)
        after_norm = net(x)
    assert not torch.allclose(before, after_cross)
    assert not torch.allclose(after_cross, after_norm)


@pytest.mark.parametrize("name", NAMES)
def test_net_init_leaves_the_swin_encoder_as_built(name):
    """Only new layers are initialised: `swin` equals a fresh SwinEncoder from the same seed."""
    torch.manual_seed(0)
    net = build(name, "original")
    torch.manual_seed(0)
    fresh = SwinEncoder(resolve_depths("original")[:3], num_heads=(3, 6, 12))
    ours, ref = net.swin.state_dict(), fresh.state_dict()
    assert ours and set(ours) <= set(ref)
    for key, value in ours.items():
        assert torch.equal(value, ref[key]), key


def test_hiformer_swin_has_no_unused_parts():
    """Stage 1 reads CNN features: no Swin patch embedding, no 4th stage, CNN stops at /16."""
    net = HiFormer(num_classes=2, encoder_name="resnet18")
    keys = net.state_dict().keys()
    assert not any(k.startswith(("swin.patch_embed.", "swin.layers.3.", "cnn.encoder.layer4.")) for k in keys)
    assert net.cnn.reductions == [4, 8, 16]


# EfficientNet runs its /32 blocks and slices them away; VGG iterates a Sequential it never calls
@pytest.mark.parametrize("encoder", ["efficientnet-b2", "vgg16_bn"])
def test_cnn_encoder_three_scales_leaves_no_trainable_parameter_unused(encoder):
    enc = CNNEncoder(encoder, scales=3)
    features = enc(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 24), (8, 12), (4, 6)]
    assert [f.shape[1] for f in features] == enc.out_channels
    sum(f.mean() for f in features).backward()
    assert [n for n, p in enc.named_parameters() if p.requires_grad and p.grad is None] == []


def test_transdeeplab_sspp_levels_follow_the_window_sizes():
    net = TransDeepLab(num_classes=2, sspp_window_sizes=(8, 16, 32), sspp_depth=2)
    windows = [level.blocks[0].window_size for level in net.sspp.levels]
    assert windows == [(8, 8), (16, 16), (32, 32)]
    assert [len(level.blocks) for level in net.sspp.levels] == [2, 2, 1]  # the widest level: one block


@pytest.mark.parametrize("name", NAMES)
def test_swin_classifier_checkpoint_fills_every_swin_tensor(name, tmp_path):
    """A plain path (test_weights.py runs the `microlite` source for both depths)."""
    depth = "original"
    torch.manual_seed(1)
    source = SwinClassifier(num_classes=5, depth=depth)
    path = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}}, path)
    net = build(name, depth)
    report = load_weights(net, path, part="swin")
    expected = net.swin.state_dict()
    assert report.loaded == report.expected == len(expected)
    src = source.swin.state_dict()
    for key, value in expected.items():
        assert torch.equal(value, src[key]), key


def test_hiformer_dlf_is_the_official_hiformer_b():
    """amirhossein-kz/HiFormer `configs/HiFormer_configs.py::get_hiformer_b_configs`: depth [[1, 2, 0]],
    num_heads (6, 12), mlp_ratio (2, 2, 1), qkv_bias True, cross_pos_embed True (at its image size)."""
    net = HiFormer(num_classes=2, encoder_name="resnet18")
    (block,) = net.dlf.blocks  # one multi-scale block
    assert [len(level) for level in block.blocks] == [1, 2]
    assert [type(f).__name__ for f in block.fusion] == ["CrossAttentionBlock"] * 2
    assert [level[0].attn.num_heads for level in block.blocks] == [6, 12]
    assert [f.attn.num_heads for f in block.fusion] == [12, 6]  # each CLS attends in the other level's width
    assert all(level[0].attn.qkv.bias is not None for level in block.blocks)
    assert all(f.attn.wq.bias is not None for f in block.fusion)
    assert [level[0].mlp.fc1.out_features for level in block.blocks] == [2 * 96, 2 * 384]
    # position embeddings held at the token grids of a 512² input: /4 and /16, CLS first
    assert [tuple(p.shape) for p in net.dlf.pos_embed] == [(1, 1 + 128 * 128, 96), (1, 1 + 32 * 32, 384)]
    assert not list(HiFormer(num_classes=2, encoder_name="resnet18", cross_pos_embed=False).dlf.pos_embed)


@pytest.mark.parametrize("part", ["per-level blocks", "position embedding"])
def test_hiformer_dlf_blocks_and_position_embedding_reach_the_prediction(part):
    """The official MultiScaleBlock drops its per-level blocks' output; here both parts change the logits."""
    torch.manual_seed(0)
    net = HiFormer(num_classes=2, encoder_name="resnet18").eval()
    x = torch.randn(1, 3, 64, 96)  # not the 512² of the embedding: it is resampled
    params = net.dlf.blocks[0].blocks[1].parameters() if part == "per-level blocks" else net.dlf.pos_embed
    with torch.no_grad():
        before = net(x)
        for p in params:
            p.add_(torch.randn_like(p))
        assert not torch.allclose(before, net(x))


def test_transdeeplab_sspp_windows_follow_the_official_rule():
    """rezazad68/transdeeplab `model/aspp.py::SwinASPP`: divisors of the map side from the start window up."""
    from lightning_modules.nets.transdeeplab import sspp_window_rule

    assert sspp_window_rule(14) == (7, 14)  # the official 224² model
    assert sspp_window_rule(24) == (4, 6, 8, 12, 24)  # its hand-written list
    assert sspp_window_rule(512 // 16) == (8, 16, 32)
    assert [level.blocks[0].window_size[0] for level in TransDeepLab(num_classes=2).sspp.levels] == [
        8,
        16,
        32,
    ]
