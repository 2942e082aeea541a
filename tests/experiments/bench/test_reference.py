"""`bench --reference DIR` on a tiny stand-in of the paper's code (same constructor and module layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import segmentation_models_pytorch.encoders as smp_encoders

from experiments.bench import reference
from experiments.bench import train_step as bench

STAND_IN = Path(__file__).parent / "official_stand_in"
TINY = [
    "--device", "cpu", "--encoder", "resnet18", "--size", "64", "--batch", "1", "--steps", "1",
    "--warmup", "1", "--repeats", "2", "--depths", "intermediate", "--variants", "fp32",
]  # fmt: skip


def test_side_by_side_prints_flops_and_the_ratio(tmp_path, capsys) -> None:
    out = tmp_path / "reference.json"
    assert bench.main(["--reference", str(STAND_IN), *TINY, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["reference"] == str(STAND_IN) and report["repeats"] == 2 and report["size"] == 64
    (row,) = report["results"]
    assert row["depth"] == "intermediate" and row["variant"] == "fp32" and row["error"] is None
    assert row["official_gflop"] == pytest.approx(row["ours_gflop"])  # the stand-in is our net
    assert len(row["official_ms"]) == len(row["ours_ms"]) == 2
    assert all(t > 0 for t in row["official_ms"] + row["ours_ms"])
    printed = capsys.readouterr().out
    assert "official/ours" in printed and "2 rounds" in printed
    assert "CSUnetSys stand-in" not in printed  # the official constructor's prints stay out of the table


def test_ours_runs_the_default_training_path_unless_told(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(
        bench, "compiles_long_runs", lambda device, precision="32-true": False
    )  # no inductor build in a test
    out = tmp_path / "reference.json"
    args = [a for a in TINY if a not in ("--variants", "fp32")]
    assert bench.main(["--reference", str(STAND_IN), *args, "--repeats", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["variants"] == ["default"] and report["results"][0]["variant"] == "default"


def test_profile_shows_both_nets(capsys) -> None:
    assert bench.main(["--reference", str(STAND_IN), *TINY, "--profile", "--profile-rows", "5"]) == 0
    out = capsys.readouterr().out
    assert "official CS-UNet, intermediate: 1 steps" in out and "ours (fp32) CS-UNet, intermediate" in out
    assert out.count("Self CPU") >= 2


def test_the_official_cnn_is_built_without_a_download(monkeypatch) -> None:
    asked = []

    def recording(*args, **kwargs):
        asked.append(kwargs.get("weights"))
        return real(*args, **kwargs)

    real = smp_encoders.get_encoder
    monkeypatch.setattr(smp_encoders, "get_encoder", recording)  # what the stand-in imports from smp
    official_cls = reference.load_official(STAND_IN)
    args = bench.argparse.Namespace(size=64, window=8, encoder="resnet18")
    official, ours = reference.build_pair(official_cls, "intermediate", args)
    assert asked == [None]  # the stand-in asked for "imagenet"; the bench took the download away
    assert sum(p.numel() for p in official.parameters()) == sum(p.numel() for p in ours.parameters())


def test_different_work_gets_no_ratio(tmp_path, capsys) -> None:
    doubled = tmp_path / "official"
    shutil.copytree(STAND_IN, doubled)
    source = doubled / "networks" / "CSUNetSys.py"
    source.write_text(source.read_text().replace("FORWARDS = 1", "FORWARDS = 2"))
    out = tmp_path / "reference.json"
    assert bench.main(["--reference", str(doubled), *TINY, "--json", str(out)]) == 1
    (row,) = json.loads(out.read_text())["results"]
    assert row["official_gflop"] == pytest.approx(2 * row["ours_gflop"], rel=0.01)
    assert "FLOPs differ by -50.0%" in row["error"] and row["official_ms"] == []
    assert "no ratio" in capsys.readouterr().out


def test_a_folder_that_is_not_the_paper_code_is_one_clear_line(tmp_path) -> None:
    with pytest.raises(
        SystemExit, match=r"no networks/CSUNetSys.py there.*git clone https://github.com/Kalrfou"
    ):
        bench.main(["--reference", str(tmp_path), *TINY])


def test_a_missing_dependency_of_the_paper_code_is_named(tmp_path) -> None:
    broken = tmp_path / "official"
    shutil.copytree(STAND_IN, broken)
    source = broken / "networks" / "CSUNetSys.py"
    source.write_text(
        source.read_text().replace("from .cnn_encoder", "import einops_not_installed\nfrom .cnn_encoder")
    )
    with pytest.raises(SystemExit, match="imports 'einops_not_installed'.*pip install einops_not_installed"):
        reference.load_official(broken)


def test_rounds_alternate_the_order() -> None:
    calls: list[str] = []
    steps = {"official": lambda: calls.append("official"), "ours": lambda: calls.append("ours")}
    times = reference.alternate(steps, rounds=3, per_round=2, sync=lambda: None)
    assert calls == ["official"] * 2 + ["ours"] * 4 + ["official"] * 4 + ["ours"] * 2
    assert [len(t) for t in times.values()] == [3, 3]
