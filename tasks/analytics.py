"""The analyst's side: DuckDB views over the parquet tables, and the cost and outcome report.

Views: `results`, `errors`, `costs` (every file, Hive partitions `job` and `run_date` added
back) and `latest` (per job and document, the rows of the newest run that produced a result,
so nobody deduplicates by hand). Outputs on S3 are mirrored into a local cache first (only
new or changed objects are fetched), since DuckDB's S3 extension is not always installable.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel

from tasks import storage, tables

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


def partial_parts(output: str, root: Path) -> dict[str, dict[tuple[str, str], list[str]]]:
    """The parquet parts of every parsed batch of the open runs, by table and (job, run_date).

    These rows are final for their requests (a retried request is not among them), but the
    run's tables are not written yet; the views show them with `partial = true`.
    """
    from tasks import runs

    found: dict[str, dict[tuple[str, str], list[str]]] = {"results": {}, "errors": {}}
    for run_dir in runs.list_open_runs(output):
        try:
            manifest = runs.load_manifest(run_dir)
        except runs.RunError:
            continue
        if not manifest.is_open:  # finished while we looked: its tables hold these rows
            continue
        group = (manifest.job_name, manifest.created_at.date().isoformat())
        for shard in manifest.shards:
            if shard.state != "parsed":
                continue
            for table, groups in found.items():
                parts = [_local_copy(u, root) for u in runs.part_uris(manifest, table, shard)]
                groups.setdefault(group, []).extend(parts)
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
    scratch = Path(tempfile.mkdtemp(prefix="overnight-query-"))
    for table in tables.TABLES:
        files = _files(root, table)
        if files:
            listing = ", ".join(_quote(f) for f in files)
            source = (
                f"read_parquet([{listing}], hive_partitioning = true, union_by_name = true, "
                "hive_types = {'job': VARCHAR, 'run_date': DATE})"
            )
        else:
            source = f"read_parquet({_quote(_empty_file(table, scratch))})"
        if table not in open_parts:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {source}")
            continue
        selects = [f"SELECT *, false AS partial FROM {source}"]
        for (job, run_date), parts in open_parts[table].items():
            listing = ", ".join(_quote(f) for f in parts)
            selects.append(
                f"SELECT *, {_quote(job)} AS job, DATE {_quote(run_date)} AS run_date, "
                f"true AS partial FROM read_parquet([{listing}], union_by_name = true)"
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
    """Outcomes and cost per day, job and model, and failures by reason, within a date range."""
    con = connect(output)
    where = []
    if since:
        where.append(f"run_date >= DATE '{since.isoformat()}'")
    if until:
        where.append(f"run_date <= DATE '{until.isoformat()}'")
    cond = ("WHERE " + " AND ".join(where)) if where else ""
    daily = _frame(
        con,
        f"""
        WITH docs AS (
            SELECT run_date, job, model, count(DISTINCT document_id) AS documents
            FROM (SELECT run_date, job, model, document_id FROM results
                  UNION ALL SELECT run_date, job, model, document_id FROM errors) {cond}
            GROUP BY ALL
        ),
        spend AS (
            SELECT run_date, job, model, coalesce(simulated, false) AS simulated,
                   sum(requests) AS requests, sum(succeeded) AS succeeded, sum(failed) AS failed,
                   sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
                   sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
                   sum(batch_cost_usd) AS batch_cost_usd, sum(standard_cost_usd) AS standard_cost_usd,
                   sum(savings_usd) AS savings_usd, sum(estimated_cost_usd) AS estimated_cost_usd
            FROM costs {cond} GROUP BY ALL
        )
        SELECT spend.run_date, spend.job, spend.model, spend.simulated,
               coalesce(docs.documents, 0) AS documents,
               requests, succeeded, failed, input_tokens, cached_tokens, output_tokens,
               reasoning_tokens, batch_cost_usd, standard_cost_usd, savings_usd,
               estimated_cost_usd
        FROM spend LEFT JOIN docs USING (run_date, job, model)
        ORDER BY spend.run_date, spend.job, spend.model, spend.simulated
        """,
    )
    reasons = _frame(
        con,
        f"""
        SELECT run_date, job, stage, code, count(*) AS requests
        FROM errors {cond} GROUP BY ALL ORDER BY run_date, job, requests DESC, code
        """,
    )
    return {"daily": daily, "failures": reasons}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6f}"
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _markdown_table(df: pl.DataFrame) -> list[str]:
    if df.is_empty():
        return ["(none)"]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * df.width]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return lines


def report_markdown(parts: dict[str, pl.DataFrame], *, title: str) -> str:
    daily = parts["daily"]
    totals = (
        daily.select(
            pl.sum("batch_cost_usd"),
            pl.sum("standard_cost_usd"),
            pl.sum("savings_usd"),
            pl.sum("estimated_cost_usd"),
            pl.sum("requests"),
            pl.sum("failed"),
        ).row(0, named=True)
        if not daily.is_empty()
        else None
    )
    lines = [f"# {title}", ""]
    warning = _simulated_warning(daily)
    if warning:
        lines += [f"> **SIMULATED** — {warning}", ""]
    if totals:
        lines += [
            f"- batch cost: **${totals['batch_cost_usd']:,.4f}** "
            f"(standard API: ${totals['standard_cost_usd']:,.4f}, saved ${totals['savings_usd']:,.4f})",
            f"- estimated at submit: ${totals['estimated_cost_usd'] or 0:,.4f}",
            f"- requests: {totals['requests']:,}, failed: {totals['failed']:,}",
            "",
        ]
    lines += ["## Per day, job and model", "", *_markdown_table(daily), ""]
    lines += ["## Failures by reason", "", *_markdown_table(parts["failures"]), ""]
    return "\n".join(lines)


def _simulated_warning(daily: pl.DataFrame) -> str:
    """What share of the report the simulator answered, in words; empty when none."""
    if daily.is_empty() or "simulated" not in daily.columns:
        return ""
    simulated = daily.filter(pl.col("simulated").fill_null(False))
    if simulated.is_empty():
        return ""
    n, total = int(simulated["requests"].sum()), int(daily["requests"].sum())
    return (
        f"{n:,} of {total:,} requests were answered by overnight's simulator (the embedded "
        "local Batch API), not by a model: those rows have simulated = true, are not real "
        "results, and their costs are only what OpenAI would have charged."
    )


def report_html(parts: dict[str, pl.DataFrame], *, title: str) -> str:
    """A self-contained HTML page: the tables and an inline SVG bar chart of daily cost."""
    import html

    daily = parts["daily"]
    per_day = (
        daily.group_by("run_date")
        .agg(pl.sum("batch_cost_usd"), pl.sum("standard_cost_usd"))
        .sort("run_date")
        if not daily.is_empty()
        else pl.DataFrame({"run_date": [], "batch_cost_usd": [], "standard_cost_usd": []})
    )
    peak = max([*per_day["standard_cost_usd"].to_list(), 1e-12])
    bar_w, gap, height = 28, 12, 160
    bars = []
    for i, (day, batch, standard) in enumerate(per_day.iter_rows()):
        x = 40 + i * (2 * bar_w + gap)
        for j, (value, color) in enumerate(((standard, "#c8c8d0"), (batch, "#2f6fdf"))):
            h = max(1.0, height * value / peak)
            bars.append(
                f'<rect x="{x + j * bar_w}" y="{20 + height - h:.1f}" width="{bar_w - 2}" '
                f'height="{h:.1f}" fill="{color}"><title>{day}: ${value:.4f}</title></rect>'
            )
        bars.append(f'<text x="{x}" y="{height + 36}" font-size="10">{day}</text>')
    width = 60 + len(per_day) * (2 * bar_w + gap)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(width, 300)}" height="{height + 50}">'
        + "".join(bars)
        + "</svg>"
    )

    def table(df: pl.DataFrame) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
            for row in df.iter_rows()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    return (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}</style>"
        f"<h1>{html.escape(title)}</h1>"
        + (
            "<p style='background:#fff3cd;border:2px solid #d39e00;padding:8px'>"
            f"<strong>SIMULATED</strong> — {html.escape(warning)}</p>"
            if (warning := _simulated_warning(daily))
            else ""
        )
        + "<h2>Daily cost (grey: standard API, blue: batch)</h2>"
        f"{svg}<h2>Per day, job and model</h2>{table(daily)}"
        f"<h2>Failures by reason</h2>{table(parts['failures'])}"
    )
