"""Parquet tables: typed polars schemas from Pydantic models, atomic writes, Hive layout.

Tables live under the job's output location as
`<output>/<table>/job=<job>/run_date=<YYYY-MM-DD>/<run_id>.parquet` (table = results, errors,
costs, and chunks for jobs whose chunk outputs are reduced into one row per document). As usual for Hive layouts, the partition columns `job` and `run_date` are in the path,
not in the files; DuckDB, polars, Spark and Athena add them back when reading with Hive
partitioning.
"""

from __future__ import annotations

import enum
import functools
import shutil
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from polars._typing import PolarsDataType
from pydantic import BaseModel

from schemas.rows import RESERVED_RESULT_COLUMNS, CostRow, ErrorRow, ResultRow
from tasks import storage
from tasks.failpoints import failpoint
from tasks.scratch import scratch_dir

PARTITION_COLUMNS = ("job", "run_date")
TABLES = ("results", "errors", "costs", "chunks")


class SchemaMappingError(TypeError):
    """A Pydantic field type has no parquet column type."""


def dtype_for(annotation: Any) -> pl.DataType:
    """The polars type of a Pydantic field annotation (Optional[X] → nullable X)."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        if len(args) == 1:
            return dtype_for(args[0])
        return pl.String()
    if origin is typing.Annotated:
        return dtype_for(args[0])
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, bool) for v in values):
            return pl.Boolean()
        if all(isinstance(v, int) for v in values):
            return pl.Int64()
        return pl.String()
    if origin in (list, tuple, set, frozenset, Sequence, Iterable):
        return pl.List(dtype_for(args[0]) if args else pl.String())
    if origin in (dict, Mapping):
        return pl.String()
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return struct_for(annotation)
        if issubclass(annotation, bool):
            return pl.Boolean()
        if issubclass(annotation, enum.Enum):
            return pl.String()
        if issubclass(annotation, int):
            return pl.Int64()
        if issubclass(annotation, float | Decimal):
            return pl.Float64()
        if issubclass(annotation, str):
            return pl.String()
        if issubclass(annotation, datetime):
            return pl.Datetime("us", "UTC")
        if issubclass(annotation, date):
            return pl.Date()
    if annotation is Any:
        return pl.String()
    raise SchemaMappingError(f"no parquet column type for {annotation!r}")


@functools.lru_cache(maxsize=64)
def _field_types(model: type[BaseModel]) -> tuple[tuple[str, pl.DataType], ...]:
    """(name, polars type) of each field of `model`, worked out once per model: a collect
    asks for them for every part it writes."""
    return tuple((name, dtype_for(f.annotation)) for name, f in model.model_fields.items())


def struct_for(model: type[BaseModel]) -> pl.Struct:
    return pl.Struct(dict(_field_types(model)))


def output_column_name(field: str) -> str:
    """Schema fields become columns; a name the identity columns use gets an `output_` prefix."""
    return f"output_{field}" if field in RESERVED_RESULT_COLUMNS else field


def _file_schema(model: type[BaseModel]) -> dict[str, pl.DataType]:
    return {name: dtype for name, dtype in _field_types(model) if name not in PARTITION_COLUMNS}


def results_schema(output_model: type[BaseModel]) -> dict[str, pl.DataType]:
    """Columns of a results file: identity columns, then the job schema's fields, typed."""
    schema = _file_schema(ResultRow)
    for name, dtype in _field_types(output_model):
        schema[output_column_name(name)] = dtype
    return schema


def errors_schema() -> dict[str, pl.DataType]:
    return _file_schema(ErrorRow)


def costs_schema() -> dict[str, pl.DataType]:
    return _file_schema(CostRow)


def frame(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows (dicts) as a DataFrame with exactly the given columns and types."""
    if not rows:
        return pl.DataFrame(schema=dict(schema))
    return pl.from_dicts(list(rows), schema=dict(schema), strict=False)


def results_frame(judged: pl.DataFrame, output_model: type[BaseModel]) -> pl.DataFrame:
    """Result rows as a typed frame: identity columns as given, schema fields decoded from
    each row's `raw_output` (already validated) by polars in one vectorised pass."""
    try:
        return results_lazy(judged.lazy(), output_model).collect()
    except pl.exceptions.PolarsError:
        return results_by_pydantic(judged, output_model)


def results_lazy(judged: pl.LazyFrame, output_model: type[BaseModel]) -> pl.LazyFrame:
    """`results_frame` as a query (without its fallback: collecting may raise a PolarsError
    for a value polars cannot read as its column type; then use `results_by_pydantic`)."""
    schema = results_schema(output_model)
    identity = _file_schema(ResultRow)
    names = [output_column_name(name) for name in output_model.model_fields]
    decoded = pl.col("raw_output").str.json_decode(struct_for(output_model))
    return (
        judged.select(list(identity))
        .cast(pl.Schema(identity))
        .with_columns(decoded.struct.rename_fields(names).alias("_output"))
        .unnest("_output")
        .select(list(schema))
    )


def results_by_pydantic(judged: pl.DataFrame, output_model: type[BaseModel]) -> pl.DataFrame:
    """`results_frame` with the schema fields converted by pydantic, row by row: for values
    polars cannot read as their column type."""
    schema = results_schema(output_model)
    identity = _file_schema(ResultRow)
    base = judged.select(list(identity)).cast(pl.Schema(identity))
    if base.is_empty():
        return pl.DataFrame(schema=schema)
    values = [
        output_model.model_validate_json(raw).model_dump()
        for raw in base.get_column("raw_output").to_list()
    ]
    fields = frame(
        values, {n: dtype_for(f.annotation) for n, f in output_model.model_fields.items()}
    )
    fields = fields.rename({name: output_column_name(name) for name in fields.columns})
    return pl.concat([base, fields], how="horizontal").select(list(schema))


def table_uri(output: str, table: str, *, job: str, run_date: date, run_id: str) -> str:
    return storage.join(
        output, table, f"job={job}", f"run_date={run_date.isoformat()}", f"{run_id}.parquet"
    )


def read_parquet(uri: str, *, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """Read some columns of a parquet file or object."""
    path = storage.local_path(uri)
    source: Any = path if path is not None else storage.read_bytes(uri)
    return pl.read_parquet(source, columns=list(columns) if columns else None)


def write_parquet(df: pl.DataFrame, uri: str) -> None:
    """Write a DataFrame as one parquet file or object, atomically."""
    if storage.local_path(uri) is None:
        with storage.open_write(uri) as fh:
            df.write_parquet(fh, compression="zstd", statistics=True)
        return
    # By name, polars writes without taking the GIL for each chunk: other threads run.
    with storage.open_write_path(uri) as path:
        df.write_parquet(path, compression="zstd", statistics=True)


@contextmanager
def local_copies(sources: Sequence[str]) -> Iterator[list[str]]:
    """Local paths of parquet files or objects, for one polars query over all of them: local
    files as they are, S3 objects fetched into a temporary folder (removed on leaving)."""
    with scratch_dir("parts") as tmp:
        local: list[str] = []
        for i, uri in enumerate(sources):
            path = storage.local_path(uri)
            if path is None:
                path = Path(tmp) / f"part-{i:05d}.parquet"
                with storage.open_read(uri) as src, open(path, "wb") as out_fh:
                    shutil.copyfileobj(src, out_fh, 1 << 20)
            local.append(str(path))
        yield local


def sink(
    sources: Sequence[str],
    dest: str,
    build: Callable[[list[str]], pl.LazyFrame],
) -> int:
    """Stream a query over parquet files or objects into one parquet file, atomically.

    `build` gets local paths of `sources` (S3 objects are fetched into a temporary folder)
    and returns the LazyFrame to write; polars' streaming engine keeps memory to a few row
    groups. Returns the row count written.
    """
    with local_copies(sources) as local:
        query = build(local)
        if storage.local_path(dest) is not None:
            # Written beside the table and renamed over it once whole and synced, as every
            # local file is (a kill before then leaves the staged file for finalize to sweep).
            with storage.open_write_path(dest) as staged:
                rows = _sink_counted(query, staged)
                failpoint("table-staged")
            return rows
        with scratch_dir("sink") as tmp:
            out = Path(tmp) / "out.parquet"
            rows = _sink_counted(query, out)
            with storage.open_write(dest) as fh, open(out, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
            return rows


def _sink_counted(query: pl.LazyFrame, path: Path) -> int:
    """Stream `query` into a parquet file at `path`; return the rows written."""
    query.sink_parquet(path, compression="zstd", row_group_size=10_000)
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def concat_parquet(parts: Sequence[str], dest: str, schema: Mapping[str, pl.DataType]) -> int:
    """Concatenate parquet parts into one file (streaming); return its row count."""
    if not parts:
        write_parquet(pl.DataFrame(schema=dict(schema)), dest)
        return 0
    return sink(parts, dest, lambda paths: pl.scan_parquet(paths).select(list(schema)))


def type_name(dtype: PolarsDataType) -> str:
    """A column type as analysts see it in DuckDB (`VARCHAR`, `BIGINT`, `VARCHAR[]`, ...)."""
    if isinstance(dtype, pl.List):
        return f"{type_name(dtype.inner)}[]"
    if isinstance(dtype, pl.Struct):
        inner = ", ".join(f"{f.name} {type_name(f.dtype)}" for f in dtype.fields)
        return f"STRUCT({inner})"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    names = {
        pl.String: "VARCHAR",
        pl.Int64: "BIGINT",
        pl.Float64: "DOUBLE",
        pl.Boolean: "BOOLEAN",
        pl.Date: "DATE",
    }
    for polars_type, name in names.items():
        if dtype == polars_type:
            return name
    return str(dtype)
