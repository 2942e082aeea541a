"""`python -m experiments models` lists every NETS entry (both Swin depths) with params and GFLOPs."""

from __future__ import annotations

from experiments.cli import TOOLS
from experiments.models_cmd import count, main
from lightning_modules.nets import NETS


def test_models_table_lists_every_net(capsys):
    assert TOOLS["models"] == "experiments.models_cmd"
    assert main(["--size", "64", "--encoder", "resnet18"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert {r.split()[0] for r in rows} == set(NETS)
    assert sum(r.split()[0] == "swin_unet" for r in rows) == 2  # original + intermediate
    assert all(float(r.split()[-1]) > 0 and float(r.split()[-2]) > 0 for r in rows)


def test_swin_t_counts_match_the_paper_at_224():
    """Swin-T [2,2,6,2], 1000 classes: 28.3 M parameters, about 4.5 GFLOPs (MACs) at 224²."""
    params, gflops = count("swin_classifier", {"depth": "original"}, 224, 1000)
    assert 28.0 < params < 28.6
    assert 4.3 < gflops < 5.0
