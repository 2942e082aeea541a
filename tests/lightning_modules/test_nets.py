"""Contract tests over every NETS entry x Swin depth, plus the Swin, CNN-encoder and block details."""

from __future__ import annotations

import inspect
from unittest import mock

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformerBlock

from lightning_modules.nets import NETS
from lightning_modules.nets.blocks import FinalPatchExpand, PatchExpand, ResMLP
from lightning_modules.nets.cnn_encoder import CNNEncoder
from lightning_modules.nets.cs_unet import CSUNet
from lightning_modules.nets.swin import SwinEncoder, swin_checkpoint_filter
from lightning_modules.nets.swin_classifier import SwinClassifier

PAPER_ENCODERS = [
    "efficientnet-b2",
    "efficientnet-b3",
    "efficientnet-b4",
    "resnext50_32x4d",
    "inceptionv4",
    "vgg16_bn",
    "se_resnext50_32x4d",
    "se_resnext101_32x4d",
    "se_resnet50",
    "se_resnet101",
    "se_resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "densenet121",
    "mobilenet_v2",
]
#: one encoder per family (and the two whose strides differ in the original code) run in the fast suite
FAMILIES = {"inceptionv4", "vgg16_bn", "efficientnet-b2", "mobilenet_v2", "densenet121", "se_resnet50"}


def _cases(slow_depth: str | None = None) -> list:
    """NETS x Swin depth; the depth `slow_depth` is marked slow (to keep the large-input tests cheap)."""
    cases = []
    for name, cls in NETS.items():
        has_depth = "depth" in inspect.signature(cls).parameters
        for d in ("original", "intermediate") if has_depth else (None,):
            marks = [pytest.mark.slow] if d is not None and d == slow_depth else []
            cases.append(pytest.param(name, d, id=f"{name}-{d}", marks=marks))
    return cases


def build(name: str, depth: str | None, num_classes: int = 3) -> torch.nn.Module:
    """Smallest honest build of a NETS entry: resnet18 where a CNN encoder is configurable."""
    params = inspect.signature(NETS[name]).parameters
    kwargs = {"num_classes": num_classes}
    if depth is not None:
        kwargs["depth"] = depth
    if "encoder_name" in params:
        kwargs["encoder_name"] = "resnet18"
    return NETS[name](**kwargs)


def _expected(name: str, x: torch.Tensor, num_classes: int = 3) -> tuple[int, ...]:
    if name.endswith("_classifier"):
        return (x.shape[0], num_classes)
    return (x.shape[0], num_classes, *x.shape[-2:])


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: CI's 2 cores are shared with xdist workers, and OpenMP barriers stall under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("name", "depth"), _cases())
def test_forward_backward_256(name, depth):
    torch.manual_seed(0)
    net = build(name, depth).train()
    x = torch.randn(1, 3, 256, 256)
    y = net(x)
    assert y.shape == _expected(name, x)
    assert torch.isfinite(y).all()
    y.float().pow(2).mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("name", "depth"), _cases(slow_depth="original"))
@pytest.mark.parametrize("size", [(512, 768), (67, 93)], ids=["512x768", "67x93"])
def test_forward_any_size(name, depth, size):
    net = build(name, depth).eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == _expected(name, x)
    assert torch.isfinite(y).all()


@pytest.mark.slow
@pytest.mark.parametrize("encoder", PAPER_ENCODERS)
def test_cs_unet_builds_with_every_paper_encoder(encoder):
    net = CSUNet(num_classes=2, encoder_name=encoder).eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 2, 256, 256)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(
    "encoder", [e if e in FAMILIES else pytest.param(e, marks=pytest.mark.slow) for e in PAPER_ENCODERS]
)
def test_cnn_encoder_pyramid_is_4_8_16_32(encoder):
    """Every paper encoder (inceptionv4 and vgg16_bn included) gives maps at /4, /8, /16, /32."""
    enc = CNNEncoder(encoder).eval()
    with torch.no_grad():
        features = enc(torch.randn(1, 3, 64, 96))
    assert enc.reductions == [4, 8, 16, 32]
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert [f.shape[1] for f in features] == enc.out_channels


def test_cnn_encoder_probe_keeps_batchnorm_stats():
    fresh = CNNEncoder("resnet18")
    assert torch.equal(fresh.encoder.bn1.running_mean, torch.zeros(64))
    assert fresh.encoder.training


def test_swin_t_parameter_count_matches_paper():
    """Swin-T [2,2,6,2] with a 1000-class head has about 28.3 M parameters (timm/Microsoft: 28.29 M)."""
    ours = sum(p.numel() for p in SwinClassifier(num_classes=1000, depth="original").parameters())
    timm_t = sum(p.numel() for p in timm.create_model("swin_tiny_patch4_window7_224").parameters())
    assert abs(ours - timm_t) < 0.01 * timm_t  # only the 7->8 window rel-pos tables differ


def test_swin_attention_goes_through_sdpa():
    enc = SwinEncoder("intermediate").eval()
    with (
        mock.patch.object(F, "scaled_dot_product_attention", wraps=F.scaled_dot_product_attention) as sdpa,
        torch.no_grad(),
    ):
        enc(torch.randn(1, 3, 64, 64))
    assert sdpa.call_count == sum(enc.depths)


def test_shifted_window_mask_is_built_once_per_map_size():
    enc = SwinEncoder("intermediate").eval()
    build = mock.patch.object(
        SwinTransformerBlock, "get_attn_mask", autospec=True, side_effect=SwinTransformerBlock.get_attn_mask
    )
    x = torch.randn(1, 3, 64, 96)
    with build as built:
        with torch.inference_mode():  # Lightning validates in inference mode, sanity check first
            first = enc(x)
        assert built.call_count == 4  # one shifted block per stage
        second = enc(x)
        sum(f.sum() for f in second).backward()  # masks cached in inference mode serve training
        assert built.call_count == 4
        enc(torch.randn(1, 3, 96, 96))
        # stage maps 24x24 and 12x12 (padded 24x24, 16x16) are new; 6x6 and 3x3 pad to the cached 8x8
        assert built.call_count == 6
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=1e-4, atol=1e-4)


def test_swin_encoder_equals_timm_swin_with_its_weights():
    """Same weights -> same features as timm's own SwinTransformer (window 8, any-size mode)."""
    torch.manual_seed(0)
    ref = timm.create_model(
        "swin_tiny_patch4_window7_224",
        depths=(2, 2, 2, 2),
        window_size=8,
        img_size=128,
        strict_img_size=False,
        always_partition=True,
    ).eval()
    enc = SwinEncoder("intermediate").eval()
    enc.load_state_dict(swin_checkpoint_filter(ref.state_dict(), enc))
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        ours = enc(x)
        theirs = ref.forward_intermediates(x, intermediates_only=True)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b.permute(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_swin_filter_maps_timm_and_microsoft_layouts_with_window_resize():
    src = timm.create_model("swin_tiny_patch4_window7_224").state_dict()  # window 7: 13x13 tables
    enc = SwinEncoder("original")
    timm_mapped = swin_checkpoint_filter(src, enc, prefix="swin.")
    assert set(timm_mapped) == {f"swin.{k}" for k in enc.state_dict()}
    assert timm_mapped["swin.layers.0.blocks.0.attn.relative_position_bias_table"].shape == (15 * 15, 3)

    def to_microsoft(key: str) -> str:  # Microsoft downsamples at the end of the previous stage
        if ".downsample." in key:
            i = int(key.split(".")[1])
            return key.replace(f"layers.{i}.", f"layers.{i - 1}.")
        return key.replace("head.fc.", "head.")

    microsoft = {to_microsoft(k): v for k, v in src.items()}
    microsoft["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    ms_mapped = swin_checkpoint_filter({"model": microsoft}, enc, prefix="swin.")
    assert set(ms_mapped) == set(timm_mapped)
    for k in timm_mapped:
        assert torch.equal(ms_mapped[k], timm_mapped[k]), k


def test_patch_expand_rearranges_channels_into_2x2_blocks():
    """Channel group (p1, p2) of token (h, w) becomes pixel (2h + p1, 2w + p2), as Swin-Unet's einops rule."""
    up = PatchExpand(8)
    x = torch.randn(2, 3, 5, 8)
    expanded, y = up.expand(x), up(x)
    for p1 in range(2):
        for p2 in range(2):
            group = expanded[..., (2 * p1 + p2) * 4 : (2 * p1 + p2 + 1) * 4]
            torch.testing.assert_close(y[:, p1::2, p2::2], up.norm(group))
    assert y.shape == (2, 6, 10, 4)
    assert FinalPatchExpand(8)(x).shape == (2, 12, 20, 8)


def test_resmlp_is_a_drop_in_for_timm_mlp():
    mlp = ResMLP(16, 64)
    assert (
        mlp.fc1.weight.shape == (64, 16)
        and mlp.fc2.weight.shape == (16, 64)
        and mlp.fc3.weight.shape == (16, 16)
    )
    assert mlp(torch.randn(2, 4, 4, 16)).shape == (2, 4, 4, 16)
    enc = SwinEncoder("intermediate", mlp="resmlp")
    assert all(isinstance(b.mlp, ResMLP) for stage in enc.layers for b in stage.blocks)
    assert len(enc.optional_keys()) == 2 * sum(enc.depths)


def test_cnn_to_swin_hand_over_is_a_view_with_channels_last_weights():
    """FastPath's channels_last (GPU default) makes the CNN maps NHWC in memory, so `nchw_to_nhwc` copies nothing."""
    from lightning_modules.nets.blocks import nchw_to_nhwc

    net = CSUNet(num_classes=3, encoder_name="resnet18").eval()
    x = torch.randn(1, 3, 64, 64)  # plain NCHW input: the first convolution follows the weights' layout
    with torch.no_grad():
        assert not any(nchw_to_nhwc(f).is_contiguous() for f in net.cnn(x))
        net = net.to(memory_format=torch.channels_last)
        assert all(nchw_to_nhwc(f).is_contiguous() for f in net.cnn(x))
