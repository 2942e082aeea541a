"""The napari dock widget, headless: segment a layer, edit the labels, the table follows, save masks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

pytest.importorskip("napari")

from datamodules.synthetic import make_super  # noqa: E402
from tests.experiments.stand_in import brightness_ckpt  # noqa: E402, F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "napari_widget.png"


@pytest.fixture
def viewer_and_widget(gl_display, make_napari_viewer, brightness_ckpt):  # noqa: F811
    from microseg_napari import SegmentWidget

    viewer = make_napari_viewer()
    viewer.add_image(make_super(np.random.default_rng(3), 128)[0], name="super", rgb=True)
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microseg", area="right")
    widget.ckpt.setText(str(brightness_ckpt))
    return viewer, widget


def test_segment_edit_measure_save(viewer_and_widget, qtbot, tmp_path):
    viewer, widget = viewer_and_widget
    widget.pixel.setText("4.2nm")
    widget.segment()
    qtbot.waitUntil(lambda: widget.labels is not None, timeout=120_000)
    labels = widget.labels
    assert labels.data.shape == (128, 128) and set(np.unique(labels.data)) <= {0, 1, 2}
    assert tuple(labels.scale) == (4.2, 4.2) and tuple(viewer.layers["super"].scale[:2]) == (4.2, 4.2)
    assert list(labels.features["class"]) == ["matrix", "secondary", "tertiary"]
    assert labels.colormap.map(2)[:3].tolist() == [1.0, 0.0, 0.0]  # tertiary in the checkpoint's red
    before = widget.table_values()
    assert set(before) == {"matrix", "secondary", "tertiary"} and "mean diameter (nm)" in before["tertiary"]

    labels.brush_size = 20
    with labels.block_history():  # one brush stroke, as a mouse drag makes it
        labels.paint((64, 64), 2)  # the user paints a tertiary particle
    after = widget.table_values()
    assert float(after["tertiary"]["area %"]) > float(before["tertiary"]["area %"])

    viewer.window._qt_window.resize(1300, 760)  # room for the canvas beside the widget
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.shape[0] > 300 and shot.std() > 10  # the window with the widget, not a blank frame
    Image.fromarray(shot).save(tmp_path / "napari_widget.png")
    if os.environ.get("MICROSEG_WRITE_DOCS"):  # refresh the README's picture
        Image.fromarray(shot[..., :3]).save(SCREENSHOT, optimize=True)

    widget.folder.setText(str(tmp_path / "train"))
    widget.save_masks()
    mask = np.asarray(Image.open(tmp_path / "train" / "masks" / "super.png"))
    assert np.array_equal(mask, labels.data) and (tmp_path / "train" / "images" / "super.tif").is_file()
    assert "{name: tertiary, index: 2}" in (tmp_path / "train" / "classes.yaml").read_text()
    widget.save_masks()  # a second save never replaces the first silently
    assert "exists" in widget.status.text()


def test_cancel_stops_between_windows(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    viewer.add_image(make_super(np.random.default_rng(4), 256)[0], name="large", rgb=True)
    widget.image.setCurrentText("large")
    widget.tile.setValue(32)
    widget.segment()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.status.text().startswith("segmenting"), timeout=120_000)
    assert widget.status.text() == "cancelled" and widget.labels is None
    assert widget.progress.value() < widget.progress.maximum()


def test_bad_checkpoint_is_one_line(viewer_and_widget, tmp_path):
    _, widget = viewer_and_widget
    widget.ckpt.setText(str(tmp_path / "missing.ckpt"))
    widget.segment()
    assert widget.status.text().startswith("error:") and "missing.ckpt" in widget.status.text()


def test_manifest_and_entry_point():
    from npe2 import PluginManifest

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    package, _, manifest = project["project"]["entry-points"]["napari.manifest"]["microseg"].partition(":")
    manifest = PluginManifest.from_file(REPO / package / manifest)
    command = manifest.contributions.commands[0]
    assert command.python_name == "microseg_napari:SegmentWidget"
    assert manifest.contributions.widgets[0].command == command.id
    assert "napari" in project["project"]["optional-dependencies"]
