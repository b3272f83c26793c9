"""Parquet column types follow the Pydantic schema, and writes are atomic."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import polars as pl
import pytest
from pydantic import BaseModel

from tasks import tables


class LineItem(BaseModel):
    description: str
    quantity: float | None
    amount: float


class Invoice(BaseModel):
    number: str
    issued: date | None
    currency: Literal["EUR", "USD"]
    paid: bool
    items: list[LineItem]
    tags: list[str]
    model: str  # collides with an identity column


def test_nested_models_map_to_structs_and_lists() -> None:
    schema = tables.results_schema(Invoice)
    assert schema["number"] == pl.String
    assert schema["issued"] == pl.Date
    assert schema["currency"] == pl.String
    assert schema["paid"] == pl.Boolean
    assert schema["items"] == pl.List(
        pl.Struct({"description": pl.String, "quantity": pl.Float64, "amount": pl.Float64})
    )
    assert schema["tags"] == pl.List(pl.String)
    assert schema["output_model"] == pl.String
    assert schema["model"] == pl.String and schema["cost_usd"] == pl.Float64
    assert "job" not in schema and "run_date" not in schema, "partition columns live in the path"


def test_frame_and_round_trip(tmp_path: Path) -> None:
    values = Invoice(
        number="A-1",
        issued=date(2026, 1, 31),
        currency="EUR",
        paid=False,
        items=[LineItem(description="x", quantity=None, amount=2.5)],
        tags=["a"],
        model="m",
    ).model_dump()
    row = {tables.output_column_name(k): v for k, v in values.items()}
    row.update(run_id="r", custom_id="c", written_at=datetime(2026, 1, 1, tzinfo=UTC), cost_usd=0.1)
    schema = tables.results_schema(Invoice)
    df = tables.frame([row], schema)
    uri = str(tmp_path / "results" / "job=j" / "run_date=2026-01-01" / "r.parquet")
    tables.write_parquet(df, uri)
    back = pl.read_parquet(uri)
    assert back.schema == pl.Schema(schema)
    assert back["items"][0][0]["amount"] == 2.5
    assert back["issued"][0] == date(2026, 1, 31)
    assert not list(tmp_path.rglob("*.tmp")), "no temp files left behind"


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    uri = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError), tables.storage.open_write(str(uri)) as fh:
        fh.write(b"partial")
        raise RuntimeError("killed")
    assert not uri.exists() and not list(tmp_path.iterdir())


def test_unsupported_types_fail_clearly() -> None:
    class Odd(BaseModel):
        blob: bytes

    with pytest.raises(tables.SchemaMappingError, match="bytes"):
        tables.results_schema(Odd)


def test_results_frame_falls_back_to_pydantic_for_values_polars_cannot_read() -> None:
    class Stamped(BaseModel):
        at: datetime

    raw = '{"at": "2026-01-31T10:00:00+01:00"}'
    identity = tables.errors_schema()  # the identity columns, among others
    rows = pl.DataFrame(
        {"raw_output": [raw], **{k: [None] for k in identity}}, schema_overrides=identity
    )
    df = tables.results_frame(rows, Stamped)
    assert df["at"][0] == datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def test_a_table_is_synced_before_it_takes_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash just after a run is recorded as done must not leave its table empty: the
    staged file reaches the disk before it is renamed into place."""
    part = tmp_path / "part.parquet"
    pl.DataFrame({"a": [1, 2, 3]}).write_parquet(part)
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("rename " + Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    dest = tmp_path / "out" / "results.parquet"
    assert tables.concat_parquet([str(part)], str(dest), {"a": pl.Int64()}) == 3
    staged = [e for e in events if e.startswith("fsync .results.parquet.")]
    assert staged and events.index(staged[-1]) < events.index("rename results.parquet")
    assert pl.read_parquet(dest)["a"].to_list() == [1, 2, 3]
