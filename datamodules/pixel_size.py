"""Pixel size: parse it from text (``--pixel-size 4.2nm``) and read it from a micrograph's own metadata.

Microscopes and image tools record the calibration in different places of a TIFF; the sources are
tried from the most to the least specific, and the first that gives a physical size wins:

1. FEI/Thermo Fisher SEM/FIB tags (34682 ``FEI_HELIOS``, 34680 ``FEI_SFEG``, an INI text):
   ``[Scan] PixelWidth`` in metres (``[EScan]``/``[IScan]`` in single-beam exports).
2. Zeiss SmartSEM tag 34118 ``CZ_SEM``: ``AP_IMAGE_PIXEL_SIZE`` (else ``AP_PIXEL_SIZE``) with its unit.
3. OME-XML ``<Pixels PhysicalSizeX=... PhysicalSizeXUnit=...>`` (the unit defaults to µm).
4. ImageJ/Fiji: ``unit=`` in the ImageJ description with XResolution (pixels per unit).
5. Baseline TIFF XResolution with ResolutionUnit inch or centimetre. A whole number of dots per inch
   up to 1200 (72, 96, 300 ...) is what image editors write by default, not a calibration: no
   microscope has pixels of 20-350 µm, so such values are ignored.

Every reading says which source it came from, so a report can tell the user where a number came from.
"""

from __future__ import annotations

import math
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import tifffile

#: spellings of the accepted length units -> canonical name, size in nanometres
UNITS: dict[str, tuple[str, float]] = {
    "pm": ("pm", 1e-3),
    "a": ("Å", 0.1),
    "å": ("Å", 0.1),
    "nm": ("nm", 1.0),
    "um": ("µm", 1e3),
    "µm": ("µm", 1e3),
    "μm": ("µm", 1e3),
    "micron": ("µm", 1e3),
    "microns": ("µm", 1e3),
    "mm": ("mm", 1e6),
    "cm": ("cm", 1e7),
    "m": ("m", 1e9),
}
#: ImageJ writes non-ASCII units escaped in its description
_ESCAPES = {"\\u00b5": "µ", "\\u03bc": "µ"}
#: dots per inch at or below which a whole-number resolution is an editor's default, not a calibration
EDITOR_DPI = 1200


@dataclass(frozen=True)
class PixelSize:
    """Side of one pixel, e.g. ``PixelSize(4.2, "nm")``."""

    value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"

    @property
    def nm(self) -> float:
        """The side in nanometres."""
        return self.value * UNITS[self.unit.lower()][1]

    @classmethod
    def from_nm(cls, nm: float) -> PixelSize:
        """A readable size: nanometres below 1 µm, else micrometres (rounded to 6 significant digits)."""
        value, unit = (nm, "nm") if nm < 1e3 else (nm / 1e3, "µm")
        return cls(float(f"{value:.6g}"), unit)


class Calibration(NamedTuple):
    """A pixel size and where it came from (``"OME-XML PhysicalSizeX"``, ``"--pixel-size"`` ...)."""

    size: PixelSize
    source: str


def _unit(text: str) -> str | None:
    """Canonical unit of a spelling (``um``, ``micron``, ``\\u00B5m``), or None if it is not a length."""
    text = text.strip().lower()
    for escaped, char in _ESCAPES.items():
        text = text.replace(escaped, char)
    return UNITS[text][0] if text in UNITS else None


def parse_pixel_size(text: str | None) -> PixelSize | None:
    """Parse ``4.2nm``, ``0.5 um``, ``1.3µm``; a number without a unit is an error (units differ 1000x)."""
    if text is None:
        return None
    match = re.fullmatch(
        r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9./]*)\s*(?:/\s*px)?\s*", str(text)
    )
    if not match:
        raise ValueError(f"pixel size {text!r} is not a number with a unit; write it like 4.2nm or 0.5um")
    value, unit = float(match.group(1)), match.group(2)
    if not unit:
        raise ValueError(
            f"pixel size {text!r} has no unit; write it like {text}nm or {text}um "
            f"(units: {', '.join(sorted({u for u, _ in UNITS.values()}))})"
        )
    if _unit(unit) is None:
        raise ValueError(f"pixel size {text!r}: unknown unit {unit!r}; use one of nm, um (µm), mm, pm, Å")
    if value <= 0:
        raise ValueError(f"pixel size {text!r} must be positive")
    return PixelSize(value, _unit(unit))


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _fei(tif: tifffile.TiffFile) -> Calibration | None:
    metadata = tif.fei_metadata or {}
    for section in ("Scan", "EScan", "IScan"):
        metres = _positive(metadata.get(section, {}).get("PixelWidth"))
        if metres:
            return Calibration(PixelSize.from_nm(metres * 1e9), f"FEI/Thermo metadata [{section}] PixelWidth")
    return None


def _zeiss(tif: tifffile.TiffFile) -> Calibration | None:
    metadata = tif.sem_metadata or {}
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        entry = metadata.get(key)
        if isinstance(entry, tuple) and len(entry) == 3 and _positive(entry[1]) and _unit(str(entry[2])):
            size = PixelSize(float(entry[1]), _unit(str(entry[2])))
            return Calibration(size, f"Zeiss SEM metadata {key.upper()}")
    return None


def _ome(tif: tifffile.TiffFile) -> Calibration | None:
    if not tif.is_ome:
        return None
    try:
        root = ET.fromstring(tif.ome_metadata or "")
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    value = _positive(pixels.get("PhysicalSizeX")) if pixels is not None else None
    unit = _unit(pixels.get("PhysicalSizeXUnit", "µm")) if pixels is not None else None
    return Calibration(PixelSize(value, unit), "OME-XML PhysicalSizeX") if value and unit else None


def _per_unit(page: tifffile.TiffPage) -> float | None:
    """XResolution as a number (pixels per ResolutionUnit)."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
    return _positive(numerator / denominator) if denominator else None


def _imagej(tif: tifffile.TiffFile) -> Calibration | None:
    unit = _unit(str((tif.imagej_metadata or {}).get("unit", "")))
    per_unit = _per_unit(tif.pages.first)
    if not (unit and per_unit):
        return None
    return Calibration(
        PixelSize(float(f"{1 / per_unit:.6g}"), unit), "ImageJ calibration (unit, XResolution)"
    )


def _resolution_tags(page: tifffile.TiffPage) -> Calibration | None:
    per_unit = _per_unit(page)
    unit_code = int(page.tags.valueof("ResolutionUnit", 2))
    if not per_unit or unit_code not in (2, 3):  # 1 = no absolute unit
        return None
    dpi = per_unit * (2.54 if unit_code == 3 else 1.0)
    if dpi <= EDITOR_DPI and abs(dpi - round(dpi)) < 1e-3:
        return None
    nm = (2.54e7 if unit_code == 2 else 1e7) / per_unit
    unit = "inch" if unit_code == 2 else "cm"
    return Calibration(PixelSize.from_nm(nm), f"TIFF XResolution (pixels per {unit})")


def read_calibration(tif: tifffile.TiffFile) -> Calibration | None:
    """The pixel size recorded in an open TIFF (see the module docstring for the order), or None."""
    for reader in (_fei, _zeiss, _ome, _imagej):
        try:
            found = reader(tif)
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # malformed vendor text
            warnings.warn(f"{tif.filename}: unreadable {reader.__name__[1:]} metadata ({err})", stacklevel=2)
            continue
        if found:
            return found
    return _resolution_tags(tif.pages.first)


def file_calibration(path: Path) -> Calibration | None:
    """The pixel size a TIFF file records (None for other formats and for files tifffile cannot open)."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            return read_calibration(tif)
    except (OSError, ValueError, IndexError):
        return None
