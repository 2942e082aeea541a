"""Which pixel value is which class: --class-values, --class-names, classes.json, or the values found."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.apply.mask_classes import MaskError, class_table, measured_kinds, parse_class_values


def _never() -> dict:
    raise AssertionError("the masks must not be read when the classes are given")


def test_class_values_parse_and_map(tmp_path):
    table, source = class_table(tmp_path, _never, class_values=["0=matrix", "255=pore"])
    assert (
        table.values == [0, 255]
        and table.names == ["matrix", "pore"]
        and table.kinds == ["matrix", "particles"]
    )
    assert source == "classes from --class-values: 0=matrix (matrix), 255=pore (particles)"
    mask = np.array([[0, 255], [255, 255]])
    assert table.indices(mask, "m.png").tolist() == [[0, 1], [1, 1]]
    with pytest.raises(
        MaskError, match=r"m.png: pixel value\(s\) 7 \(1 px\).*--class-values 0=matrix 255=pore 7=NAME"
    ):
        table.indices(np.array([[0, 7]]), "m.png")


@pytest.mark.parametrize(
    ("items", "message"),
    [(["0:matrix"], "VALUE=NAME"), (["a=matrix"], "VALUE=NAME"), (["0=a", "0=b"], "value 0 given twice"),
     (["0=a", "1=a"], "name a given twice"), (["0="], "VALUE=NAME")],
)  # fmt: skip
def test_bad_class_values_are_one_line_errors(items, message):
    with pytest.raises(MaskError, match=message):
        parse_class_values(items)


def test_classes_json_gives_names_and_kinds(tmp_path):
    (tmp_path / "classes.json").write_text(
        json.dumps({"class_names": ["bg", "oxide"], "class_kinds": ["matrix", "layer"]})
    )
    table, _ = class_table(tmp_path, _never)
    assert table.names == ["bg", "oxide"] and table.kinds == ["matrix", "layer"] and table.values == [0, 1]
    (tmp_path / "classes.json").write_text("{broken")
    with pytest.raises(MaskError, match="classes.json: not a classes file"):
        class_table(tmp_path, _never)


def test_values_found_name_the_classes_and_too_many_values_are_an_image(tmp_path):
    table, _ = class_table(
        tmp_path, lambda: {tmp_path / "a.tif": np.array([0, 1000]), tmp_path / "b.tif": np.array([0, 2000])}
    )
    assert table.names == ["class_0", "class_1000", "class_2000"] and table.values == [0, 1000, 2000]
    with pytest.raises(MaskError, match="photo.png: 200 different pixel values"):
        class_table(tmp_path, lambda: {tmp_path / "photo.png": np.arange(200)})


def test_layer_classes_override_the_declared_kinds():
    names, declared = ["bg", "oxide", "pore"], ["matrix", "layer", "particles"]
    assert measured_kinds(names, declared) == declared
    assert measured_kinds(names, declared, ["pore"]) == ["matrix", "particles", "layer"]
    assert measured_kinds(names, declared, []) == ["matrix", "particles", "particles"]
    assert measured_kinds(names, None) == ["matrix", "particles", "particles"]
    with pytest.raises(MaskError, match="no such class"):
        measured_kinds(names, declared, ["oxyde"])
