"""A mistyped key, class or file in a config: one line naming the file and the key, with the nearest valid name."""

from __future__ import annotations

import pytest
import yaml

from experiments.cli import main

LAB = {
    "data": {
        "class_path": "datamodules.FolderSegmentation",
        "init_args": {"root": "/lab", "classes": [{"name": "matrix", "index": 0}], "batch_size": 2},
    }
}


def _error(capsys, tmp_path, config: dict, *extra: str) -> str:
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(path), "--config", "models/unet.yaml", *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "usage:" not in err and "Traceback" not in err, err
    return err


def _with(init_args: dict, **top) -> dict:
    data = {**LAB["data"], "init_args": {**LAB["data"]["init_args"], **init_args}}
    return {"data": data, **top}


def test_a_mistyped_option_names_the_file_the_key_and_the_nearest_option(capsys, tmp_path):
    """Before: 51 lines of usage, then a nested union error naming neither the file nor batch_size."""
    config = _with({})
    config["data"]["init_args"]["batchsize"] = config["data"]["init_args"].pop("batch_size")
    err = _error(capsys, tmp_path, config)
    assert err == (
        f"error: {tmp_path / 'lab.yaml'}: data.init_args.batchsize is not an option of "
        "datamodules.FolderSegmentation; did you mean batch_size?"
    )


def test_the_same_typo_on_the_command_line_names_the_option(capsys, tmp_path):
    err = _error(capsys, tmp_path, _with({}), "--data.init_args.eval_batchsize=4")
    assert "--data.init_args.eval_batchsize (command line)" in err and "did you mean eval_batch_size?" in err


def test_an_unknown_class_path_suggests_the_nearest_class(capsys, tmp_path):
    config = _with({})
    config["data"]["class_path"] = "datamodules.FolderSegmentaton"
    err = _error(capsys, tmp_path, config)
    assert f"{tmp_path / 'lab.yaml'}: data: class_path datamodules.FolderSegmentaton does not exist" in err
    assert err.endswith("did you mean datamodules.FolderSegmentation?")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"datta": {"batch_size": 3}}, "unknown key datta; did you mean data?"),
        ({"trainer": {"max_epoch": 3}}, "unknown key trainer.max_epoch; did you mean max_epochs?"),
        (
            {"model": {"class_path": "UNett"}},
            "model: class_path UNett is not a known class; did you mean UNet?",
        ),
    ],
)
def test_unknown_keys_and_bare_class_names(capsys, tmp_path, extra, expected):
    second = tmp_path / "more.yaml"
    second.write_text(yaml.safe_dump(extra))
    err = _error(capsys, tmp_path, _with({}), "--config", str(second))
    assert err == f"error: {second}: {expected}"


def test_a_yaml_syntax_error_names_the_line(capsys, tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(LAB) + "  batch_size: [3\n")
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(path), "--config", "models/unet.yaml"])
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: line ") and "fix the YAML syntax" in err and "\n" not in err


def test_a_data_error_about_a_config_key_names_the_file(capsys, tmp_path):
    classes = [
        {"name": "matrix", "index": 0},
        {"name": "pore", "index": 255},
        {"name": "crack", "index": 255},
    ]
    err = _error(capsys, tmp_path, _with({"classes": classes}))
    assert err.startswith(
        f"error: {tmp_path / 'lab.yaml'}: data.init_args.classes[2] (crack): index 255 is also"
    )


def test_a_data_error_while_building_the_data_is_one_line(capsys, tmp_path):
    """Before: jsonargparse wrapped it in a ValueError listing the union's alternatives, a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "microlite.yaml", f"--data.init_args.root={tmp_path / 'nowhere'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {tmp_path / 'nowhere'}: MicroLite root is not a folder; set data.init_args.root to an "
        "ImageFolder tree <root>/<class>/<image>"
    )
