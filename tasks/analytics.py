"""The analyst's side: DuckDB views over the parquet tables, and the cost and outcome report.

Views: `results`, `errors`, `costs` (every file, Hive partitions `job` and `run_date` added
back) and `latest` (per job and document, the rows of the newest run that produced a result,
so nobody deduplicates by hand). Outputs on S3 are mirrored into a local cache first (only
new or changed objects are fetched), since DuckDB's S3 extension is not always installable.
"""

from __future__ import annotations

import os
import shutil
import weakref
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from pydantic import BaseModel

from tasks import costreport, scratch, storage, tables

VIEWS = ("results", "errors", "costs", "latest")


class NoOutputError(Exception):
    """The location holds no overnight tables and no runs: most likely a mistyped -o."""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "overnight" / "query"


def mirror(output: str) -> Path:
    """A local folder holding the output's tables: the folder itself, or a synced S3 mirror."""
    local = storage.local_path(output)
    if local is not None:
        return local
    bucket, prefix = storage.split_s3(output)
    root = _cache_root() / bucket / prefix.strip("/")
    for table in tables.TABLES:
        wanted: set[Path] = set()
        for info in storage.list_files(storage.join(output, table), include=["*.parquet"]):
            target = root / table / info.key
            stamp = target.with_name(target.name + ".etag")
            wanted.add(target)
            if target.exists() and stamp.exists() and stamp.read_text() == info.version:
                continue
            storage.write_bytes(str(target), storage.read_bytes(info.uri))
            stamp.write_text(info.version)
        for stale in (root / table).rglob("*.parquet") if (root / table).exists() else []:
            if stale not in wanted:
                stale.unlink()
    return root


def _files(root: Path, table: str) -> list[str]:
    return sorted(str(p) for p in (root / table).glob("job=*/run_date=*/*.parquet"))


def _empty_file(table: str, folder: Path) -> str:
    schema = {
        "results": tables.results_schema(_NoFields),
        "errors": tables.errors_schema(),
        "costs": tables.costs_schema(),
        "chunks": tables.results_schema(_NoFields),
    }[table]
    path = folder / f"{table}.parquet"
    pl.DataFrame(schema=schema).with_columns(
        pl.lit(None, pl.String).alias("job"), pl.lit(None, pl.Date).alias("run_date")
    ).write_parquet(path)
    return str(path)


class _NoFields(BaseModel):
    pass


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _local_copy(uri: str, root: Path) -> str:
    """A local path for a part file: itself, or a cached copy of the S3 object."""
    local = storage.local_path(uri)
    if local is not None:
        return str(local)
    _, key = storage.split_s3(uri)
    target = root / "_open" / key
    if not target.exists():  # parts of parsed batches never change: cache by name
        storage.write_bytes(str(target), storage.read_bytes(uri))
    return str(target)


PartGroups = dict[tuple[str, str, str], list[str]]
"""(job, run_date, row filter) → part files; the filter is SQL, or "" for every row."""


def partial_parts(output: str, root: Path) -> dict[str, PartGroups]:
    """The parquet parts of every parsed batch of the open runs, by table and group.

    These rows are final for their requests (a retried request is not among them), but the
    run's tables are not written yet; the views show them with `partial = true`. For a job
    with one row per document, a split document's chunk answers are not results: only the
    map rows of one-request documents and the reduce rows are (as `finalize` writes them).
    """
    from tasks import runs
    from tasks.runs.stages import stage_of

    found: dict[str, PartGroups] = {"results": {}, "errors": {}}
    for run_dir in runs.list_open_runs(output):
        try:
            manifest = runs.load_manifest(run_dir)
        except runs.RunError:
            continue
        if not manifest.is_open:  # finished while we looked: its tables hold these rows
            continue
        per_document = manifest.job.get("chunking", {}).get("output") == "document"
        day = manifest.created_at.date().isoformat()
        for shard in manifest.shards:
            if shard.state != "parsed":
                continue
            only = "chunk_count <= 1" if per_document and stage_of(shard) == "map" else ""
            for table, groups in found.items():
                parts = [_local_copy(u, root) for u in runs.part_uris(manifest, table, shard)]
                groups.setdefault((manifest.job_name, day, only), []).extend(parts)
    return found


def connect(output: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views over an output location (local or S3).

    `results` and `errors` also hold the rows of the batches that open runs have parsed so
    far, with `partial = true`; finished runs' rows have `partial = false`.
    """
    root = mirror(output)
    if not any(_files(root, table) for table in tables.TABLES) and not storage.list_dirs(
        storage.join(output, "runs")
    ):
        raise NoOutputError(
            f"no overnight output under {output}: it has no results, errors or costs tables "
            "and no runs; check --output (-o) or --job"
        )
    open_parts = partial_parts(output, root)
    con = duckdb.connect()
    # The empty tables' files, read by the views for as long as the connection lives.
    folder = scratch.make_dir("query")
    weakref.finalize(con, shutil.rmtree, folder, True)
    for table in tables.TABLES:
        files = _files(root, table)
        if files:
            listing = ", ".join(_quote(f) for f in files)
            source = (
                f"read_parquet([{listing}], hive_partitioning = true, union_by_name = true, "
                "hive_types = {'job': VARCHAR, 'run_date': DATE})"
            )
        else:
            source = f"read_parquet({_quote(_empty_file(table, folder))})"
        if table not in open_parts:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {source}")
            continue
        selects = [f"SELECT *, false AS partial FROM {source}"]
        for (job, run_date, only), parts in open_parts[table].items():
            listing = ", ".join(_quote(f) for f in parts)
            selects.append(
                f"SELECT *, {_quote(job)} AS job, DATE {_quote(run_date)} AS run_date, "
                f"true AS partial FROM read_parquet([{listing}], union_by_name = true)"
                + (f" WHERE {only}" if only else "")
            )
        con.execute(f"CREATE VIEW {table} AS " + " UNION ALL BY NAME ".join(selects))
    con.execute(
        """
        CREATE VIEW latest AS
        SELECT * FROM results
        QUALIFY run_id = max_by(run_id, written_at) OVER (PARTITION BY job, document_id)
        """
    )
    return con


def query(output: str, sql: str) -> pl.DataFrame:
    """Run SQL against the views; return the answer as a polars DataFrame."""
    return _frame(connect(output), sql)


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """Fetch a DuckDB answer as a polars DataFrame (without needing pyarrow)."""
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)


def report(
    output: str, *, since: date | None = None, until: date | None = None
) -> dict[str, pl.DataFrame]:
    """Outcomes and cost per day, job and model, and failures by reason, within a date range.

    `daily` counts the documents that were sent (a long document is several requests);
    `failures` counts rejected documents (stage load or build, no request was made) under
    `documents` and failed requests (stage api or validation) under `requests`.
    """
    con = connect(output)
    where = []
    if since:
        where.append(f"run_date >= DATE '{since.isoformat()}'")
    if until:
        where.append(f"run_date <= DATE '{until.isoformat()}'")
    cond = ("WHERE " + " AND ".join(where)) if where else ""
    sent = " AND ".join([*where, "custom_id IS NOT NULL"])
    daily = _frame(
        con,
        f"""
        WITH docs AS (
            SELECT run_date, job, model, coalesce(simulated, false) AS simulated,
                   count(DISTINCT document_id) AS documents
            FROM (SELECT run_date, job, model, simulated, document_id, custom_id FROM results
                  UNION ALL
                  SELECT run_date, job, model, simulated, document_id, custom_id FROM errors)
            WHERE {sent}
            GROUP BY ALL
        ),
        spend AS (
            SELECT run_date, job, model, coalesce(simulated, false) AS simulated,
                   sum(requests) AS requests, sum(succeeded) AS succeeded, sum(failed) AS failed,
                   sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
                   sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
                   sum(batch_cost_usd) AS batch_cost_usd, sum(standard_cost_usd) AS standard_cost_usd,
                   sum(savings_usd) AS savings_usd, sum(estimated_cost_usd) AS estimated_cost_usd,
                   string_agg(DISTINCT pricing_as_of, ', ' ORDER BY pricing_as_of) AS pricing_as_of
            FROM costs {cond} GROUP BY ALL
        )
        SELECT spend.run_date, spend.job, spend.model, spend.simulated,
               coalesce(docs.documents, 0) AS documents,
               requests, succeeded, failed, input_tokens, cached_tokens, output_tokens,
               reasoning_tokens, batch_cost_usd, standard_cost_usd, savings_usd,
               estimated_cost_usd, pricing_as_of
        FROM spend LEFT JOIN docs USING (run_date, job, model, simulated)
        ORDER BY spend.run_date, spend.job, spend.model, spend.simulated
        """,
    )
    reasons = _frame(
        con,
        f"""
        SELECT run_date, job, stage, code, coalesce(retryable, false) AS retryable,
               count(DISTINCT document_id) AS documents,
               count(custom_id) AS requests
        FROM errors {cond} GROUP BY run_date, job, stage, code, retryable
        ORDER BY run_date, job, stage IN ('api', 'validation'), documents + requests DESC, code
        """,
    )
    return {"daily": daily, "failures": reasons}


def report_markdown(parts: dict[str, pl.DataFrame], *, title: str) -> str:
    """The report as Markdown (also what the terminal shows): totals first, then the detail."""
    return costreport.markdown(costreport.build(parts, title=title))


def report_html(parts: dict[str, pl.DataFrame], *, title: str) -> str:
    """A self-contained HTML page to read and print: totals, a labelled chart, the tables."""
    return costreport.page(costreport.build(parts, title=title))
