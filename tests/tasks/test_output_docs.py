"""The documented output columns are the columns written: analysts rely on docs/outputs.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.summary import DocumentSummary
from tasks import tables

DOC = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"


def documented(section: str) -> list[tuple[str, str]]:
    """(column, type) rows of the markdown tables under a `## section` heading."""
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z_0-9]+) \| ([A-Z][^|]*?) \|", body, flags=re.MULTILINE)
    return [(name, kind.strip()) for name, kind in rows]


@pytest.mark.parametrize(
    ("section", "schema"),
    [
        ("results", tables.results_schema(DocumentSummary)),
        ("errors", tables.errors_schema()),
        ("costs", tables.costs_schema()),
        # chunks has the columns of results; its section lists those before the schema's.
        (
            "chunks",
            {
                name: dtype
                for name, dtype in tables.results_schema(DocumentSummary).items()
                if name not in DocumentSummary.model_fields
            },
        ),
    ],
)
def test_documented_columns_match_written_columns(section: str, schema: dict[str, object]) -> None:
    actual = [(name, tables.type_name(dtype)) for name, dtype in schema.items()]  # type: ignore[arg-type]
    assert documented(section) == actual
