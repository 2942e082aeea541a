"""napari plugin of microseg (``pip install 'microseg[napari]'``; Plugins > Segment micrographs).

A dock widget segments the selected image layer with a trained checkpoint, as `predict` does, adds a
Labels layer with the checkpoint's class names and colours at the image's pixel size, keeps a
measurements table up to date while the labels are corrected, and saves corrected masks in the
FolderSegmentation layout so that they become training data. The npe2 manifest is ``napari.yaml``.
"""

from microseg_napari._widget import SegmentWidget

__all__ = ["SegmentWidget"]
