"""Each segmenter wrapper exposes exactly its network's hyperparameters (names and defaults)."""

from __future__ import annotations

import inspect

import pytest

from lightning_modules.nets import NETS
from lightning_modules.segmentation import SegmentationModule
from lightning_modules.segmenters import SEGMENTERS

SEGMENTER_NETS = sorted(name for name in NETS if not name.endswith("_classifier"))


def _params(fn, drop: set[str]) -> dict:
    def norm(v):
        return list(v) if isinstance(v, tuple) else v

    params = inspect.signature(fn).parameters.values()
    return {p.name: norm(p.default) for p in params if p.name not in drop and p.kind is not p.VAR_KEYWORD}


@pytest.mark.parametrize("name", SEGMENTER_NETS)
def test_wrapper_signature_matches_net(name: str) -> None:
    assert name in SEGMENTERS, f"add a wrapper for NETS[{name!r}] to lightning_modules/segmenters.py"
    wrapper = SEGMENTERS[name]
    assert issubclass(wrapper, SegmentationModule)
    assert _params(wrapper.__init__, {"self", "weights"}) == _params(
        NETS[name].__init__, {"self", "num_classes"}
    )
    assert inspect.signature(wrapper.__init__).parameters["weights"].default == "none"


@pytest.mark.parametrize("name", ["unet", "cs_unet"])
def test_wrapper_builds_its_net(name: str) -> None:
    model = SEGMENTERS[name](num_classes=2, class_names=["background", "phase"])
    assert model.hparams.net == name and isinstance(model.net, NETS[name])
    assert set(model.hparams.net_kwargs) == set(_params(NETS[name].__init__, {"self", "num_classes"}))
