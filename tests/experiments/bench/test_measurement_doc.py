"""docs/measurements.md's generator runs end to end (on small grids: it checks the script, not the numbers)."""

from __future__ import annotations

import pytest

from experiments.bench import measurement_doc


@pytest.mark.slow
def test_the_page_is_written_with_every_section(tmp_path):
    page = tmp_path / "docs" / "measurements.md"
    assert (
        measurement_doc.main(
            ["--quick", "--output", str(page), "--super1-mask", str(tmp_path / "absent.tif")]
        )
        == 0
    )
    text = page.read_text()
    for heading in ("## Quantities", "## Touching particles", "## Layer thickness", "## The cases of issue 18",
                    "## Error bars on known answers", "## A real mask"):  # fmt: skip
        assert heading in text, heading
    assert "{" not in text.replace("{}", "")  # every placeholder filled
    assert "20 of 24.0 px" in text and "Not measured: the Super1 mask was not found" in text
