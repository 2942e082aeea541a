"""Swin-T encoder on timm's Swin parts, shared by every transformer net of the suite, and THE Swin key map.

Input sizes: any H, W. The encoder zero-pads the image at the bottom/right to a multiple of 32 (patch 4
x three 2x merges) so the four stages are exactly `ceil(H/32)*8, *4, *2, *1` tokens high; outputs keep
that padded grid and the nets crop their logits back. Inside a stage timm's blocks pad each map to a
window multiple and build the shifted-window mask for the actual size on every forward (`dynamic_mask`),
with the full window and shift always used (`always_partition`). Sizes that are multiples of
`window_size * 32` (256 with window 8: 256², 512², 768, 1024²) tile exactly, like the original Swin;
other sizes (e.g. 300×317) work, with zero tokens padding the last window row/column as in Swin's
detection code. On a map no larger than one window (256² input, stage 4) the shifted block still shifts,
with the mask, where the original Swin would switch the shift off.

Attention runs through `F.scaled_dot_product_attention` (timm's `WindowAttention.fused_attn`, which timm
leaves off by default for Swin, is switched on here). The shifted-window mask depends only on the map
size, so each block keeps the masks of the last few sizes instead of rebuilding one per forward
(`SwinBlock`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, calculate_drop_path_rates, resample_patch_embed, resize_rel_pos_bias_table
from timm.models.swin_transformer import SwinTransformerBlock, SwinTransformerStage, WindowAttention
from torch import nn

from lightning_modules.nets.blocks import ResMLP, init_linear

#: named Swin-T depths of the CS-UNet paper
DEPTHS: dict[str, tuple[int, ...]] = {"original": (2, 2, 6, 2), "intermediate": (2, 2, 2, 2)}
MLP_KINDS = ("mlp", "resmlp")


def resolve_depths(depth: str | Sequence[int]) -> tuple[int, ...]:
    """`"original"` -> (2,2,6,2), `"intermediate"` -> (2,2,2,2), a list of 4 ints -> itself."""
    if isinstance(depth, str):
        if depth not in DEPTHS:
            raise ValueError(
                f"unknown Swin depth {depth!r}: use one of {sorted(DEPTHS)} or a list like [2, 2, 6, 2]"
            )
        return DEPTHS[depth]
    return tuple(int(d) for d in depth)


class SwinBlock(SwinTransformerBlock):
    """timm's Swin block whose shifted-window attention mask is cached per map size, device and dtype.

    With `dynamic_mask` timm rebuilds the mask on every forward (about 15 small kernels per shifted block);
    it is a constant of the padded map size, so it is built once per size. Traced code (`torch.compile`)
    builds it in the graph instead, where the compiler fuses it, and no Python cache is traced.
    """

    max_cached_sizes = 4

    def get_attn_mask(
        self,
        x: torch.Tensor | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor | None:
        if not any(self.shift_size):
            return None
        if x is None or torch.compiler.is_compiling():
            return super().get_attn_mask(x, device, dtype)
        # created on first use: blocks become SwinBlock after timm has built them, so no __init__ runs
        cache: dict = self.__dict__.setdefault("_attn_masks", {})
        key = (x.shape[1], x.shape[2], x.device, x.dtype)
        if key not in cache:
            if len(cache) >= self.max_cached_sizes:
                cache.pop(next(iter(cache)))  # the oldest size
            with torch.inference_mode(False):  # a mask first built in validation also serves training
                cache[key] = super().get_attn_mask(x)
        return cache[key]


def swin_stage(
    dim: int,
    out_dim: int,
    depth: int,
    num_heads: int,
    window_size: int = 8,
    downsample: bool = False,
    drop_path: float | list[float] = 0.0,
    mlp: str = "mlp",
) -> SwinTransformerStage:
    """One timm Swin stage that runs at any map size with SDPA attention; `mlp="resmlp"` swaps in ResMLP.

    Decoders (Swin-Unet, CS-UNet, TransDeepLab) build their stages with this too.
    """
    if mlp not in MLP_KINDS:
        raise ValueError(f"unknown Swin MLP kind {mlp!r}: use one of {MLP_KINDS}")
    stage = SwinTransformerStage(
        dim=dim,
        out_dim=out_dim,
        input_resolution=(window_size, window_size),  # unused: masks are built per forward
        depth=depth,
        downsample=downsample,
        num_heads=num_heads,
        window_size=window_size,
        always_partition=True,
        dynamic_mask=True,
        drop_path=drop_path,
    )
    for block in stage.blocks:
        block.__class__ = SwinBlock  # timm's stage takes no block class; SwinBlock only adds the mask cache
        if mlp == "resmlp":
            block.mlp = ResMLP(out_dim, block.mlp.fc1.out_features)
    for module in stage.modules():
        if isinstance(module, WindowAttention):
            module.fused_attn = True
    init_linear(stage)
    return stage


class SwinEncoder(nn.Module):
    """Swin-T pyramid: `forward(x (B,3,H,W))` -> 4 NHWC maps at reductions 4, 8, 16, 32.

    Module names follow timm's `SwinTransformer` (`patch_embed.*`, `layers.{i}.*`), so timm checkpoints
    map by name; see `swin_checkpoint_filter` for the other layouts.
    """

    def __init__(
        self,
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        patch_size: int = 4,
        mlp: str = "mlp",
        drop_path_rate: float = 0.1,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        depths = resolve_depths(depth)
        if len(depths) != len(num_heads):
            raise ValueError(
                f"Swin depth {list(depths)} and num_heads {list(num_heads)} need the same length"
            )
        self.depths, self.mlp, self.window_size = depths, mlp, window_size
        self.out_channels = [embed_dim * 2**i for i in range(len(depths))]
        self.reductions = [patch_size * 2**i for i in range(len(depths))]
        self.divisor = self.reductions[-1]
        self.patch_embed = PatchEmbed(
            img_size=None, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
            norm_layer=nn.LayerNorm, output_fmt="NHWC",
        )  # fmt: skip
        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)
        self.layers = nn.Sequential(
            *[
                swin_stage(
                    dim=self.out_channels[max(i - 1, 0)],
                    out_dim=self.out_channels[i],
                    depth=d,
                    num_heads=num_heads[i],
                    window_size=window_size,
                    downsample=i > 0,
                    drop_path=dpr[i],
                    mlp=mlp,
                )
                for i, d in enumerate(depths)
            ]
        )
        init_linear(self.patch_embed)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % self.divisor, 0, (-h) % self.divisor))
        x = self.patch_embed(x)
        features = []
        for stage in self.layers:
            x = stage(x)
            features.append(x)
        return features

    def optional_keys(self) -> set[str]:
        """State-dict keys that a plain Swin checkpoint cannot provide (ResMLP's `fc3`)."""
        return {k for k in self.state_dict() if ".mlp.fc3." in k}


#: Microsoft/timm classifier parts that are not part of the encoder (dropped by the filter)
_NOT_ENCODER = re.compile(r"^(norm|head|layers_up|norm_up|up|output)\b|relative_position_index|attn_mask")


def swin_checkpoint_filter(state_dict: dict, encoder: SwinEncoder, prefix: str = "") -> dict:
    """Rename a Swin state dict to `prefix + SwinEncoder` keys; the one Swin key map of the suite.

    Accepted layouts (detected from the keys):
    - ours: any key containing `swin.` (SwinClassifier, SwinUnet, CS-UNet, ... state dicts): the part
      up to and including the first `swin.` is replaced by `prefix`;
    - timm `SwinTransformer` (`patch_embed.*`, `layers.{i}.downsample` at the start of a stage): 1:1;
    - Microsoft's original (`layers.{i}.downsample` at the end of a stage, `layers.0.downsample` exists):
      downsample indices shift by +1, as timm's own filter does.
    Dropped: non-persistent buffers (`relative_position_index`, `attn_mask`) and classifier/decoder
    parts (`norm`, `head`, `layers_up`, ...). `relative_position_bias_table` is resized (bicubic, timm's
    `resize_rel_pos_bias_table`) when the window differs (ImageNet window 7 -> our 8); the patch
    embedding is resampled when the patch size differs. MLP keys: timm `mlp.fc1/fc2` map unchanged to
    ResMLP `mlp.fc1/fc2` (same shapes); ResMLP's `mlp.fc3` only comes from a ResMLP checkpoint.
    Keys the encoder lacks are returned renamed anyway, so the loader can report them as unexpected.
    """
    state_dict = state_dict.get("model", state_dict)
    state_dict = state_dict.get("state_dict", state_dict)
    ours = [k for k in state_dict if "swin." in k]
    if ours:
        state_dict = {k.split("swin.", 1)[1]: state_dict[k] for k in ours}
    microsoft = "layers.0.downsample.reduction.weight" in state_dict
    target = encoder.state_dict()
    out = {}
    for key, value in state_dict.items():
        if _NOT_ENCODER.search(key):
            continue
        if microsoft:
            key = re.sub(
                r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key
            )
        want = target.get(key)
        if want is not None and want.shape != value.shape:
            if key.endswith("relative_position_bias_table"):
                window = int((want.shape[0] ** 0.5 + 1) // 2)
                value = resize_rel_pos_bias_table(
                    value, new_window_size=(window, window), new_bias_shape=want.shape
                )
            elif key == "patch_embed.proj.weight" and value.shape[:2] == want.shape[:2]:
                value = resample_patch_embed(
                    value, list(want.shape[-2:]), interpolation="bicubic", antialias=True
                )
        out[prefix + key] = value
    return out


def mirror_blocks(mapped: dict, seeds: dict[str, str]) -> dict:
    """`mapped` plus, per `seeds` entry `decoder stage: encoder stage` (net keys), the encoder stage's
    `blocks.*` tensors under the decoder stage's name: the decoder seeding of Swin-Unet's and
    TransDeepLab's `load_from`. Blocks only (no patch merging); the loader keeps the tensors whose
    shapes fit, as those `load_from` do.
    """
    out = dict(mapped)
    for stage, source in seeds.items():
        for key, value in mapped.items():
            if key.startswith(source + ".blocks."):
                out[stage + key[len(source) :]] = value
    return out
