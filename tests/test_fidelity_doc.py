"""docs/fidelity.md cannot rot: every row has seven cells and its "ours" cell points at live code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "fidelity.md"
HEADER = ["point", "paper", "official code", "NASA", "ours", "why", "switch"]
#: `path/to/file.py:LINE` followed by `symbol`
REFERENCE = re.compile(r"`([\w./-]+\.\w+):(\d+)`\s*`([^`]+)`")
WHY = ("same", "fix of a bug", "deliberate choice")
#: the symbol must be within this many lines of the cited line
SLACK = 2


def table_rows(text: str) -> list[tuple[str, list[str]]]:
    """(section, cells) of every data row of every table, header and separator rows left out."""
    rows, section = [], ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells != HEADER and not set("".join(cells)) <= set("-: "):
                rows.append((section, cells))
    return rows


def check_reference(path: str, line: int, symbol: str) -> str | None:
    """Why a reference is broken, or None when ``symbol`` is within SLACK lines of ``path:line``."""
    file = REPO / path
    if not file.is_file():
        return f"{path} does not exist"
    lines = file.read_text().splitlines()
    window = lines[max(line - 1 - SLACK, 0) : line + SLACK]
    if not any(symbol in text for text in window):
        return f"{symbol!r} is not within {SLACK} lines of {path}:{line}"
    return None


ROWS = table_rows(DOC.read_text())


def test_doc_has_its_sections_and_headers():
    text = DOC.read_text()
    for section in ("Architecture details", "Data and augmentation", "Training, losses and metrics"):
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
    broken = [check_reference(path, int(line), symbol) for path, line, symbol in references]
    assert not any(broken), [b for b in broken if b]


def test_a_moved_symbol_is_caught():
    assert check_reference("datamodules/transforms.py", 1, "def _nasa_super(")
    assert check_reference("no/such/file.py", 1, "x") == "no/such/file.py does not exist"
