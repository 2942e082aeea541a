"""predict: seamless sliding windows, end-to-end on a large 16-bit TIFF, reports, outputs that are never
lost, and bad input (each a one-line error before any image where it can be)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from experiments import cli
from experiments.apply import predict as predict_cmd
from lightning_modules.inference import sliding_window_logits
from lightning_modules.nets import NETS
from tests.experiments.stand_in import brightness_ckpt, write_checkpoint  # noqa: F401  (fixture)


class WideContextNet(torch.nn.Module):
    """Random 4-layer conv net: a 9 px receptive field, so windows that cut context would show seams."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        layers = [torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh()]
        for _ in range(2):
            layers += [torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.Tanh()]
        self.body = torch.nn.Sequential(*layers, torch.nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return self.body(x)


def test_sliding_window_matches_whole_image():
    torch.set_num_threads(1)
    net = WideContextNet().eval()
    image = torch.randn(3, 150, 230)
    with torch.inference_mode():
        whole = net(image[None])[0]
    tiled = sliding_window_logits(net, image, 3, tile=64, overlap=0.5, batch_size=3)
    assert tiled.shape == whole.shape
    # random logits have near-ties, so a few argmax flips are allowed; the logits themselves agree
    assert (tiled.argmax(0) == whole.argmax(0)).float().mean() > 0.999
    assert (tiled - whole).abs().max() < 0.01 * whole.abs().max()
    seams = sliding_window_logits(net, image, 3, tile=64, overlap=0.0)  # the same windows, no blending
    assert (seams - whole).abs().max() > 10 * (tiled - whole).abs().max()
    untouched = sliding_window_logits(net, image, 3, tile=512)  # one window: exactly the whole image
    assert torch.allclose(untouched, whole, atol=1e-5)


def test_blend_weights_add_up_without_seams():
    """A network that outputs a constant gives that constant everywhere, whatever the window grid."""

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 2, *x.shape[2:])

    logits = sliding_window_logits(Constant(), torch.zeros(3, 100, 333), 2, tile=48, overlap=0.3)
    assert torch.allclose(logits, torch.ones_like(logits))


def synthetic_micrograph(height: int, width: int, discs: int) -> np.ndarray:
    """A 16-bit image: dark matrix, ``discs`` mid-grey particles (radius 30) with a bright core (radius 12)."""
    rng = np.random.default_rng(0)
    image = np.full((height, width), 0.2)
    rows, cols = np.mgrid[:height, :width]
    centres = [(r, c) for r in range(80, height - 60, 200) for c in range(80, width - 60, 200)][:discs]
    for r, c in centres:
        image[(rows - r) ** 2 + (cols - c) ** 2 <= 30**2] = 0.7
        image[(rows - r) ** 2 + (cols - c) ** 2 <= 12**2] = 1.0
    image += rng.normal(0, 0.01, image.shape)
    return (image.clip(0, 1) * 60000).astype(np.uint16)


def test_predict_end_to_end_on_a_large_16bit_tiff(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    tifffile.imwrite(tmp_path / "big.tif", synthetic_micrograph(1024, 1536, 25))
    out = tmp_path / "out"
    argv = [
        "predict",
        "--ckpt",
        str(brightness_ckpt),
        "--input",
        str(tmp_path / "big.tif"),
        "--output",
        str(out),
    ]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--pixel-size", "4.2nm", "--batch-size", "6", "--device", "cpu"])
    assert exit_info.value.code == 0
    mask = np.asarray(Image.open(out / "big_mask.png"))
    assert mask.shape == (1024, 1536) and set(np.unique(mask)) == {0, 1, 2}
    assert Image.open(out / "big_overlay.png").size == (1536, 1024)
    summary = json.loads((out / "big_measurements.json").read_text())
    assert summary["particles"]["secondary"]["count"] == 25
    assert summary["particles"]["tertiary"]["count"] == 25
    shell = summary["particles"]["secondary"]["equivalent_diameter_nm"]["mean"]
    assert shell == pytest.approx(2 * (30**2 - 12**2) ** 0.5 * 4.2, rel=0.03)
    core = summary["particles"]["tertiary"]["equivalent_diameter_nm"]["mean"]
    assert core == pytest.approx(24 * 4.2, rel=0.1)  # the stand-in's threshold sits off the core's edge
    for name in ("big_particles.csv", "big_size_secondary.png", "summary.csv", "classes.json"):
        assert (out / name).is_file(), name


def test_folder_run_survives_bad_files_and_lists_them(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((40, 50), 180, np.uint8)).save(folder / "good.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    tifffile.imwrite(folder / "spectral.tif", np.zeros((16, 16, 5), np.uint8), photometric="minisblack")
    out = tmp_path / "out"
    argv = ["--ckpt", str(brightness_ckpt), "--input", str(folder), "--output", str(out), "--quiet"]
    assert predict_cmd.main(argv) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "corrupt.jpg" in err and "spectral.tif" in err
    assert (out / "good_mask.png").is_file() and (out / "good_overlay.png").is_file()


def test_inputs_sharing_a_stem_get_outputs_of_their_own(tmp_path, brightness_ckpt):  # noqa: F811
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((40, 50), 200, np.uint8)).save(folder / "a.png")  # bright
    tifffile.imwrite(folder / "a.tif", np.full((40, 50), 10, np.uint8))  # dark: another mask
    Image.fromarray(np.full((30, 30), 90, np.uint8)).save(folder / "b.png")
    out = tmp_path / "out"
    assert (
        predict_cmd.main(
            ["--ckpt", str(brightness_ckpt), "--input", str(folder), "--output", str(out), "--quiet"]
        )
        == 0
    )
    bright, dark = (np.asarray(Image.open(out / f"a_{ext}_mask.png")) for ext in ("png", "tif"))
    assert not np.array_equal(bright, dark)
    assert (out / "b_mask.png").is_file() and not (out / "a_mask.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"a_png", "a_tif", "b"}


def test_wrong_checkpoint_and_pixel_size_are_clear_errors(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(image)
    classifier = tmp_path / "classifier.ckpt"
    torch.save({"hyper_parameters": {"num_classes": 10}, "state_dict": {}}, classifier)
    base = ["--input", str(image), "--output", str(tmp_path / "out")]
    assert predict_cmd.main(["--ckpt", str(classifier), *base]) == 2
    assert "not a microseg segmentation checkpoint" in capsys.readouterr().err
    assert predict_cmd.main(["--ckpt", str(brightness_ckpt), *base, "--pixel-size", "4.2"]) == 2
    assert "has no unit" in capsys.readouterr().err


def _run(ckpt, image, out, *extra: str) -> int:
    return predict_cmd.main(
        ["--ckpt", str(ckpt), "--input", str(image), "--output", str(out), "--quiet", *extra]
    )


def test_a_classifier_checkpoint_fails_once_before_any_image(tmp_path, capsys):
    """Corpus case: a MicroLite classifier checkpoint (same basic keys) failed per image with a shape error."""
    torch.set_num_threads(1)
    kwargs = {"depth": [1, 1, 1, 1], "embed_dim": 24, "num_heads": [1, 2, 2, 4]}
    names = [f"class{i}" for i in range(10)]
    classifier = NETS["swin_classifier"](num_classes=10, **kwargs)
    ckpt = write_checkpoint(tmp_path / "microlite.ckpt", classifier, "swin_classifier", names, kwargs)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.zeros((20, 20), np.uint8)).save(folder / f"{name}.png")
    assert _run(ckpt, folder, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "microlite.ckpt" in err and "not a segmentation checkpoint" in err
    assert not (tmp_path / "out" / "a_mask.png").exists()


def test_nan_pixels_do_not_turn_the_image_into_matrix(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    """Corpus case: a float TIFF with NaNs gave an all-matrix mask and only `invalid value encountered in cast`."""
    image = np.full((64, 64), 0.1, np.float32)
    image[16:48, 16:48] = 0.6  # secondary
    image[28:36, 28:36] = 1.0  # tertiary
    image[:, :4] = np.nan
    tifffile.imwrite(tmp_path / "stitched.tif", image)
    assert _run(brightness_ckpt, tmp_path / "stitched.tif", tmp_path / "out") == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "stitched_mask.png"))
    assert mask[20, 20] == 1 and mask[32, 32] == 2 and mask[60, 60] == 0
    err = capsys.readouterr().err
    assert "stitched.tif: 256 pixel(s)" in err and "NaN" in err and "invalid value" not in err


def test_output_that_is_a_file_or_unwritable_is_one_clear_line(
    tmp_path,
    brightness_ckpt,  # noqa: F811
    capsys,
    monkeypatch,
):
    """Corpus cases: `--output` naming a file (FileExistsError) and an unwritable folder (PermissionError)."""
    image = tmp_path / "a.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(image)
    a_file = tmp_path / "results.png"
    a_file.write_bytes(b"x")
    assert _run(brightness_ckpt, image, a_file) == 2
    err = capsys.readouterr().err
    assert "results.png is a file; give a folder" in err and "Traceback" not in err
    assert a_file.read_bytes() == b"x"

    def denied(*args, **kwargs):  # chmod does not stop root, so deny the write itself
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(predict_cmd.tempfile, "TemporaryFile", denied)
    assert _run(brightness_ckpt, image, tmp_path / "locked") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: cannot write into {tmp_path / 'locked'} (Permission denied); "
        "choose another --output or fix its permissions"
    )


def test_a_rerun_never_replaces_earlier_outputs_silently(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    image = tmp_path / "a.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(image)
    out = tmp_path / "out"
    assert _run(brightness_ckpt, image, out) == 0
    (out / "a_mask.png").write_bytes(b"corrected by hand")
    assert _run(brightness_ckpt, image, out) == 2
    err = capsys.readouterr().err
    assert "holds outputs of an earlier predict run" in err and "--overwrite" in err
    assert (out / "a_mask.png").read_bytes() == b"corrected by hand"
    assert _run(brightness_ckpt, image, out, "--overwrite") == 0
    assert np.asarray(Image.open(out / "a_mask.png")).shape == (20, 20)


def test_pixel_size_from_the_file_reaches_measurements_and_measure(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    """No --pixel-size: predict reports the file's pixel size and its source; `measure` finds it again."""
    from experiments.apply import measure as measure_cmd

    tifffile.imwrite(
        tmp_path / "sem.tif",
        synthetic_micrograph(400, 400, 4),
        ome=True,
        metadata={"PhysicalSizeX": 4.2, "PhysicalSizeXUnit": "nm"},
    )
    out = tmp_path / "out"
    assert _run(brightness_ckpt, tmp_path / "sem.tif", out) == 0
    printed = capsys.readouterr().out
    assert "sem.tif: 400x400 px, pixel 4.2 nm (OME-XML PhysicalSizeX); not resampled" in printed
    summary = json.loads((out / "sem_measurements.json").read_text())
    assert summary["pixel_size"] == {"value": 4.2, "unit": "nm"}
    assert "equivalent_diameter_nm" in summary["particles"]["secondary"]
    record = json.loads((out / "predictions.json").read_text())["images"]["sem"]
    assert record["pixel_size_source"] == "OME-XML PhysicalSizeX" and record["resample_factor"] == 1.0

    assert measure_cmd.main(["--masks", str(out), "--output", str(tmp_path / "again")]) == 0
    assert "pixel size 4.2 nm (OME-XML PhysicalSizeX, as recorded by predict" in capsys.readouterr().out
    again = json.loads((tmp_path / "again" / "sem_measurements.json").read_text())
    assert (
        again["particles"]["secondary"]["equivalent_diameter_nm"]
        == summary["particles"]["secondary"]["equivalent_diameter_nm"]
    )
    assert (
        measure_cmd.main(["--masks", str(out), "--output", str(tmp_path / "given"), "--pixel-size", "1nm"])
        == 0
    )
    assert "pixel size 1 nm (--pixel-size)" in capsys.readouterr().out


def test_an_explicit_scale_overrides_the_checkpoint_rule_with_a_warning(tmp_path, brightness_ckpt, capsys):  # noqa: F811
    tifffile.imwrite(tmp_path / "a.tif", synthetic_micrograph(200, 200, 1))
    assert _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / "same", "--scale", "percentile") == 0
    assert "overrides" not in capsys.readouterr().err
    assert _run(brightness_ckpt, tmp_path / "a.tif", tmp_path / "other", "--scale", "full") == 0
    assert "--scale full overrides the intensity rule 'percentile'" in capsys.readouterr().err
    assert json.loads((tmp_path / "other" / "predictions.json").read_text())["intensity"] == "full"


@pytest.mark.real_data
def test_predict_with_a_real_unet_on_a_nasa_image(nasa_root, tmp_path):
    """A real (untrained) UNet through overlapping 256 px windows of a real 512² Super1 micrograph."""
    torch.set_num_threads(1)
    names = ["matrix", "secondary", "tertiary"]
    kwargs = {"encoder_name": "resnet18", "decoder_channels": [32, 16, 16, 16, 16]}
    ckpt = write_checkpoint(
        tmp_path / "unet.ckpt", NETS["unet"](num_classes=3, **kwargs), "unet", names, kwargs
    )
    image = nasa_root / "Super1" / "test" / "spot2_0d_0.tif"
    out = tmp_path / "out"
    argv = ["--ckpt", str(ckpt), "--input", str(image), "--output", str(out), "--tile", "256", "--quiet"]
    assert predict_cmd.main([*argv, "--pixel-size", "0.5um"]) == 0
    assert np.asarray(Image.open(out / "spot2_0d_0_mask.png")).shape == (512, 512)
    summary = json.loads((out / "spot2_0d_0_measurements.json").read_text())
    assert sum(summary["area_fraction"].values()) == pytest.approx(1.0)
