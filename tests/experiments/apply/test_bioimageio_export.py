"""export --format bioimageio: packages that bioimageio.spec validates and bioimageio.core's model test passes,
whose prediction of a real Super1 image equals predict's mask."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.apply import export as export_cmd
from lightning_modules.nets import NETS
from lightning_modules.nets.packaged import PackagedSegmenter, size_divisor
from tests.experiments.stand_in import FIT_PREPROCESSING, write_checkpoint

pytest.importorskip("bioimageio.core")

#: real networks made small: the same code paths, a light encoder, so each package is ~30 MB
SMALL = {
    "unet": {"encoder_name": "mobilenet_v2", "decoder_channels": [32, 16, 16, 16, 16]},
    "cs_unet": {
        "encoder_name": "mobilenet_v2",
        "depth": [1, 1, 1, 1],
        "embed_dim": 24,
        "num_heads": [1, 2, 2, 4],
    },
}
NAMES = ["matrix", "secondary", "tertiary"]


@pytest.fixture(autouse=True)
def bioimageio_cache(tmp_path, monkeypatch):
    """bioimageio's download cache in tmp: nothing is read from or written to the user's cache."""
    from bioimageio.spec import settings

    monkeypatch.setattr(settings, "cache_path", tmp_path / "bioimageio-cache")
    torch.set_num_threads(1)


def small_checkpoint(folder, name: str, **preprocessing):
    torch.manual_seed(0)
    net = NETS[name](num_classes=3, **SMALL[name]).eval()
    return write_checkpoint(
        folder / f"{name}.ckpt", net, name, NAMES, SMALL[name], **(preprocessing or FIT_PREPROCESSING)
    )


@pytest.mark.parametrize("name", sorted(SMALL))
def test_size_divisor_inputs_need_no_padding(name):
    net = NETS[name](num_classes=3, **SMALL[name]).eval()
    divisor = size_divisor(net)
    assert divisor == 32
    with torch.inference_mode():  # a multiple runs whole; the packaged head gives probabilities/labels
        packaged = PackagedSegmenter(name, 3, SMALL[name], "probabilities").eval()
        packaged.net.load_state_dict(net.state_dict())
        x = torch.randn(1, 3, 2 * divisor, 3 * divisor)
        probabilities = packaged(x)
        assert torch.allclose(probabilities.sum(1), torch.ones(1, 2 * divisor, 3 * divisor), atol=1e-5)
        packaged.output = "labels"
        assert torch.equal(packaged(x)[:, 0], net(x).argmax(1))


def test_packaged_state_dict_has_the_checkpoint_prefix():
    """The package's state dict loads into `PackagedSegmenter(**kwargs)` with the Lightning `net.` keys."""
    packaged = PackagedSegmenter("unet", 3, SMALL["unet"])
    assert all(k.startswith("net.") for k in packaged.state_dict())
    with pytest.raises(ValueError, match="output must be one of probabilities, labels"):
        PackagedSegmenter("unet", 3, SMALL["unet"], "logits")


def test_bad_output_names_fail_in_one_line(tmp_path, capsys):
    ckpt = tmp_path / "any.ckpt"
    ckpt.touch()
    assert (
        export_cmd.main(["--ckpt", str(ckpt), "--format", "bioimageio", "--output", str(tmp_path / "m.onnx")])
        == 2
    )
    assert "a bioimage.io package is a .zip file" in capsys.readouterr().err
    (tmp_path / "m.zip").write_text("an earlier package")
    assert (
        export_cmd.main(["--ckpt", str(ckpt), "--format", "bioimageio", "--output", str(tmp_path / "m.zip")])
        == 2
    )
    assert "exists; choose another --output or pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "m.zip").read_text() == "an earlier package"


def test_a_classifier_checkpoint_is_refused(tmp_path, capsys):
    kwargs = {"depth": [1, 1, 1, 1], "embed_dim": 24, "num_heads": [1, 2, 2, 4]}
    net = NETS["swin_classifier"](num_classes=10, **kwargs)
    ckpt = write_checkpoint(
        tmp_path / "microlite.ckpt", net, "swin_classifier", [f"c{i}" for i in range(10)], kwargs
    )
    out = tmp_path / "model.zip"
    assert export_cmd.main(["--ckpt", str(ckpt), "--format", "bioimageio", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a segmentation checkpoint" in err and not out.exists()


@pytest.mark.slow  # each export traces, writes ~30 MB and runs bioimageio.core's test of 3 weight formats
@pytest.mark.parametrize(("name", "kind"), [("unet", "probabilities"), ("cs_unet", "labels")])
def test_package_validates_and_passes_the_model_test(tmp_path, name, kind, capsys):
    from bioimageio.spec import load_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    ckpt = small_checkpoint(tmp_path, name, intensity="percentile", scale=1.0, pixel_size_nm=4.2)
    (tmp_path / "results.json").write_text('{"dataset": "super1", "metrics": {"test": {"iou": 0.875}}}')
    out = tmp_path / f"{name}.zip"
    args = ["--ckpt", str(ckpt), "--format", "bioimageio", "--output", str(out), "--size", "64"]
    assert export_cmd.main([*args, "--output-kind", kind, "--author", "A. Tester"]) == 0
    printed = capsys.readouterr().out
    assert "bioimageio.spec validation: valid-format" in printed
    assert "model test: passed for torchscript, onnx, pytorch_state_dict" in printed
    assert "input sizes {min: 32, step: 32}" in printed

    descr = load_description(out)  # validated again from the zip, as the model zoo would
    assert isinstance(descr, ModelDescr), descr.validation_summary
    assert [str(c.doi) for c in descr.cite] == ["10.48550/arXiv.2308.13917", "10.1038/s41524-022-00878-5"]
    space = descr.inputs[0].axes[2]
    assert (space.size.min, space.size.step, space.unit, space.scale) == (32, 32, "nanometer", 4.2)
    channels = [str(c) for c in descr.outputs[0].axes[1].channel_names]
    assert channels == (NAMES if kind == "probabilities" else ["label"])
    assert set(descr.weights.model_fields_set) >= {"torchscript", "onnx", "pytorch_state_dict"}
    with zipfile.ZipFile(out) as package:
        readme = package.read("README.md").decode()
        cover = Image.open(package.open("cover.png"))
    assert "| 2 | tertiary | (255, 0, 0) |" in readme and "| test | iou | 0.875 |" in readme
    assert "`percentile`" in readme and "4.2 nm" in readme
    assert cover.size == (128, 64)  # test image | overlay


@pytest.mark.slow
@pytest.mark.real_data
def test_package_prediction_of_super1_equals_predicts_mask(tmp_path, nasa_root):
    from bioimageio.core import create_prediction_pipeline, predict
    from bioimageio.spec import load_description

    from experiments.apply import predict as predict_cmd

    image_path = sorted((nasa_root / "Super1" / "test").glob("*.tif"))[0]
    ckpt = small_checkpoint(tmp_path, "unet")
    out = tmp_path / "unet.zip"
    args = ["--ckpt", str(ckpt), "--format", "bioimageio", "--output", str(out), "--sample", str(image_path)]
    assert export_cmd.main([*args, "--output-kind", "labels", "--no-test"]) == 0
    assert (
        predict_cmd.main(
            ["--ckpt", str(ckpt), "--input", str(image_path), "--output", str(tmp_path / "p"), "--quiet"]
        )
        == 0
    )
    expected = np.asarray(Image.open(tmp_path / "p" / f"{image_path.stem}_mask.png"))

    from datamodules.io import read_micrograph

    image = read_micrograph(image_path, "percentile").image  # Super1 is 8-bit: the rule leaves it as it is
    model = load_description(out)
    tensor = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    for weights in ("torchscript", "onnx", "pytorch_state_dict"):
        sample = predict(model=create_prediction_pipeline(model, weight_format=weights), inputs=tensor)
        labels = sample.members["labels"].data.values[0, 0]
        assert labels.shape == expected.shape == (512, 512)
        assert np.array_equal(labels, expected), weights
