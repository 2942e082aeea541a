"""Every run a sweep file launches parses with LightningCLI (config names, init-arg names, value types)."""

from __future__ import annotations

import pytest

from experiments.cli import cli_main
from experiments.reproduce.run import cli_args, resolve
from experiments.reproduce.sweep import SWEEPS, expand, load_sweep


def _distinct_runs() -> list[dict]:
    """One grid point per model and kind of weights value across Tables 4-8 (the other axes are plain values)."""
    seen, runs = set(), []
    for path in sorted(SWEEPS.glob("table*.yaml")):
        for point in expand(load_sweep(path)["parameters"]):
            axes = resolve(point)
            key = (axes["model"], "+" in str(axes.get("weights")))
            if axes["dataset"] == "super3" and key not in seen:
                seen.add(key)
                runs.append(axes)
    return runs


@pytest.mark.parametrize("axes", _distinct_runs(), ids=lambda a: "-".join(str(v) for v in a.values()))
def test_sweep_run_parses_with_lightning_cli(axes, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", *cli_args(axes), "--print_config"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    printed = capsys.readouterr().out
    cnn, _, swin = str(axes["weights"]).partition("+")
    assert (f"cnn: {cnn}" in printed and f"swin: {swin}" in printed) if swin else f"weights: {cnn}" in printed
    assert f"seed_everything: {axes['seed']}" in printed
