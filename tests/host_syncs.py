"""Count the device-to-host reads PyTorch code makes: ``.item()``, ``bool(tensor)``, data-dependent shapes.

On a GPU each is a synchronisation that stalls the launch queue; on CPU they cost nothing, but the same
ATen calls happen, so a CPU test can prove that a training step makes none. One exception is CPU-only:
``F.one_hot`` checks the index range with ``.item()`` on CPU, but not on CUDA, where it relies on a device
assert (ATen ``Onehot.cpp``); reads made on a ``one_hot(`` line are therefore not counted.
"""

from __future__ import annotations

import traceback
from collections import Counter

import lightning as L
from torch.utils._python_dispatch import TorchDispatchMode

#: ATen ops that copy a device value to the host, or whose output shape depends on the data
HOST_READS = {
    "_local_scalar_dense", "is_nonzero", "item", "nonzero", "masked_select",
    "_unique", "_unique2", "unique_dim", "unique_consecutive",
}  # fmt: skip
#: source snippets whose reads happen on CPU only
CPU_ONLY = ("one_hot(",)


class HostSyncCounter(TorchDispatchMode):
    """``with HostSyncCounter() as syncs: ...`` then ``syncs.origins``: where each read came from."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_READS:
            stack = [f for f in traceback.extract_stack()[:-1] if "/torch/_" not in f.filename]
            if not any(snippet in (stack[-1].line or "") for snippet in CPU_ONLY):
                frames = [f"{f.filename}:{f.lineno} {f.name}" for f in stack[-4:]]
                self.origins[" <- ".join(reversed(frames))] += 1
        return func(*args, **(kwargs or {}))


class StepProbe(L.Callback):
    """Counts the host reads of one whole training step: from the start of batch ``step`` to the next's.

    The whole step includes what Lightning does after ``training_step`` (logging, progress bar).
    """

    def __init__(self, step: int = 1) -> None:
        self.step = step
        self.counter = HostSyncCounter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.step:
            self.counter.__enter__()
        elif batch_idx == self.step + 1:
            self.counter.__exit__(None, None, None)
