"""The dock widget: pick a checkpoint, segment the selected image layer, correct, measure, save.

Segmentation runs in a napari worker thread (`napari.qt.threading.create_worker`) so the viewer stays
responsive; the progress bar counts windows and Cancel stops between two of them (`_segment.Stepper`).
The table is recomputed from the Labels layer whenever it is painted, filled or replaced.
"""

from __future__ import annotations

import threading
from pathlib import Path

import napari
import numpy as np
import pandas as pd
from napari.qt.threading import create_worker
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from datamodules.pixel_size import parse_pixel_size
from experiments.apply.imageio import default_colors
from lightning_modules.checkpoint import load_segmenter
from microseg_napari._segment import (
    Cancelled,
    Segmentation,
    classes_yaml,
    measurement_rows,
    save_masks,
    segment,
)


def _caught(*args, **kwargs) -> tuple[Segmentation | None, Exception | None]:
    """`segment`'s result, or its exception (a bad image, Cancel) for the GUI thread to report in one
    line; a raised (or returned) exception would be re-raised into Qt's event loop by the worker."""
    try:
        return segment(*args, **kwargs), None
    except Exception as err:
        return None, err


class _Progress(QObject):
    """Carries window counts from the worker thread to the progress bar (queued to the GUI thread)."""

    total = Signal(int)
    advanced = Signal(int)


def _path_row(edit: QLineEdit, button: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit)
    layout.addWidget(button)
    return row


class SegmentWidget(QWidget):
    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.net = self.meta = self.labels = self.worker = self._loaded = None
        self._stop = threading.Event()
        self._progress = _Progress()
        self._progress.total.connect(lambda n: self.progress.setRange(0, n))
        self._progress.advanced.connect(lambda n: self.progress.setValue(self.progress.value() + n))

        self.ckpt = QLineEdit(placeholderText="best.ckpt written by `fit`")
        browse = QPushButton("Browse…", clicked=self._browse_ckpt)
        self.image = QComboBox()
        self.pixel = QLineEdit(placeholderText="from the file, e.g. 4.2nm")
        self.tile = QSpinBox(minimum=16, maximum=4096, value=512, singleStep=32)
        self.run = QPushButton("Segment", clicked=self.segment)
        self.stop = QPushButton("Cancel", clicked=self.cancel, enabled=False)
        self.progress = QProgressBar()
        self.status = QLabel("pick a checkpoint and an image layer")
        self.status.setWordWrap(True)
        self.table = QTableWidget()
        self.folder = QLineEdit(placeholderText="training folder (images/ + masks/)")
        pick = QPushButton("Browse…", clicked=self._browse_folder)
        self.overwrite = QCheckBox("overwrite")
        self.save = QPushButton("Save masks", clicked=self.save_masks)

        form = QFormLayout()
        form.addRow("checkpoint", _path_row(self.ckpt, browse))
        form.addRow("image layer", self.image)
        form.addRow("pixel size", self.pixel)
        form.addRow("window (px)", self.tile)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run)
        buttons.addWidget(self.stop)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("measurements"))
        layout.addWidget(self.table)
        layout.addWidget(_path_row(self.folder, pick))
        saving = QHBoxLayout()
        saving.addWidget(self.overwrite)
        saving.addWidget(self.save)
        layout.addLayout(saving)

        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # -- choices ---------------------------------------------------------------------------------
    def _refresh_layers(self, event=None) -> None:
        current = self.image.currentText()
        self.image.clear()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, napari.layers.Image)]
        self.image.addItems(names)
        if current in names:
            self.image.setCurrentText(current)

    def _browse_ckpt(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "checkpoint", filter="checkpoints (*.ckpt)")
        if path:
            self.ckpt.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "training folder")
        if path:
            self.folder.setText(path)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # -- segmenting -------------------------------------------------------------------------------
    def segment(self) -> None:
        """Load the checkpoint (once per path) and segment the chosen layer in a worker thread."""
        try:
            layer = self.viewer.layers[self.image.currentText()]
            pixel = parse_pixel_size(self.pixel.text().strip() or None)
            if self.meta is None or self._loaded != self.ckpt.text():
                self.net, self.meta = load_segmenter(self.ckpt.text().strip())
                self._loaded = self.ckpt.text()
        except (KeyError, ValueError, FileNotFoundError) as err:
            self._say(f"error: {err}" if not isinstance(err, KeyError) else "error: add an image layer first")
            return
        source = Path(layer.source.path) if layer.source.path else None
        self._stop.clear()
        self.progress.setValue(0)
        self.worker = create_worker(
            _caught, self.net, self.meta, layer.data, source, pixel, self.tile.value(),
            on_total=self._progress.total.emit, advance=self._progress.advanced.emit, stop=self._stop,
        )  # fmt: skip
        self.worker.returned.connect(lambda result: self._finished(layer, result))
        self.worker.finished.connect(lambda: (self.run.setEnabled(True), self.stop.setEnabled(False)))
        self.run.setEnabled(False)
        self.stop.setEnabled(True)
        self._say(f"segmenting {layer.name}…")
        self.worker.start()

    def cancel(self) -> None:
        self._stop.set()

    def _finished(
        self, layer: napari.layers.Image, outcome: tuple[Segmentation | None, Exception | None]
    ) -> None:
        result, err = outcome
        if err is not None:
            self._say("cancelled" if isinstance(err, Cancelled) else f"error: {err}")
        else:
            self._add_labels(layer, result)

    def _add_labels(self, layer: napari.layers.Image, result: Segmentation) -> None:
        names = self.meta.class_names
        colors = self.meta.class_colors or default_colors(len(names))
        colormap = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
        colormap.update({i: (*(np.asarray(c) / 255), 1.0) for i, c in enumerate(colors) if i > 0})
        scale = (result.pixel.value,) * 2 if result.pixel else tuple(layer.scale[-2:])
        if result.pixel and tuple(layer.scale[-2:]) == (1.0, 1.0):
            layer.scale = scale  # so that image and labels overlay at the physical pixel size
        self.labels = self.viewer.add_labels(
            result.mask.astype(np.int32),
            name=f"{layer.name} classes",
            scale=scale,
            colormap=DirectLabelColormap(color_dict=colormap),
            features=pd.DataFrame({"index": range(len(names)), "class": names}),
            opacity=0.5,
        )
        self.labels.metadata["microseg"] = {"source": layer.name, "pixel": result.pixel}
        self.labels.events.paint.connect(self.update_table)
        self.labels.events.data.connect(self.update_table)
        where = (
            f"pixel {result.pixel} ({result.pixel_source})"
            if result.pixel
            else "no pixel size (lengths in px)"
        )
        self._say(f"segmented {layer.name}: {', '.join(names)}; {where}")
        self.update_table()

    # -- measuring and saving -------------------------------------------------------------------
    def update_table(self, event=None) -> None:
        """Phase fractions, particle counts and sizes, layer thickness of the current labels."""
        if self.labels is None:
            return
        rows = measurement_rows(
            self.labels.data,
            self.meta.class_names,
            self.meta.class_kinds,
            self.labels.metadata["microseg"]["pixel"],
        )
        columns = list(dict.fromkeys(key for row in rows for key in row))
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(columns)
        for i, row in enumerate(rows):
            for j, key in enumerate(columns):
                self.table.setItem(i, j, QTableWidgetItem(str(row.get(key, ""))))
        self.table.resizeColumnsToContents()

    def table_values(self) -> dict[str, dict[str, str]]:
        """The table as {class: {column: text}} (what the user reads; tests compare it)."""
        header = [self.table.horizontalHeaderItem(j).text() for j in range(self.table.columnCount())]
        return {
            self.table.item(i, 0).text(): {
                header[j]: self.table.item(i, j).text()
                for j in range(1, len(header))
                if self.table.item(i, j)
            }
            for i in range(self.table.rowCount())
        }

    def save_masks(self) -> None:
        """The corrected labels and their image into the chosen folder (images/ + masks/)."""
        if self.labels is None or not self.folder.text().strip():
            self._say("error: segment an image and choose a folder first")
            return
        layer = self.viewer.layers[self.labels.metadata["microseg"]["source"]]
        source = Path(layer.source.path) if layer.source.path else None
        folder = Path(self.folder.text().strip())
        try:
            image, mask = save_masks(
                folder, layer.name, self.labels.data, layer.data, source, self.overwrite.isChecked()
            )
        except OSError as err:
            self._say(f"error: {err}")
            return
        (folder / "classes.yaml").write_text(classes_yaml(self.meta.class_names))
        self._say(f"saved {image.name} and {mask.name} under {folder} (classes: {folder / 'classes.yaml'})")
