"""NASA DataModule classes: the attributes LightningCLI links, available before any file is read."""

from __future__ import annotations

from datamodules import EBC1, EBC3, Super1
from datamodules.nasa import NASA_SETS


def test_contract_attributes_without_reading_files(tmp_path):
    for name, cls in NASA_SETS.items():
        dm = cls(root=str(tmp_path))
        assert dm.dataset_name == name and dm.num_classes == len(dm.class_names) == len(dm.class_colors)
        assert dm.test_set_names == (["test", "test_ood"] if name in ("super2", "super3") else ["test"])
    assert Super1().class_names == ["matrix", "secondary", "tertiary"]
    assert EBC1().class_names == ["background", "oxide"]
    assert EBC1(keep_crack=True).class_names == ["background", "oxide", "crack"]
    assert Super1().crop_size is None and EBC3().crop_size == 512


def test_default_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROSEG_DATA", str(tmp_path))
    assert Super1().root == tmp_path
    monkeypatch.delenv("MICROSEG_DATA")
    assert str(EBC1().root) == "data"
