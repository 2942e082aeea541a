"""`python -m experiments bench` on one tiny model: the JSON contract and the clean compile fallback."""

from __future__ import annotations

import json

import torch

from callbacks import fast_path
from experiments.bench import train_step as bench

TINY = [
    "--models",
    "unet",
    "--encoder",
    "resnet18",
    "--size",
    "64",
    "--batch",
    "1",
    "--steps",
    "1",
    "--data-sets",
    "none",
]


def test_bench_writes_every_key(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(
        [*TINY, "--warmup", "0", "--variants", "fp32", "bf16", "--device", "cpu", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert {"device", "torch", "size", "batch", "steps", "warmup", "results", "data"} <= report.keys()
    assert [(r["model"], r["variant"]) for r in report["results"]] == [("unet", "fp32"), ("unet", "bf16")]
    for row in report["results"]:
        assert row.keys() == {"model", "variant", "images_per_s", "step_ms", "peak_mem_gib", "ratio", "error"}
        assert row["error"] is None and row["images_per_s"] > 0
    assert report["results"][0]["ratio"] == 1.0
    assert "vs fp32" in capsys.readouterr().out


def test_a_failing_compile_is_reported_not_raised(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    out = tmp_path / "bench.json"
    code = bench.main(
        [*TINY, "--warmup", "0", "--variants", "bf16+cl+compile", "--device", "cpu", "--json", str(out)]
    )
    assert code == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["images_per_s"] is None and "no compiler here" in row["error"]


def test_data_pipeline_rates_beside_the_model(tmp_path, capsys, monkeypatch):
    """Without NASA data in the root, synthetic sets of the same kind are timed, per worker count."""
    from experiments.bench import data_loading as bench_data

    monkeypatch.setenv("MICROSEG_DATA", str(tmp_path / "no-data"))
    out = tmp_path / "bench.json"
    args = [*TINY[:-2], "--warmup", "0", "--variants", "fp32", "--device", "cpu", "--json", str(out)]
    code = bench.main([*args, "--data-sets", "super1", "--data-workers", "0", "--data-batches", "2"])
    assert code == 0
    (row,) = json.loads(out.read_text())["data"]
    assert row["dataset"] == "super1" and row["workers"] == 0 and row["source"] == "synthetic"
    assert row["samples_per_s"] > 0
    assert "vs model" in capsys.readouterr().out
    assert 0 in bench_data.default_workers() and 2 in bench_data.default_workers()


def test_default_variant_is_what_training_uses_here(monkeypatch):
    for native_bf16 in (False, True):
        monkeypatch.setattr(fast_path, "cpu_has_native_bf16", lambda v=native_bf16: v)
        cpu = bench.options("default", torch.device("cpu"))
        expected = bench.Options(
            bf16=native_bf16, channels_last=False, compile=not native_bf16, fused_adam=True
        )
        assert cpu == expected
    assert bench.options("bf16+cl", torch.device("cpu")) == bench.Options(True, True, False, False)


def test_profile_prints_the_busiest_operators(capsys):
    code = bench.main([*TINY, "--warmup", "0", "--variants", "fp32", "--device", "cpu", "--profile"])
    assert code == 0
    out = capsys.readouterr().out
    assert "unet fp32: 1 steps" in out and "aten::" in out and "Self CPU" in out
