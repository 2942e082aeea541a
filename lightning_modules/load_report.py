"""What `load_weights` did: per encoder part, tensors loaded of those expected, and the decoder seeds.

Printed after every load, so a run's log says which tensors came from where (`loaded N/M ...`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Seed:
    """What one decoder stage received from an encoder stage (`decoder_seeds`)."""

    target: str
    source: str
    loaded: int
    expected: int
    skipped: int  # mirrored tensors of another shape (e.g. another head count), left at their init

    def __str__(self) -> str:
        skipped = f", {self.skipped} of another shape left at init" if self.skipped else ""
        return (
            f"  seeded `{self.target}` from `{self.source}`: {self.loaded}/{self.expected} tensors{skipped}"
        )


@dataclass
class PartLoad:
    """What one load put into one encoder part: `loaded` of `expected` tensors, and the decoder seeds."""

    part: str
    source: str
    loaded: int
    expected: int
    missing: list[str]
    unexpected: list[str]
    extra: list[str]  # tensors loaded outside the part and its seeds (e.g. a classifier's norm)
    seeds: list[Seed] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded}/{self.expected} tensors into `{self.part}` from {self.source}"]
        for label, names in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("also loaded", self.extra),
        ):
            if names:
                shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
                lines.append(f"  {label}: {shown}")
        return "\n".join(lines + [str(seed) for seed in self.seeds])


@dataclass
class LoadReport:
    """All parts a `load_weights` call touched."""

    parts: list[PartLoad] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(p.loaded for p in self.parts)

    @property
    def expected(self) -> int:
        return sum(p.expected for p in self.parts)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.parts) or "no weights loaded (source none)"
