"""``predictions.json``: what `predict` did to each image, kept beside its masks.

Per output stem: the input file, its size, its pixel size and where that came from, the intensity rule
and the resampling applied before the network. `measure --masks DIR` reads the pixel sizes back, so
re-measuring predict's masks reports physical units without ``--pixel-size``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from datamodules.pixel_size import Calibration, PixelSize, file_calibration

PREDICTIONS_FILE = "predictions.json"


def write_predictions(out_dir: Path, header: dict, images: dict[str, dict]) -> Path:
    """``header`` (checkpoint, preprocessing) plus one entry per image stem, as ``predictions.json``."""
    path = out_dir / PREDICTIONS_FILE
    path.write_text(json.dumps({**header, "images": images}, indent=2, ensure_ascii=False))
    return path


def image_entry(calibration: Calibration | None, **fields: object) -> dict:
    """One image's record: ``fields`` plus its pixel size (value, unit) and the pixel size's source."""
    size = calibration.size if calibration else None
    return {
        **fields,
        "pixel_size": {"value": size.value, "unit": size.unit} if size else None,
        "pixel_size_source": calibration.source if calibration else None,
    }


def recorded_calibrations(folder: Path) -> dict[str, Calibration]:
    """Stem -> pixel size that `predict` recorded in ``folder`` (empty when it recorded none)."""
    path = folder / PREDICTIONS_FILE
    if not path.is_file():
        return {}
    try:
        images = json.loads(path.read_text()).get("images", {})
    except (json.JSONDecodeError, AttributeError):
        return {}
    found = {}
    for stem, entry in images.items():
        size = entry.get("pixel_size") if isinstance(entry, dict) else None
        if size:
            source = f"{entry.get('pixel_size_source')}, as recorded by predict in {path.name}"
            found[stem] = Calibration(PixelSize(float(size["value"]), str(size["unit"])), source)
    return found


def mask_calibration(
    mask: Path, stem: str, given: PixelSize | None, recorded: dict[str, Calibration]
) -> Calibration | None:
    """A mask's pixel size: ``--pixel-size``, else what predict recorded for it, else the mask file's own."""
    if given is not None:
        return Calibration(given, "--pixel-size")
    return recorded.get(stem) or file_calibration(mask)


def describe_calibrations(found: dict[str, Calibration | None]) -> list[str]:
    """Report lines: each pixel size and source with how many images use it, and those without one."""
    groups = Counter(found.values())
    lines = [f"pixel size {c.size} ({c.source}): {n} image(s)" for c, n in groups.items() if c is not None]
    if groups.get(None):
        lines.append(f"no pixel size: {groups[None]} image(s), lengths in px only (pass --pixel-size)")
    return lines
