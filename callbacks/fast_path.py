"""Speed-ups, each switched on only where it pays off; only bf16 changes results (within its precision).

The `FastPath` callback sets the layout (channels_last) and decides `torch.compile`. Mixed precision is
the trainer's `precision`, which `python -m experiments fit` fills with `default_precision`: `bf16-mixed`
on a bf16-capable GPU and on a CPU that multiplies bf16 in hardware (AVX512-BF16 or AMX: oneDNN's bf16
matmuls and convolutions run 2.5-3x faster than fp32 there, and a CS-UNet train step ~1.6x, issue 17),
`32-true` elsewhere (without those instructions bf16 is emulated and slower than fp32). The fused Adam is
the LightningModules' own (`FUSED_ADAM_DEVICES`).

`torch.compile` (inductor) makes a CPU train step faster (`CPU_COMPILE_GAIN`), but compiling costs
minutes there: inductor writes and builds C++ kernels one by one (`CPU_COMPILE_SECONDS`). So in an fp32
run on CPU, by default, FastPath times a few eager training steps and compiles only when the rest of the
run at that pace saves more than the compilation costs (`compile_pays_off`): a run of hours compiles,
the demo, a `fast_dev_run` or a test of a few steps stays eager; bf16 runs stay eager
(`compiles_long_runs`). Validation, test and predict then stay eager
(each new input size and eval mode would compile again for a few batches).
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.utilities import rank_zero_info

#: eager step time / compiled step time of a CPU train step (CS-UNet ResNet-50 [2,2,2,2], 256², batch 2;
#: median of 5 alternating steps on the 2-core machine, issue 17)
CPU_COMPILE_GAIN = 1.2
#: seconds of inductor's first compilation of CS-UNet's training graphs (forward + backward) on that
#: machine: ~15 CPU-minutes, most of them in g++. Smaller nets compile faster, so this errs towards eager.
CPU_COMPILE_SECONDS = 900.0


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware: AVX512-BF16 (AMD Zen 4, Intel Cooper Lake) or AMX."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own probes (cpuinfo)
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def default_precision(accelerator: Any = "auto") -> str:
    """``bf16-mixed`` where training runs on a bf16-capable CUDA GPU or a `cpu_has_native_bf16` CPU, else ``32-true``."""
    accelerator = str(accelerator)
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    on_cpu = accelerator in ("auto", "cpu")
    return "bf16-mixed" if on_cpu and cpu_has_native_bf16() else "32-true"


def channels_last_by_default(device: torch.device) -> bool:
    """channels_last pays off with cuDNN; on CPU it is no faster (ResNet-50 encoder at 256²: 0.97x, issue 17)."""
    return device.type == "cuda"


def compiles_long_runs(device: torch.device, precision: str = "32-true") -> bool:
    """Whether FastPath compiles, by default, a run long enough to win the compile time back.

    Only an fp32 run on CPU, where gain and cost were measured (`CPU_COMPILE_GAIN`,
    `CPU_COMPILE_SECONDS`). A bf16-mixed CPU run stays eager: inductor's build of CS-UNet's bf16
    graphs had not finished after an hour on the 2-core machine (shared with two other jobs), and what
    it would save is unmeasured.
    On a GPU not yet either: compile time and gain are unmeasured there.
    """
    return device.type == "cpu" and str(precision) == "32-true"


def compile_pays_off(
    steps_left: float,
    step_seconds: float,
    compile_seconds: float = CPU_COMPILE_SECONDS,
    gain: float = CPU_COMPILE_GAIN,
) -> bool:
    """True when `steps_left` steps run `gain` times faster save more than `compile_seconds`."""
    return steps_left * step_seconds * (1 - 1 / gain) > compile_seconds


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
    """channels_last weights and ``torch.compile`` of the network where they pay off.

    Args:
        channels_last: convert 4-D weights to channels_last, which lets cuDNN run convolutions in NHWC
            (tensor cores, no layout transposes) and makes the CNN-to-Swin hand-over
            (`nchw_to_nhwc`) a free view. Inputs need no conversion: a convolution with channels_last
            weights returns channels_last maps. ``None``: `channels_last_by_default` (CUDA only).
        compile: ``True``: ``torch.compile`` the LightningModule's ``net`` before training (everything it
            runs is compiled); ``False``: never; ``None`` (default): in an fp32 run on CPU, compile for the
            rest of the training when `compile_pays_off` after `timed_steps` eager steps, evaluation
            staying eager; elsewhere off (`compiles_long_runs`). Compilation falls back to eager where it
            fails (`compile_with_fallback`).
        compile_backend, compile_mode: passed to ``torch.compile``.
        timed_steps: eager training steps timed for the decision, after one untimed first step.
        compile_seconds: the cost of compiling, in seconds, that the decision weighs.
    """

    def __init__(
        self,
        channels_last: bool | None = None,
        compile: bool | None = None,
        compile_backend: str = "inductor",
        compile_mode: str | None = None,
        timed_steps: int = 3,
        compile_seconds: float = CPU_COMPILE_SECONDS,
    ) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self.compile_backend = compile_backend
        self.compile_mode = compile_mode
        self.timed_steps = timed_steps
        self.compile_seconds = compile_seconds
        self.compiled = False
        self.decided = False
        self._step_seconds: list[float] = []
        self._start = 0.0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        device = trainer.strategy.root_device
        channels_last = self.channels_last
        if channels_last is None:
            channels_last = channels_last_by_default(device)
        if channels_last:
            pl_module.to(memory_format=torch.channels_last)  # later moves to the device keep the layout
        if self.compile and not self.compiled:
            self.compiled = compile_with_fallback(_net(pl_module), self.compile_backend, self.compile_mode)
        self.decided = (
            self.decided or self.compile is not None or not compiles_long_runs(device, trainer.precision)
        )

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.decided:
            return
        self._step_seconds.append(time.perf_counter() - self._start)
        if (
            len(self._step_seconds) > self.timed_steps
        ):  # the first step (allocations, mask caches) is left out
            self._decide(trainer, pl_module, statistics.median(self._step_seconds[1:]))

    def _decide(self, trainer: L.Trainer, pl_module: L.LightningModule, step_seconds: float) -> None:
        steps_left = trainer.estimated_stepping_batches - trainer.global_step
        seconds_left = steps_left * step_seconds
        for callback in trainer.callbacks:
            if isinstance(callback, Timer) and callback.time_remaining() is not None:
                seconds_left = min(seconds_left, callback.time_remaining())
        pays = compile_pays_off(seconds_left / step_seconds, step_seconds, self.compile_seconds)
        pays = trainer.strategy.broadcast(pays, src=0)  # every rank decides as rank 0 does
        self.decided = True
        verdict = "compiling the net (torch.compile)" if pays else "staying eager (too short to win it back)"
        rank_zero_info(
            f"FastPath: {step_seconds:.2f} s per eager step, at most {seconds_left / 60:.0f} min of training "
            f"left; compiling costs ~{self.compile_seconds / 60:.0f} min for {1 - 1 / CPU_COMPILE_GAIN:.0%} "
            f"off each step: {verdict}"
        )
        if pays:
            self.compiled = compile_with_fallback(_net(pl_module), self.compile_backend, self.compile_mode)

    def _evaluation_starts(self) -> None:
        if self.compiled and self.compile is None:
            torch.compiler.set_stance("force_eager")

    def _evaluation_ends(self) -> None:
        if self.compiled and self.compile is None:
            torch.compiler.set_stance("default")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_starts()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_ends()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_starts()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_ends()

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_starts()

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_ends()


def _net(pl_module: L.LightningModule) -> torch.nn.Module:
    return getattr(pl_module, "net", pl_module)
