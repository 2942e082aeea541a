"""Class kinds (matrix / particles / layer): declared by the data sets, validated with one clear error."""

from __future__ import annotations

import pytest

from datamodules import EBC1, FolderSegmentation, Super1, Synthetic
from datamodules.class_kinds import resolve_kinds
from datamodules.io import DataError


def test_the_nasa_and_synthetic_sets_declare_their_kinds(tmp_path):
    assert Super1(root=str(tmp_path)).class_kinds == ["matrix", "particles", "particles"]
    assert EBC1(root=str(tmp_path)).class_kinds == ["matrix", "layer"]
    assert EBC1(root=str(tmp_path), keep_crack=True).class_kinds == ["matrix", "layer", "particles"]
    assert Synthetic(kind="ebc").class_kinds == ["matrix", "layer"]
    assert Synthetic(kind="super").class_kinds == ["matrix", "particles", "particles"]


def test_a_folder_yaml_gives_each_class_a_kind(tmp_path):
    classes = [{"name": "bond coat", "index": 0}, {"name": "oxide", "index": 1, "kind": "layer"},
               {"name": "pore", "index": 2}]  # fmt: skip
    data = FolderSegmentation(root=str(tmp_path), classes=classes)
    assert data.class_kinds == ["matrix", "layer", "particles"]  # undeclared: matrix first, then particles


def test_an_unknown_kind_names_the_class_and_the_choices(tmp_path):
    classes = [{"name": "matrix", "index": 0}, {"name": "oxide", "index": 1, "kind": "layr"}]
    with pytest.raises(DataError, match="'oxide' has kind 'layr'.*matrix, particles, layer"):
        FolderSegmentation(root=str(tmp_path), classes=classes)
    with pytest.raises(DataError, match="2 class kinds for 3 classes"):
        resolve_kinds(["matrix", "layer"], ["a", "b", "c"], "somewhere")
