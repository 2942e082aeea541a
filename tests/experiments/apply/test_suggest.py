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
def trained_checkpoint(tmp_path_factory):
    """DilatedNet trained briefly on synthetic EBC cross-sections (seeds 0-15): the 'training set'.

    EBC, not Super, is the training kind because this small net segments synthetic EBC confidently
    after a few steps, while synthetic Super (low contrast, tiny tertiary) leaves it unsure everywhere,
    which would hide the unfamiliarity this test is about.
    """
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = DilatedNet()
    images, masks = batch(make_ebc, range(16))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-2)
    for _ in range(40):
        pick = torch.randint(0, 16, (8,))
        loss = nn.functional.cross_entropy(net(images[pick]), masks[pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    path = tmp_path_factory.mktemp("suggest") / "ebc.ckpt"
    return write_checkpoint(
        path, net.eval(), "dilated", ["background", "oxide", "crack"], **FIT_PREPROCESSING
    )


@pytest.fixture
def unlabelled(tmp_path, monkeypatch, trained_checkpoint):
    """Six new EBC cross-sections, two Super micrographs (an unseen kind) and a near-copy of the first Super."""
    monkeypatch.setitem(NETS, "dilated", DilatedNet)
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for seed in range(100, 106):
        Image.fromarray(make_ebc(np.random.default_rng(seed), SIZE)[0]).save(folder / f"ebc_{seed}.png")
    for seed in (100, 101):
        Image.fromarray(make_super(np.random.default_rng(seed), SIZE)[0]).save(folder / f"super_{seed}.png")
    copy = make_super(np.random.default_rng(100), SIZE)[0].astype(np.int16)
    copy += np.random.default_rng(7).integers(-3, 4, copy.shape, dtype=np.int16)
    Image.fromarray(copy.clip(0, 255).astype(np.uint8)).save(folder / "super_100_copy.png")
    return folder


def ranking(path):
    with path.open() as handle:
        return [row["image"] for row in csv.DictReader(handle)]


def test_unseen_kind_first_and_near_copies_apart(tmp_path, unlabelled, trained_checkpoint, capsys):
    out = tmp_path / "ranked"
    assert (
        suggest.main(
            [
                "--ckpt",
                str(trained_checkpoint),
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
    assert "super_101.png" in first_two and len(first_two & {"super_100.png", "super_100_copy.png"}) == 1, (
        ranked
    )
    assert ranked[2].startswith("ebc_"), ranked  # the near-copy waits although it scores as high
    printed = capsys.readouterr().out
    assert "by uncertainty and unfamiliarity" in printed and printed.index("super_101.png") < printed.index(
        "wrote"
    )
    sheet = Image.open(out / "suggestions.png")
    assert sheet.size == (2 * suggest.SHEET_TILE, 3 * (suggest.SHEET_TILE + 22))

    again = ["--ckpt", str(trained_checkpoint), "--input", str(unlabelled), "--output", str(out)]
    assert suggest.main(again) == 2  # an earlier ranking is never replaced silently
    assert "holds an earlier ranking" in capsys.readouterr().err

    plain = tmp_path / "no_diversity"
    assert suggest.main([*again[:4], "--n", "3", "--output", str(plain), "--diversity", "0", "--quiet"]) == 0
    assert {"super_100.png", "super_100_copy.png"} <= set(ranking(plain / "suggestions.csv")[:3])


def test_uncertainty_is_normalised_entropy():
    certain = torch.tensor([[[20.0]], [[0.0]], [[0.0]]])
    even = torch.zeros(3, 1, 1)
    assert normalised_entropy(certain).item() == pytest.approx(0.0, abs=1e-6)
    assert normalised_entropy(even).item() == pytest.approx(1.0)
    two = torch.tensor([[[0.0]], [[0.0]], [[-1e4]]])  # two of three classes equally likely
    assert normalised_entropy(two).item() == pytest.approx(np.log(2) / np.log(3), rel=1e-5)
    assert normalised_entropy(torch.zeros(2, 3, 4, 5), dim=1).shape == (2, 4, 5)


def test_bad_inputs_are_one_line(tmp_path, trained_checkpoint, unlabelled, capsys):
    assert suggest.main(["--ckpt", str(trained_checkpoint), "--input", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert suggest.main(["--ckpt", str(trained_checkpoint), "--input", str(unlabelled), "--n", "0"]) == 2
    assert "--n 0" in capsys.readouterr().err
    (unlabelled / "broken.tif").write_bytes(b"not a tiff")
    out = tmp_path / "with_broken"
    assert (
        suggest.main(
            ["--ckpt", str(trained_checkpoint), "--input", str(unlabelled), "--output", str(out), "--quiet"]
        )
        == 1
    )
    assert "FAILED" in capsys.readouterr().err and len(ranking(out / "suggestions.csv")) == 9
