"""Speed-ups that leave results unchanged, each switched on only where it pays off.

The `FastPath` callback sets the layout (channels_last) and, on request, `torch.compile`. Mixed precision
is the trainer's `precision`, which `python -m experiments fit` fills with `default_precision`:
`bf16-mixed` on a bf16-capable GPU, `32-true` elsewhere (on CPU bf16 autocast is 10-30x slower than
fp32, `make bench`). The fused Adam is the LightningModules' own (`FUSED_ADAM_DEVICES`).
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def default_precision(accelerator: Any = "auto") -> str:
    """``bf16-mixed`` when training will run on a CUDA GPU with bf16 support, else ``32-true``."""
    on_gpu = str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def channels_last_by_default(device: torch.device) -> bool:
    """channels_last pays off with cuDNN; on CPU it measured no faster (2-core machine, U-Net and CS-UNet)."""
    return device.type == "cuda"


def compile_with_fallback(
    module: torch.nn.Module, backend: str = "inductor", mode: str | None = None
) -> bool:
    """Compile ``module`` in place (its state-dict keys stay unchanged); False, with a warning, where unsupported.

    A graph that then fails to compile runs eagerly with a logged warning (dynamo's ``suppress_errors``)
    instead of ending the run: compilation is an optimisation, never a reason to lose a training run.
    """
    try:
        module.compile(backend=backend, mode=mode)
    except Exception as err:  # e.g. a Python version or platform torch.compile does not support
        warnings.warn(f"torch.compile unavailable ({err}); training runs eagerly", stacklevel=2)
        return False
    torch._dynamo.config.suppress_errors = True
    return True


class FastPath(Callback):
    """channels_last weights and, on request, ``torch.compile`` of the network, before training starts.

    Args:
        channels_last: convert 4-D weights to channels_last, which lets cuDNN run convolutions in NHWC
            (tensor cores, no layout transposes) and makes the CNN-to-Swin hand-over
            (`nchw_to_nhwc`) a free view. Inputs need no conversion: a convolution with channels_last
            weights returns channels_last maps. ``None``: `channels_last_by_default` (CUDA only).
        compile: ``torch.compile`` the LightningModule's ``net`` (falls back to eager, see
            `compile_with_fallback`). Off by default: compiling takes minutes per model and input size.
        compile_backend, compile_mode: passed to ``torch.compile``.
    """

    def __init__(
        self,
        channels_last: bool | None = None,
        compile: bool = False,
        compile_backend: str = "inductor",
        compile_mode: str | None = None,
    ) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self.compile_backend = compile_backend
        self.compile_mode = compile_mode
        self.compiled = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        channels_last = self.channels_last
        if channels_last is None:
            channels_last = channels_last_by_default(trainer.strategy.root_device)
        if channels_last:
            pl_module.to(memory_format=torch.channels_last)  # later moves to the device keep the layout
        if self.compile and not self.compiled:
            net = getattr(pl_module, "net", pl_module)
            self.compiled = compile_with_fallback(net, self.compile_backend, self.compile_mode)
