"""docs/fidelity.md cannot rot: every row has seven cells and its "ours" cell points at live code."""

from __future__ import annotations

import pytest

from experiments.reproduce.fidelity_refs import (
    DOC,
    HEADER,
    REFERENCE,
    check_reference,
    nearest_line,
    repoint,
    table_rows,
)

WHY = ("same", "fix of a bug", "deliberate choice")

ROWS = table_rows(DOC.read_text())


def test_doc_has_its_sections_and_headers():
    text = DOC.read_text()
    for section in (
        "Architecture details",
        "Data and augmentation",
        "Training, losses and metrics",
        "Weights, pretraining and decoder seeding",
        "HiFormer and TransDeepLab as published",
    ):
        assert f"\n## {section}\n" in text
    assert text.count("| " + " | ".join(HEADER) + " |") == text.count("\n## ")
    assert len(ROWS) >= 20


@pytest.mark.parametrize(("section", "cells"), ROWS, ids=[f"{s}: {c[0]}" for s, c in ROWS])
def test_row_names_the_code_of_ours(section, cells):
    assert len(cells) == len(HEADER), f"{cells[0]}: {len(cells)} cells (a '|' inside a cell?)"
    ours, why = cells[HEADER.index("ours")], cells[HEADER.index("why")]
    assert why.startswith(WHY), f"{cells[0]}: why must start with one of {WHY}"
    references = REFERENCE.findall(ours)
    assert references, f"{cells[0]}: the ours cell cites no `file:LINE` `symbol`"
    broken = [check_reference(path, int(line), symbol) for path, line, _, symbol in references]
    assert not any(broken), [b for b in broken if b]


def test_a_moved_symbol_is_caught():
    assert check_reference("datamodules/transforms.py", 1, "def _nasa_super(")
    assert check_reference("no/such/file.py", 1, "x") == "no/such/file.py does not exist"


def test_fix_moves_a_reference_to_its_symbols_nearest_line():
    line = nearest_line("experiments/reproduce/fidelity_refs.py", 1, "def repoint(")
    assert line and check_reference("experiments/reproduce/fidelity_refs.py", line, "def repoint(") is None
    text = "| `experiments/reproduce/fidelity_refs.py:1` `def repoint(` | `no/such.py:3` `x` |"
    fixed, unresolved = repoint(text)
    assert f"fidelity_refs.py:{line}`" in fixed and unresolved == ["no/such.py:3 'x'"]


def test_an_escaped_bar_stays_inside_its_cell():
    rows = table_rows("## S\n| a | b \\| c | d |\n")
    assert rows == [("S", ["a", "b \\| c", "d"])]
