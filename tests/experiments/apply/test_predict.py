"""predict: lab image formats, seamless sliding windows, end-to-end on a large 16-bit TIFF, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from experiments import cli
from experiments.apply import predict as predict_cmd
from experiments.apply.imageio import read_micrograph
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


@pytest.mark.parametrize(
    ("name", "array"),
    [
        ("grey8.png", np.tile(np.arange(64, dtype=np.uint8), (32, 1))),
        ("rgb8.jpg", np.full((32, 64, 3), 128, np.uint8)),
        ("grey16.tif", np.tile(np.arange(64, dtype=np.uint16) * 1000, (32, 1))),
        ("rgb16.tif", np.full((32, 64, 3), 40000, np.uint16)),
        ("rgba8.png", np.full((32, 64, 4), 200, np.uint8)),
        ("float.tif", np.linspace(0, 7, 32 * 64, dtype=np.float32).reshape(32, 64)),
    ],
)
def test_read_lab_formats(tmp_path, name, array):
    path = tmp_path / name
    if path.suffix == ".tif":
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    image = read_micrograph(path)
    assert image.shape == (32, 64, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() <= image.max() <= 1.0


def test_sixteen_bit_scaling(tmp_path):
    path = tmp_path / "twelve_bit.tif"
    tifffile.imwrite(path, np.tile(np.arange(4096, dtype=np.uint16), (4, 1)))
    assert read_micrograph(path).max() == 1.0  # percentile: a 12-bit range fills 0..1
    assert read_micrograph(path, scale="full").max() == pytest.approx(4095 / 65535)


def test_multipage_tiff_uses_first_page_with_warning(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.stack([np.zeros((16, 16), np.uint8), np.full((16, 16), 255, np.uint8)]))
    with pytest.warns(UserWarning, match="multi-page TIFF with 2 pages"):
        image = read_micrograph(path)
    assert image.max() == 0.0


def test_unreadable_and_unsupported_images_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"this is not a TIFF")
    with pytest.raises(ValueError, match="broken.tif is not a readable image"):
        read_micrograph(broken)
    five_channels = tmp_path / "spectral.tif"
    tifffile.imwrite(
        five_channels, np.zeros((16, 16, 5), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    with pytest.raises(ValueError, match="spectral.tif: unsupported image layout"):
        read_micrograph(five_channels)
    complex_tif = tmp_path / "fft.tif"
    tifffile.imwrite(complex_tif, np.zeros((16, 16), np.complex64))
    with pytest.raises(ValueError, match="fft.tif: unsupported pixel type complex64"):
        read_micrograph(complex_tif)


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
