"""`python -m experiments reproduce-mini --quick`: the whole pipeline (pretrain, 2 CS-UNet runs, table)."""

from __future__ import annotations

import pytest

from experiments.reproduce import mini as reproduce_mini


@pytest.mark.slow
@pytest.mark.real_data
def test_quick_reproduction(tmp_path, nasa_root, microlite_root, capsys):
    runs = tmp_path / "runs"
    argv = ["--quick", "--runs", str(runs), "--microlite", str(microlite_root), "--nasa", str(nasa_root)]
    assert reproduce_mini.main(argv) == 0
    out = capsys.readouterr().out
    assert "| dataset | split | random init | MicroLite Swin-T |" in out
    assert "| Super-3 | test |" in out and "| Super-3 | test_ood |" in out
    assert len(list((runs / "microlite").rglob("best.ckpt"))) == 1
    assert (runs / "tables" / "reproduce_mini.md").is_file()
    assert reproduce_mini.main(argv) == 0  # resumes: every run is done, only the table is printed again
    assert "4 of 4 results" in capsys.readouterr().out
