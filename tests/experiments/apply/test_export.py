"""export: ONNX with dynamic shapes, metadata, and onnxruntime parity (< 1e-4 on logits)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from experiments.apply import export as export_cmd
from lightning_modules.checkpoint import load_segmenter
from lightning_modules.nets import NETS
from tests.experiments.stand_in import brightness_ckpt, write_checkpoint  # noqa: F401  (fixture)


def assert_onnx_parity(ckpt, onnx_path, shapes) -> None:
    net, _ = load_segmenter(ckpt)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for shape in shapes:
        image = torch.randn(*shape)
        with torch.inference_mode():
            expected = net(image).numpy()
        got = session.run(["logits"], {"image": image.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4, shape


@pytest.mark.parametrize("exporter", ["torchscript", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_export_dynamic_onnx_with_metadata(tmp_path, brightness_ckpt, capsys, exporter):  # noqa: F811
    out = tmp_path / "net.onnx"
    assert (
        export_cmd.main(
            [
                "--ckpt",
                str(brightness_ckpt),
                "--format",
                "onnx",
                "--output",
                str(out),
                "--size",
                "64",
                "--exporter",
                exporter,
            ]
        )
        == 0
    )
    assert "input shape ['batch', 3, 'height', 'width'] (dynamic)" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["microseg.class_names"]) == ["matrix", "secondary", "tertiary"]
    assert json.loads(props["microseg.mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(props["microseg.input_shape"]) == ["batch", 3, "height", "width"]
    assert props["microseg.net"] == "brightness"
    assert_onnx_parity(brightness_ckpt, out, [(1, 3, 64, 64), (3, 3, 50, 97)])


def test_export_static_states_its_fixed_size(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    out = tmp_path / "fixed.onnx"
    assert (
        export_cmd.main(["--ckpt", str(brightness_ckpt), "--output", str(out), "--size", "48", "--static"])
        == 0
    )
    assert "input shape [1, 3, 48, 48] (FIXED height x width)" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["microseg.input_shape"]) == [1, 3, 48, 48]
    assert_onnx_parity(brightness_ckpt, out, [(1, 3, 48, 48)])


def test_export_rejects_a_classifier_checkpoint(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    ckpt = tmp_path / "classifier.ckpt"
    torch.save({"hyper_parameters": {"num_classes": 10}, "state_dict": {}}, ckpt)
    assert export_cmd.main(["--ckpt", str(ckpt)]) == 2
    assert "not a microseg segmentation checkpoint" in capsys.readouterr().err


def test_export_refuses_a_real_classification_checkpoint(tmp_path, capsys):
    """Corpus case: a MicroLite classifier checkpoint (same basic keys as a segmenter's) became an ONNX 'segmenter'."""
    kwargs = {"depth": [1, 1, 1, 1], "embed_dim": 24, "num_heads": [1, 2, 2, 4]}
    net = NETS["swin_classifier"](num_classes=10, **kwargs)
    ckpt = write_checkpoint(
        tmp_path / "microlite.ckpt", net, "swin_classifier", [f"c{i}" for i in range(10)], kwargs
    )
    assert export_cmd.main(["--ckpt", str(ckpt), "--output", str(tmp_path / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert (
        "microlite.ckpt" in err
        and "returns (1, 10) for a 64x64 image" in err
        and "not a segmentation checkpoint" in err
    )
    assert not (tmp_path / "model.onnx").exists()


def test_onnx_metadata_carries_the_training_preprocessing(tmp_path, monkeypatch):
    from tests.experiments.stand_in import BrightnessNet

    monkeypatch.setitem(NETS, "brightness", BrightnessNet)
    preprocessing = {"intensity": "bit_depth", "scale": 0.5, "pixel_size_nm": 8.4}
    ckpt = write_checkpoint(
        tmp_path / "b.ckpt", BrightnessNet(3), "brightness", ["a", "b", "c"], **preprocessing
    )
    out = tmp_path / "b.onnx"
    assert export_cmd.main(["--ckpt", str(ckpt), "--output", str(out), "--size", "32", "--static"]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["microseg.intensity"] == "bit_depth"
    assert json.loads(props["microseg.scale"]) == 0.5 and json.loads(props["microseg.pixel_size_nm"]) == 8.4


#: the real networks, made small (same code paths, fewer blocks) so that export stays in budget
REAL_NETS = {
    "unet": {"encoder_name": "resnet18", "decoder_channels": [32, 16, 16, 16, 16]},
    "cs_unet": {
        "encoder_name": "resnet18",
        "depth": [1, 1, 1, 1],
        "embed_dim": 24,
        "num_heads": [1, 2, 2, 4],
    },
}


@pytest.mark.slow  # 5-30 s each on a shared 2-core machine
@pytest.mark.parametrize("name", sorted(REAL_NETS))
def test_real_network_onnx_parity(tmp_path, name, capsys):
    torch.manual_seed(0)
    kwargs = REAL_NETS[name]
    net = NETS[name](num_classes=3, **kwargs).eval()
    ckpt = write_checkpoint(tmp_path / f"{name}.ckpt", net, name, ["matrix", "secondary", "tertiary"], kwargs)
    out = tmp_path / f"{name}.onnx"
    assert export_cmd.main(["--ckpt", str(ckpt), "--output", str(out), "--size", "64"]) == 0
    shape = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["microseg.input_shape"])
    printed = capsys.readouterr().out
    probes = {
        "dynamic": [(1, 3, 64, 64), (2, 3, 70, 101)],  # any size
        "batch": [(1, 3, 64, 64), (2, 3, 64, 64)],  # height and width fixed, which the output says
        "fixed": [(1, 3, 64, 64)],
    }
    kind = "dynamic" if shape[2] == "height" else "batch" if shape[0] == "batch" else "fixed"
    assert f"input shape {shape}" in printed and ("FIXED" in printed) == (kind != "dynamic")
    assert_onnx_parity(ckpt, out, probes[kind])
