"""The code references of docs/fidelity.md: parse them, check them, and re-point them after edits.

Every "ours" cell of the fidelity tables cites `` `path:LINE` `` followed by a `` `symbol` `` found on
that line. Code moves, so `tests/test_fidelity_doc.py` fails when a symbol is no longer near its line,
and ``python -m experiments.reproduce.fidelity_refs --fix`` moves each reference to the nearest line that
holds its symbol (it never invents one: a symbol that left its file stays broken and is listed).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "fidelity.md"
HEADER = ["point", "paper", "official code", "NASA", "ours", "why", "switch"]
#: `path/to/file.py:LINE` followed by `symbol`
REFERENCE = re.compile(r"`([\w./-]+\.\w+):(\d+)`(\s*)`([^`]+)`")
#: the symbol must be within this many lines of the cited line
SLACK = 2
#: a cell separator: a '|' that is not escaped as '\|'
SEPARATOR = re.compile(r"(?<!\\)\|")


def table_rows(text: str) -> list[tuple[str, list[str]]]:
    """(section, cells) of every data row of every table, header and separator rows left out."""
    rows, section = [], ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("|"):
            cells = [c.strip() for c in SEPARATOR.split(line.strip().strip("|"))]
            if cells != HEADER and not set("".join(cells)) <= set("-: "):
                rows.append((section, cells))
    return rows


def _lines(path: str) -> list[str] | None:
    file = REPO / path
    return file.read_text().splitlines() if file.is_file() else None


def check_reference(path: str, line: int, symbol: str) -> str | None:
    """Why a reference is broken, or None when ``symbol`` is within SLACK lines of ``path:line``."""
    lines = _lines(path)
    if lines is None:
        return f"{path} does not exist"
    window = lines[max(line - 1 - SLACK, 0) : line + SLACK]
    if not any(symbol in text for text in window):
        return f"{symbol!r} is not within {SLACK} lines of {path}:{line}"
    return None


def nearest_line(path: str, line: int, symbol: str) -> int | None:
    """The 1-based line holding ``symbol`` closest to ``line`` (a definition wins over a use), or None."""
    lines = _lines(path) or []
    hits = [i + 1 for i, text in enumerate(lines) if symbol in text]
    definitions = [i for i in hits if re.match(r"\s*(def|class)\s", lines[i - 1])]
    candidates = definitions or hits
    return min(candidates, key=lambda i: abs(i - line)) if candidates else None


def repoint(text: str) -> tuple[str, list[str]]:
    """``text`` with every broken reference moved to its symbol's nearest line, and those left broken."""
    unresolved = []

    def fix(match: re.Match) -> str:
        path, line, space, symbol = match.group(1), int(match.group(2)), match.group(3), match.group(4)
        if check_reference(path, line, symbol) is None:
            return match.group(0)
        found = nearest_line(path, line, symbol)
        if found is None:
            unresolved.append(f"{path}:{line} {symbol!r}")
            return match.group(0)
        return f"`{path}:{found}`{space}`{symbol}`"

    return REFERENCE.sub(fix, text), unresolved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.reproduce.fidelity_refs", description=__doc__
    )
    parser.add_argument("--fix", action="store_true", help="rewrite docs/fidelity.md with re-pointed lines")
    args = parser.parse_args(argv)
    text = DOC.read_text()
    fixed, unresolved = repoint(text)
    if args.fix and fixed != text:
        DOC.write_text(fixed)
    changed = sum(a != b for a, b in zip(text.splitlines(), fixed.splitlines(), strict=True))
    print(f"{DOC}: {changed} row(s) {'re-pointed' if args.fix else 'to re-point (--fix)'}")
    for reference in unresolved:
        print(f"unresolved: {reference} (the symbol is not in that file any more: edit the row)")
    return 1 if unresolved or (changed and not args.fix) else 0


if __name__ == "__main__":
    raise SystemExit(main())
