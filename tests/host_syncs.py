"""Count device-to-host reads (``.item()``, ``bool(tensor)``, ``if tensor.any()``) made by PyTorch code.

On a GPU each is a synchronisation that stalls the launch queue; on CPU they cost nothing, but the same
ATen calls happen, so a CPU test can prove that a training step makes none.
"""

from __future__ import annotations

import traceback
from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode

#: ATen ops that copy a device value to the host
HOST_READS = {"_local_scalar_dense", "is_nonzero", "item"}


class HostSyncCounter(TorchDispatchMode):
    """``with HostSyncCounter() as syncs: ...`` then ``syncs.origins``: where each read came from."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_READS:
            stack = [f for f in traceback.extract_stack()[:-1] if "/torch/_" not in f.filename]
            frames = [f"{f.filename}:{f.lineno} {f.name}" for f in stack[-4:]]
            self.origins[" <- ".join(reversed(frames))] += 1
        return func(*args, **(kwargs or {}))
