"""On CPU the fast path (fused Adam + `torch.compile`) trains every network to what fp32 eager trains it to.

Compilation runs through dynamo and AOT autograd with the `aot_eager` backend: it traces every net's
forward and backward exactly as inductor would receive them, without building C++ kernels (minutes per
net here), and a trace that fails fails the test instead of falling back to eager. Dropout and drop
path are off, so both paths see the same arithmetic. Inductor's own CPU kernels are timed, and their
predictions checked, by `python -m experiments bench --reference` (issue 17).
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn
from torch._dynamo.utils import counters

from callbacks.fast_path import compile_with_fallback
from lightning_modules.nets import NETS
from tests.lightning_modules.test_nets import build

STEPS = 2


def _deterministic(net: nn.Module) -> nn.Module:
    for module in net.modules():
        if isinstance(module, DropPath):
            module.drop_prob = 0.0
        elif isinstance(module, nn.Dropout):
            module.p = 0.0
    return net


def _train(net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    losses = []
    for _ in range(STEPS):
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETS))
def test_fast_path_trains_like_fp32_eager(name: str) -> None:
    torch.manual_seed(0)
    depth = "intermediate" if "depth" in inspect.signature(NETS[name]).parameters else None
    eager = _deterministic(build(name, depth)).train()
    fast = copy.deepcopy(eager)
    x = torch.randn(2, 3, 64, 64)
    y = torch.randint(0, 3, (2,) if name.endswith("_classifier") else (2, 64, 64))
    reference = _train(eager, torch.optim.Adam(eager.parameters(), lr=1e-3), x, y)
    torch._dynamo.reset()
    counters["stats"].clear()
    assert compile_with_fallback(fast, backend="aot_eager")
    with torch._dynamo.config.patch(suppress_errors=False):  # a net dynamo cannot trace fails here
        losses = _train(fast, torch.optim.Adam(fast.parameters(), lr=1e-3, fused=True), x, y)
    assert counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    assert losses == pytest.approx(reference, rel=1e-4)
    eager.eval(), fast.eval()
    with torch.no_grad(), torch.compiler.set_stance("force_eager"):  # the fast path evaluates eagerly
        expected, predicted = eager(x), fast(x)
    torch.testing.assert_close(predicted, expected, rtol=1e-3, atol=1e-3)
    assert (predicted.argmax(1) == expected.argmax(1)).float().mean() >= 0.99
    torch._dynamo.reset()
