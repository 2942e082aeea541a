"""Which pixel value of a mask file is which class, and what kind of class it is.

A mask written by `predict` holds class indices 0..N-1 and its folder has ``classes.json`` (names and
kinds from the checkpoint). Masks from elsewhere hold anything: 0/255 from an image editor, 0/1000/2000
from a 16-bit tool. So the value -> class map comes, in this order, from ``--class-values 0=matrix
255=pore`` (first entry = class 0, the matrix/background), ``--class-names`` (values 0..N-1),
``classes.json``, or else from the values found in the masks (``class_<value>``, at most
`MAX_AUTO_CLASSES` of them: more distinct values means the file is an image, not a mask). A value the
map does not know is an error naming the file, the value and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.class_kinds import KINDS, default_kind

CLASSES_FILE = "classes.json"
MAX_AUTO_CLASSES = 16


class MaskError(ValueError):
    """A mask, or the class options, cannot be used as given; the message says which and how to fix it."""


@dataclass(frozen=True)
class ClassTable:
    """Class ``i`` is stored as pixel value ``values[i]``, is called ``names[i]`` and measured as ``kinds[i]``."""

    values: list[int]
    names: list[str]
    kinds: list[str]

    def indices(self, mask: np.ndarray, source: Path | str) -> np.ndarray:
        """Class indices of a mask of stored values; an unknown value is a `MaskError` naming ``source``."""
        values, inverse = np.unique(mask, return_inverse=True)
        known = {v: i for i, v in enumerate(self.values)}
        unknown = [int(v) for v in values if int(v) not in known]
        if unknown:
            pixels = int(np.isin(mask, unknown).sum())
            mapping = " ".join(f"{v}={n}" for v, n in zip(self.values, self.names, strict=True))
            raise MaskError(
                f"{source}: pixel value(s) {', '.join(map(str, unknown[:8]))} ({pixels} px) are not classes of "
                f"this folder ({mapping}); add them, e.g. --class-values {mapping} {unknown[0]}=NAME"
            )
        lut = np.array([known[int(v)] for v in values], dtype=np.int64)
        return lut[inverse.reshape(mask.shape)]


def parse_class_values(items: list[str]) -> list[tuple[int, str]]:
    """``["0=matrix", "255=pore"]`` -> ``[(0, "matrix"), (255, "pore")]``, with one-line errors."""
    pairs = []
    for item in items:
        value, sep, name = item.partition("=")
        if not sep or not name.strip() or not value.strip().lstrip("-").isdigit():
            raise MaskError(
                f"--class-values {item!r}: write VALUE=NAME, e.g. --class-values 0=matrix 255=pore"
            )
        pairs.append((int(value), name.strip()))
    for label, column in (("value", 0), ("name", 1)):
        seen = [p[column] for p in pairs]
        repeated = sorted({str(x) for x in seen if seen.count(x) > 1})
        if repeated:
            raise MaskError(
                f"--class-values: {label} {', '.join(repeated)} given twice; give each class once"
            )
    return pairs


def class_table(
    folder: Path,
    values_found: Callable[[], dict[Path, np.ndarray]],
    class_values: list[str] | None = None,
    class_names: list[str] | None = None,
    layer_classes: list[str] | None = None,
) -> tuple[ClassTable, str]:
    """The folder's class table and a line saying where it came from (see the module docstring).

    ``values_found()`` gives the distinct pixel values of each mask; it is called (reading the masks)
    only when nothing else says which values the classes have.
    """
    saved = folder / CLASSES_FILE
    declared: list[str] | None = None
    if class_values:
        pairs = parse_class_values(class_values)
        source = "--class-values"
    elif class_names:
        pairs, source = list(enumerate(class_names)), "--class-names"
    elif saved.is_file():
        info = _read_classes_file(saved)
        pairs, source = list(enumerate(info["class_names"])), str(saved)
        declared = info.get("class_kinds") or None
    else:
        pairs, source = _auto_classes(values_found()), "the values in the masks"
    names = [name for _, name in pairs]
    kinds = measured_kinds(names, declared, layer_classes)
    table = ClassTable([value for value, _ in pairs], names, kinds)
    listing = ", ".join(f"{v}={n} ({k})" for v, n, k in zip(table.values, names, kinds, strict=True))
    return table, f"classes from {source}: {listing}"


def measured_kinds(
    names: list[str], declared: list[str] | None, layer_classes: list[str] | None = None
) -> list[str]:
    """Kinds to measure by: the declared ones (else the defaults), with ``--layer-classes`` overriding.

    ``layer_classes`` given (even empty) makes exactly those classes layers; a class declared a layer
    but not listed is then measured as particles.
    """
    kinds = list(declared) if declared and len(declared) == len(names) else None
    kinds = kinds or [default_kind(i) for i in range(len(names))]
    if layer_classes is None:
        return kinds
    unknown = [name for name in layer_classes if name not in names]
    if unknown:
        raise MaskError(
            f"--layer-classes {' '.join(unknown)}: no such class; the classes are {', '.join(names)}"
        )
    return [
        "layer" if name in layer_classes else ("particles" if kind == "layer" else kind)
        for name, kind in zip(names, kinds, strict=True)
    ]


def _read_classes_file(path: Path) -> dict:
    try:
        info = json.loads(path.read_text())
        names = [str(n) for n in info["class_names"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise MaskError(f"{path}: not a classes file written by `predict` ({err}); fix or delete it") from err
    kinds = info.get("class_kinds")
    if kinds is not None and (len(kinds) != len(names) or any(k not in KINDS for k in kinds)):
        raise MaskError(f"{path}: class_kinds {kinds} must give one of {', '.join(KINDS)} per class")
    return {"class_names": names, "class_kinds": kinds}


def _auto_classes(values_by_mask: dict[Path, np.ndarray]) -> list[tuple[int, str]]:
    """``(value, "class_<value>")`` for the distinct values of all masks, when they are few enough."""
    found: set[int] = set()
    for path, values in values_by_mask.items():
        if values.size > MAX_AUTO_CLASSES:
            raise MaskError(
                f"{path}: {values.size} different pixel values, not a mask of a few classes (an image?); "
                "map the values you mean with --class-values, e.g. --class-values 0=matrix 255=pore"
            )
        found.update(int(v) for v in values)
        if len(found) > MAX_AUTO_CLASSES:
            raise MaskError(
                f"the masks hold more than {MAX_AUTO_CLASSES} different values together (last read: {path}); "
                "map them with --class-values VALUE=NAME ..."
            )
    return [(value, f"class_{value}") for value in sorted(found or {0})]
