"""Checkpoints in the layout of the CS-UNet authors' published Swin-T files, written here for the tests.

Their files come from Microsoft's Swin training code (`save_checkpoint`): a dict with `model` (Microsoft
key names: patch merging at the end of a stage as `layers.{i}.downsample`, `head.*` with 74 MicroLite
classes, `relative_position_index` and `attn_mask` buffers; window 8 at 512², so 15x15 relative-position
tables), `optimizer`, `lr_scheduler`, `scaler`, `epoch`, `max_accuracy` and the run's yacs `config`
object. The yacs-like class is defined in a throw-away module `yacs.config` that is gone again when the
file is read, as on a machine without yacs.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import torch

from lightning_modules.nets.swin import DEPTHS
from lightning_modules.nets.swin_classifier import SwinClassifier

#: a narrow Swin-T (the published heads, a quarter of the published width 96) keeps the files small
NARROW = {"embed_dim": 24, "num_heads": (3, 6, 12, 24)}
WINDOW, IMAGE, CLASSES = 8, 512, 74

_YACS = '''
class CfgNode(dict):
    """Like yacs.config.CfgNode: a dict with attribute access and its flags in __dict__."""

    def __init__(self, init_dict=None):
        super().__init__(init_dict or {})
        self.__dict__["__immutable__"] = False
        self.__dict__["__deprecated_keys__"] = set()
        self.__dict__["__renamed_keys__"] = {}
        self.__dict__["__new_allowed__"] = False

    def __getattr__(self, name):
        return self[name]

    def __setattr__(self, name, value):
        self[name] = value
'''


def microsoft_state(depth: str, seed: int, width: dict = NARROW) -> dict[str, torch.Tensor]:
    """A Swin-T classifier's `model` state dict with Microsoft's key names and buffers, random values."""
    g = torch.Generator().manual_seed(seed)
    clf = SwinClassifier(num_classes=CLASSES, depth=depth, window_size=WINDOW, **width)
    state = {}
    for key, value in clf.state_dict().items():
        key = key.removeprefix("swin.").replace("head.fc.", "head.")
        key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        state[key] = torch.randn(value.shape, generator=g) if value.is_floating_point() else value
    tokens = WINDOW * WINDOW
    for i, blocks in enumerate(DEPTHS[depth]):
        side = IMAGE // 4 // 2**i
        for j in range(blocks):
            state[f"layers.{i}.blocks.{j}.attn.relative_position_index"] = torch.zeros(
                tokens, tokens, dtype=torch.long
            )
            if j % 2:  # shifted blocks keep their mask as a buffer
                state[f"layers.{i}.blocks.{j}.attn_mask"] = torch.zeros((side // WINDOW) ** 2, tokens, tokens)
    assert state["layers.0.blocks.0.attn.relative_position_bias_table"].shape[0] == 15 * 15
    assert state["head.weight"].shape[0] == CLASSES and "layers.0.downsample.reduction.weight" in state
    return state


def write_published(path: Path, depth: str, seed: int, width: dict = NARROW) -> dict[str, torch.Tensor]:
    """Write a published-layout checkpoint to `path`; returns its `model` state dict."""
    module_dir = path.parent / f"yacs_stub_{path.stem}"
    (module_dir / "yacs").mkdir(parents=True, exist_ok=True)
    (module_dir / "yacs" / "__init__.py").write_text("")
    (module_dir / "yacs" / "config.py").write_text(textwrap.dedent(_YACS))
    sys.path.insert(0, str(module_dir))
    try:
        from yacs.config import CfgNode

        config = CfgNode()
        config.DATA = CfgNode({"IMG_SIZE": IMAGE, "DATASET": "microlite"})
        config.MODEL = CfgNode({"TYPE": "swin", "NUM_CLASSES": CLASSES, "LABEL_SMOOTHING": 0.1})
        config.MODEL.SWIN = CfgNode({"DEPTHS": list(DEPTHS[depth]), "WINDOW_SIZE": WINDOW, "EMBED_DIM": 96})
        model = microsoft_state(depth, seed, width)
        param = torch.nn.Parameter(torch.zeros(3))
        optimizer = torch.optim.AdamW([param], lr=5e-4)
        param.grad = torch.ones(3)
        optimizer.step()
        torch.save(
            {
                "model": model,
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": {
                    "t_initial": 300,
                    "lr_min": 5e-6,
                    "base_values": [5e-4],
                    "noise_type": "normal",
                },
                "max_accuracy": 84.23,
                "scaler": {
                    "scale": 65536.0,
                    "growth_factor": 2.0,
                    "backoff_factor": 0.5,
                    "growth_interval": 2000,
                },
                "epoch": 299,
                "config": config,
            },
            path,
        )
    finally:
        sys.path.remove(str(module_dir))
        for name in [m for m in sys.modules if m == "yacs" or m.startswith("yacs.")]:
            del sys.modules[name]
    return model
