"""suggest: unseen kinds of micrograph rank first, near-copies are not proposed together."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from datamodules.synthetic import make_ebc, make_super
from datamodules.transforms import eval_transform
from experiments.apply import suggest
from lightning_modules.inference import normalised_entropy
from lightning_modules.nets import NETS
from tests.experiments.stand_in import FIT_PREPROCESSING, write_checkpoint

SIZE = 48


class DilatedNet(nn.Module):
    """Three dilated conv + BatchNorm blocks: enough context for synthetic Super, and BN statistics."""

    def __init__(self, num_classes: int = 3, width: int = 8) -> None:
        super().__init__()
        layers, channels = [], 3
        for dilation in (1, 2, 4):
            layers += [
                nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            channels = width
        self.body = nn.Sequential(*layers, nn.Conv2d(width, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def batch(make, seeds):
    pairs = [make(np.random.default_rng(s), SIZE) for s in seeds]
    images = torch.stack([eval_transform()(image=img)["image"] for img, _ in pairs])
    return images, torch.stack([torch.as_tensor(m, dtype=torch.long) for _, m in pairs])


@pytest.fixture(scope="module")
def super_checkpoint(tmp_path_factory):
    """DilatedNet trained briefly on synthetic Super micrographs (seeds 0-15): the 'training set'."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = DilatedNet()
    images, masks = batch(make_super, range(16))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-2)
    for _ in range(40):
        pick = torch.randint(0, 16, (8,))
        loss = nn.functional.cross_entropy(net(images[pick]), masks[pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    path = tmp_path_factory.mktemp("suggest") / "super.ckpt"
    return write_checkpoint(
        path, net.eval(), "dilated", ["matrix", "secondary", "tertiary"], **FIT_PREPROCESSING
    )


@pytest.fixture
def unlabelled(tmp_path, monkeypatch, super_checkpoint):
    """Six new Super images, two EBC cross-sections (an unseen kind) and a near-copy of the first EBC."""
    monkeypatch.setitem(NETS, "dilated", DilatedNet)
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for seed in range(100, 106):
        Image.fromarray(make_super(np.random.default_rng(seed), SIZE)[0]).save(folder / f"super_{seed}.png")
    for seed in (100, 101):
        Image.fromarray(make_ebc(np.random.default_rng(seed), SIZE)[0]).save(folder / f"ebc_{seed}.png")
    copy = make_ebc(np.random.default_rng(100), SIZE)[0].astype(np.int16)
    copy += np.random.default_rng(7).integers(-3, 4, copy.shape, dtype=np.int16)
    Image.fromarray(copy.clip(0, 255).astype(np.uint8)).save(folder / "ebc_100_copy.png")
    return folder


def ranking(path):
    with path.open() as handle:
        return [row["image"] for row in csv.DictReader(handle)]


def test_unseen_kind_first_and_near_copies_apart(tmp_path, unlabelled, super_checkpoint, capsys):
    out = tmp_path / "ranked"
    assert (
        suggest.main(
            [
                "--ckpt",
                str(super_checkpoint),
                "--input",
                str(unlabelled),
                "--n",
                "3",
                "--output",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    ranked = ranking(out / "suggestions.csv")
    assert len(ranked) == 9
    first_two = set(ranked[:2])
    assert "ebc_101.png" in first_two and len(first_two & {"ebc_100.png", "ebc_100_copy.png"}) == 1, ranked
    assert ranked[2].startswith("super_"), ranked  # the near-copy waits although it scores as high
    printed = capsys.readouterr().out
    assert "by uncertainty and unfamiliarity" in printed and printed.index("ebc_101.png") < printed.index(
        "wrote"
    )
    sheet = Image.open(out / "suggestions.png")
    assert sheet.size == (2 * suggest.SHEET_TILE, 3 * (suggest.SHEET_TILE + 22))

    again = ["--ckpt", str(super_checkpoint), "--input", str(unlabelled), "--output", str(out)]
    assert suggest.main(again) == 2  # an earlier ranking is never replaced silently
    assert "holds an earlier ranking" in capsys.readouterr().err

    plain = tmp_path / "no_diversity"
    assert suggest.main([*again[:4], "--n", "3", "--output", str(plain), "--diversity", "0", "--quiet"]) == 0
    assert {"ebc_100.png", "ebc_100_copy.png"} <= set(ranking(plain / "suggestions.csv")[:3])


def test_uncertainty_is_normalised_entropy():
    certain = torch.tensor([[[20.0]], [[0.0]], [[0.0]]])
    even = torch.zeros(3, 1, 1)
    assert normalised_entropy(certain).item() == pytest.approx(0.0, abs=1e-6)
    assert normalised_entropy(even).item() == pytest.approx(1.0)
    two = torch.tensor([[[0.0]], [[0.0]], [[-1e4]]])  # two of three classes equally likely
    assert normalised_entropy(two).item() == pytest.approx(np.log(2) / np.log(3), rel=1e-5)
    assert normalised_entropy(torch.zeros(2, 3, 4, 5), dim=1).shape == (2, 4, 5)


def test_bad_inputs_are_one_line(tmp_path, super_checkpoint, unlabelled, capsys):
    assert suggest.main(["--ckpt", str(super_checkpoint), "--input", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert suggest.main(["--ckpt", str(super_checkpoint), "--input", str(unlabelled), "--n", "0"]) == 2
    assert "--n 0" in capsys.readouterr().err
    (unlabelled / "broken.tif").write_bytes(b"not a tiff")
    out = tmp_path / "with_broken"
    assert (
        suggest.main(
            ["--ckpt", str(super_checkpoint), "--input", str(unlabelled), "--output", str(out), "--quiet"]
        )
        == 1
    )
    assert "FAILED" in capsys.readouterr().err and len(ranking(out / "suggestions.csv")) == 9
