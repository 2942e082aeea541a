"""The fast path (bf16-mixed, channels_last, compile) is chosen per device and leaves predictions unchanged."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch import nn

from callbacks import fast_path
from callbacks.fast_path import (
    FastPath,
    compile_pays_off,
    compile_with_fallback,
    compiles_long_runs,
    default_precision,
)
from datamodules import Synthetic
from experiments import cli
from experiments.cli import cli_main
from lightning_modules import UNet


def _trainer(**kwargs) -> L.Trainer:
    options = dict(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False,
    )  # fmt: skip
    return L.Trainer(**(options | kwargs))


@pytest.fixture(scope="module")
def trained() -> tuple[UNet, Synthetic]:
    """A U-Net-ResNet18 trained for a few CPU seconds on synthetic micrographs (confident predictions)."""
    torch.set_num_threads(1)
    L.seed_everything(0)
    data = Synthetic(size=64, num_train=8, num_val=4, num_test=1, batch_size=4, num_workers=0)
    model = UNet(
        encoder_name="resnet18", num_classes=data.num_classes, class_names=data.class_names,
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
    )  # fmt: skip
    _trainer(max_epochs=16, limit_val_batches=0).fit(model, data)
    return model, data


def test_default_precision_is_bf16_where_bf16_is_native(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(fast_path, "cpu_has_native_bf16", lambda: False)
    assert default_precision("auto") == "32-true"  # emulated bf16 is slower than fp32
    monkeypatch.setattr(fast_path, "cpu_has_native_bf16", lambda: True)
    assert default_precision("auto") == "bf16-mixed"  # AVX512-BF16 / AMX: ~1.6x a CS-UNet step
    assert default_precision("cpu") == "bf16-mixed"
    assert default_precision("mps") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(fast_path, "cpu_has_native_bf16", lambda: False)
    assert default_precision("auto") == "bf16-mixed"
    assert default_precision("gpu") == "bf16-mixed"
    assert default_precision("cpu") == "32-true"  # training on the CPU of a GPU machine without bf16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(fast_path, "cpu_has_native_bf16", lambda: True)
    assert default_precision("auto") == "32-true"  # no fp16 guesswork: it would need loss scaling


def test_native_bf16_is_read_from_torchs_cpu_probes(monkeypatch) -> None:
    for avx512_bf16, amx, expected in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert fast_path.cpu_has_native_bf16() is expected


def test_cli_fills_only_an_unset_precision(tmp_path, monkeypatch) -> None:
    base = ["--config", "demo.yaml", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    built = cli_main(base, run=False)
    assert built.trainer.precision == default_precision("auto")
    assert any(isinstance(c, FastPath) for c in built.trainer.callbacks)  # defaults.yaml applies
    monkeypatch.setattr(cli, "default_precision", lambda accelerator: "bf16-mixed")  # as on a GPU
    assert cli_main(base, run=False).trainer.precision == "bf16-mixed"
    chosen = cli_main([*base, "--trainer.precision=32-true"], run=False)
    assert chosen.trainer.precision == "32-true"  # an explicit choice is kept


def test_channels_last_is_applied_on_request_and_left_alone_on_cpu(trained) -> None:
    model, data = trained
    for option, expected in ((None, False), (True, True)):
        copy_ = copy.deepcopy(model)
        _trainer(callbacks=[FastPath(channels_last=option)]).validate(copy_, data, verbose=False)
        conv = copy_.net.encoder.conv1.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) is expected
        assert conv.is_contiguous() is not expected


def test_fast_path_predicts_what_fp32_predicts(trained) -> None:
    """bf16-mixed + channels_last (the GPU default) against fp32 eager, through the Trainer, on CPU.

    bf16 keeps 8 bits of mantissa, so only pixels whose two best logits are nearly tied may flip.
    """
    model, data = trained
    fp32 = _trainer()
    fast = _trainer(precision="bf16-mixed", callbacks=[FastPath(channels_last=True)])
    fast_model = copy.deepcopy(model)
    reference = torch.cat(fp32.predict(model, data.val_dataloader()))
    predicted = torch.cat(fast.predict(fast_model, data.val_dataloader()))
    assert fast_model.net.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    agreement = (reference == predicted).float().mean().item()
    print(f"fp32 vs bf16-mixed+channels_last: {agreement:.4%} of pixels agree")
    assert agreement >= 0.99, f"{agreement:.4f} of pixels agree"
    metrics_fp32 = fp32.validate(model, data, verbose=False)[0]
    iou_fp32, iou_fast = metrics_fp32["val/iou"], fast.validate(fast_model, data, verbose=False)[0]["val/iou"]
    # the net has learnt something: the comparison is not between two random nets (at 64 px the
    # synthetic tertiary discs are sub-pixel, so the secondary class is the one to learn)
    assert metrics_fp32["val/iou_secondary"] > 0.3
    print(f"val IoU fp32 {iou_fp32:.4f}, fast path {iou_fast:.4f}")
    assert abs(iou_fp32 - iou_fast) <= 0.005


def _net_and_input() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
    return net, torch.randn(2, 3, 16, 16)


def test_compiled_net_matches_eager() -> None:
    net, x = _net_and_input()
    expected = net(x)
    assert compile_with_fallback(net, backend="aot_eager")
    torch.testing.assert_close(net(x), expected)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # checkpoints unchanged


def test_a_failing_compiler_falls_back_to_eager() -> None:
    calls = []

    def broken_backend(graph, example_inputs):
        calls.append(graph)
        raise RuntimeError("no C++ compiler here")

    net, x = _net_and_input()
    expected = net(x)
    torch._dynamo.reset()
    # config.patch, not monkeypatch: monkeypatch's undo leaves dynamo's config without the key (torch 2.14)
    with torch._dynamo.config.patch(suppress_errors=False):  # compile_with_fallback switches it on
        assert compile_with_fallback(net, backend=broken_backend)
        torch.testing.assert_close(net(x), expected)  # ran eagerly (dynamo logs the error as a warning)
    assert calls, "the compiler was never tried"
    torch._dynamo.reset()


def test_compile_unavailable_is_a_warning_not_an_error(monkeypatch) -> None:
    net, x = _net_and_input()

    def unsupported(self, *args, **kwargs):
        raise RuntimeError("torch.compile is not supported on Python 3.99")

    monkeypatch.setattr(nn.Module, "compile", unsupported)
    with pytest.warns(UserWarning, match="not supported on Python 3.99"):
        assert not compile_with_fallback(net)
    assert net(x).shape == (2, 3, 16, 16)


def test_compile_pays_off_only_when_the_run_wins_the_compile_time_back() -> None:
    # 1.2x faster saves 1/6 of each step: 360 steps of 1 s save exactly the 60 s of compiling
    assert not compile_pays_off(360, 1.0, compile_seconds=60, gain=1.2)
    assert compile_pays_off(361, 1.0, compile_seconds=60, gain=1.2)
    assert compile_pays_off(float("inf"), 0.01, compile_seconds=60, gain=1.2)
    assert not compile_pays_off(10**6, 1.0, compile_seconds=60, gain=1.0)  # nothing to win


class _StopAfterTheDecision(L.Callback):
    """Ends the run one step after FastPath has decided (so one step runs the way it decided)."""

    def __init__(self, fast_path: FastPath) -> None:
        self.fast_path, self.steps_after = fast_path, 0

    def on_train_batch_end(self, trainer, *args) -> None:
        self.steps_after += self.fast_path.decided
        trainer.should_stop = trainer.should_stop or self.steps_after > 1


def _auto_fit(fast_path: FastPath, **trainer_kwargs) -> UNet:
    """A tiny U-Net trained one batch per epoch until one step after FastPath has decided (after 3 steps)."""
    L.seed_everything(0)
    data = Synthetic(size=64, num_train=2, num_val=2, num_test=1, batch_size=2, num_workers=0)
    model = UNet(encoder_name="resnet18", num_classes=data.num_classes, class_names=data.class_names)
    callbacks = [fast_path, _StopAfterTheDecision(fast_path)]
    _trainer(callbacks=callbacks, limit_val_batches=0, **trainer_kwargs).fit(model, data)
    assert fast_path.decided and len(fast_path._step_seconds) == 3
    return model


def _recording_backend(graphs: list):
    def backend(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    return backend


def test_a_short_run_stays_eager(caplog) -> None:
    model = _auto_fit(FastPath(timed_steps=2), max_steps=5)  # fast_dev_run-sized
    assert not model.net._compiled_call_impl
    assert "staying eager" in caplog.text


def test_a_time_budget_keeps_a_long_run_eager() -> None:
    """At most 20 s of training left can save at most 20 s / 6 < 5 s, however fast the machine."""
    fast_path = FastPath(timed_steps=2, compile_seconds=5.0)
    model = _auto_fit(fast_path, max_epochs=100_000, max_time={"seconds": 20})
    assert not fast_path.compiled and not model.net._compiled_call_impl


def test_a_long_run_compiles_training_and_evaluates_eagerly() -> None:
    graphs: list = []
    fast_path = FastPath(timed_steps=2, compile_seconds=5.0, compile_backend=_recording_backend(graphs))
    model = _auto_fit(fast_path, max_epochs=100_000)  # 100 000 steps: any step time wins 5 s back
    assert fast_path.compiled and model.net._compiled_call_impl
    compiled = len(graphs)
    assert compiled >= 1, "the steps after the decision ran compiled"
    data = Synthetic(size=96, num_train=2, num_val=2, num_test=1, batch_size=2, num_workers=0)
    _trainer(callbacks=[fast_path]).validate(model, data, verbose=False)  # a new size, eval mode
    assert len(graphs) == compiled, "validation was compiled"
    model.net.train()(torch.randn(1, 3, 64, 64))
    assert len(graphs) > compiled, "compilation stayed off after validation"


def test_a_long_bf16_cpu_run_stays_eager() -> None:
    """Compilation's gain and cost were measured for fp32 on CPU only: a bf16-mixed run never times it."""
    fast_path = FastPath(timed_steps=2, compile_seconds=5.0)
    model = UNet(encoder_name="resnet18", num_classes=3, class_names=["a", "b", "c"])
    _trainer(callbacks=[fast_path], precision="bf16-mixed", max_steps=1).fit(
        model, Synthetic(size=64, num_train=2, num_val=2, num_test=1, batch_size=2, num_workers=0)
    )
    assert fast_path.decided and not fast_path.compiled and not fast_path._step_seconds
    assert compiles_long_runs(torch.device("cpu")) and not compiles_long_runs(
        torch.device("cpu"), "bf16-mixed"
    )


@pytest.mark.parametrize("config", ["demo.yaml", pytest.param("microlite.yaml", marks=pytest.mark.real_data)])
def test_one_flag_turns_compile_on(tmp_path, config, request) -> None:
    """FastPath is the last callback of the configs, so `--trainer.callbacks.compile=true` reaches it."""
    args = ["--config", config, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    if config == "microlite.yaml":
        args.append(f"--data.init_args.root={request.getfixturevalue('microlite_root')}")
    built = cli_main([*args, "--trainer.callbacks.compile=true"], run=False)
    (fast_path,) = [c for c in built.trainer.callbacks if isinstance(c, FastPath)]
    assert fast_path.compile
