"""What each class is, for measuring it: ``matrix``, ``particles`` or ``layer``. Declared once, in the data.

The kind decides how `measure` treats a class: a ``matrix`` (or background) class is measured only by its
area fraction, ``particles`` are counted and sized one by one, a ``layer`` (a coating's oxide) is measured
by its thickness along the layer. A data set declares its kinds (the NASA sets do; a FolderSegmentation
YAML gives each class a ``kind``), the CLI copies them into the model's hyperparameters, so every
checkpoint carries them and `predict`/`measure` need no flag. Where nothing is declared, class 0 is the
matrix and every other class is particles.
"""

from __future__ import annotations

from collections.abc import Sequence

from datamodules.io import DataError

KINDS = ("matrix", "particles", "layer")


def default_kind(index: int) -> str:
    """The kind of a class nobody declared: class 0 (background/matrix) is ``matrix``, the rest ``particles``."""
    return "matrix" if index == 0 else "particles"


def resolve_kinds(kinds: Sequence[str | None] | None, class_names: Sequence[str], source: str) -> list[str]:
    """One valid kind per class; ``None`` (or a missing list) takes the default kind.

    ``source`` names where the kinds came from (a config key, a file) in the error.
    """
    if kinds is None:
        kinds = [None] * len(class_names)
    if len(kinds) != len(class_names):
        raise DataError(
            f"{source}: {len(kinds)} class kinds for {len(class_names)} classes ({', '.join(class_names)}); "
            "give one kind per class"
        )
    resolved = []
    for index, (kind, name) in enumerate(zip(kinds, class_names, strict=True)):
        if kind is not None and kind not in KINDS:
            raise DataError(
                f"{source}: class {name!r} has kind {kind!r}; use one of {', '.join(KINDS)} "
                "(matrix: area fraction only, particles: counted and sized, layer: thickness)"
            )
        resolved.append(kind or default_kind(index))
    return resolved
