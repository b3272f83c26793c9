"""What a person sees of a run: a progress table, a run report, Prefect artifacts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import polars as pl
from rich.console import Console
from rich.live import Live
from rich.table import Table

from schemas.manifest import RunManifest, ShardRecord, utcnow
from tasks import tables


def progress_fraction(manifest: RunManifest) -> float:
    """Share of the run's requests that have reached a final row or a finished batch."""
    total = manifest.counts.requests
    if not total:
        return 1.0 if not manifest.is_open else 0.0
    first = [s for s in manifest.shards if s.attempt == 1]
    done = 0
    for shard in first:
        if shard.state == "parsed":
            done += shard.requests
        else:
            counts = shard.request_counts
            done += int(counts.get("completed", 0)) + int(counts.get("failed", 0))
    return min(done / total, 1.0)


def _elapsed(since: datetime) -> str:
    seconds = int((utcnow() - since).total_seconds())
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _phase(shard: ShardRecord, manifest: RunManifest) -> str:
    """What a shard is doing, in words: done, running, waiting for room, ..."""
    if shard.state == "parsed":
        return "done"
    if shard.state in ("built", "uploading", "uploaded"):
        waiting = any(s.in_flight for s in manifest.shards)
        return "waiting for room" if waiting and not manifest.cancel_requested else "to submit"
    if shard.state in ("creating", "created"):
        return "running"
    return "collecting"  # terminal or downloaded: files are being fetched and parsed


def time_left(shard: ShardRecord) -> float | None:
    """Seconds a running batch needs still, from its progress so far; None if unknown."""
    counts = shard.request_counts
    total = int(counts.get("total") or 0)
    done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
    if shard.running_since is None or not total or not done or done >= total:
        return None
    running = (utcnow() - shard.running_since).total_seconds()
    return running * (total - done) / done


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_table(manifest: RunManifest) -> Table:
    """One row per batch: phase, request counts, rows landed, time left; with the run's totals."""
    left = [t for s in manifest.shards if (t := time_left(s)) is not None]
    eta = f" · about {_duration(max(left))} left" if left else ""
    table = Table(
        title=f"{manifest.run_id} · {manifest.status} · {_elapsed(manifest.created_at)} elapsed"
        f" · {progress_fraction(manifest):.0%}{eta}",
        title_justify="left",
    )
    for column in ("shard", "phase", "batch", "done / failed / total", "rows", "time left"):
        table.add_column(column, justify="right" if column not in ("shard", "phase") else "left")
    for shard in manifest.shards:
        counts = shard.request_counts
        landed = f"{shard.results} ok, {shard.errors} err" if shard.state == "parsed" else ""
        table.add_row(
            shard.key,
            _phase(shard, manifest),
            shard.batch_status or "-",
            f"{counts.get('completed', 0)} / {counts.get('failed', 0)} / "
            f"{counts.get('total', shard.requests) or shard.requests}",
            landed,
            _duration(time_left(shard)) if shard.state == "created" else "",
        )
    return table


@contextmanager
def live_progress(manifest: RunManifest) -> Iterator[Callable[[RunManifest], bool]]:
    """On a terminal, redraw the progress table in place; yields `show(manifest) -> drawn`.

    While it is drawn, Prefect's per-task log lines are held back (they would tear the table);
    off a terminal, `show` draws nothing and returns False so the caller logs instead.
    """
    console = Console(stderr=True, markup=False, emoji=False)  # cells hold text as is
    if not console.is_terminal:
        yield lambda _manifest: False
        return
    quiet = logging.getLogger("prefect.task_runs")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    live = Live(progress_table(manifest), console=console, auto_refresh=False)
    live.start()

    def show(current: RunManifest) -> bool:
        live.update(progress_table(current), refresh=True)
        return True

    try:
        yield show
    finally:
        live.stop()
        quiet.setLevel(level)


def progress_line(manifest: RunManifest) -> str:
    states: dict[str, int] = {}
    for shard in manifest.shards:
        key = shard.batch_status or shard.state
        states[key] = states.get(key, 0) + 1
    phases = ", ".join(f"{n} {k}" for k, n in sorted(states.items()))
    return (
        f"{manifest.run_id}: {progress_fraction(manifest):.0%} of {manifest.counts.requests} "
        f"requests, batches: {phases or 'none'}, {_elapsed(manifest.created_at)} elapsed"
    )


def read_costs(manifest: RunManifest) -> pl.DataFrame | None:
    uri = manifest.tables.get("costs")
    if not uri:
        return None
    return tables.read_parquet(uri)


def cost_table(costs: pl.DataFrame) -> Table:
    simulated = "simulated" in costs.columns and bool(costs["simulated"].any())
    title = (
        "cost · SIMULATED by the local Batch API: no model ran, nothing was billed"
        if simulated
        else "cost"
    )
    table = Table(title=title, title_justify="left")
    columns = [
        ("model", "model"),
        ("requests", "requests"),
        ("succeeded", "ok"),
        ("failed", "failed"),
        ("input_tokens", "in tok"),
        ("cached_tokens", "cached"),
        ("output_tokens", "out tok"),
        ("batch_cost_usd", "batch $"),
        ("standard_cost_usd", "std $"),
        ("estimated_cost_usd", "est. $"),
    ]
    for _, label in columns:
        table.add_column(label, justify="left" if label == "model" else "right")
    for row in costs.iter_rows(named=True):
        cells = []
        for name, _ in columns:
            value = row[name]
            if isinstance(value, float):
                cells.append(f"{value:.4f}")
            elif value is None:
                cells.append("-")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


def run_report(manifest: RunManifest, costs: pl.DataFrame | None) -> str:
    """A markdown report of one run: counts, reasons for failure, cost, where the data is."""
    c = manifest.counts
    lines = [
        f"# Run `{manifest.run_id}`",
        "",
        f"- job: `{manifest.job_name}` (fingerprint `{manifest.job_fingerprint[:12]}`)",
        f"- status: **{manifest.status}**, backend: {manifest.backend}",
        f"- documents: {c.documents_seen} seen, {c.documents_skipped} skipped as unchanged, "
        f"{c.documents_rejected} rejected",
        f"- requests: {c.requests} → {c.results} results, {c.errors - c.documents_rejected} "
        "request errors",
        f"- estimate at submit: ${manifest.estimate_usd or 0:.4f} ({manifest.estimate_assumes})",
        "",
    ]
    if costs is not None and not costs.is_empty():
        lines += [
            "| model | requests | ok | failed | batch $ | standard $ | saved $ |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in costs.iter_rows(named=True):
            lines.append(
                f"| {r['model']} | {r['requests']} | {r['succeeded']} | {r['failed']} | "
                f"{r['batch_cost_usd']:.6f} | {r['standard_cost_usd']:.6f} | {r['savings_usd']:.6f} |"
            )
        lines.append("")
    if manifest.tables:
        lines.append("## Tables")
        lines += [f"- {name}: `{uri}`" for name, uri in manifest.tables.items()]
    if manifest.notes:
        lines += ["", "## Notes", *[f"- {n}" for n in manifest.notes]]
    return "\n".join(lines) + "\n"


def publish_artifacts(manifest: RunManifest) -> None:
    """Attach the cost table and the run report to the current Prefect flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    costs = read_costs(manifest)
    key = manifest.run_id.lower().replace("_", "-")[:60].rstrip("-")
    if costs is not None and not costs.is_empty():
        create_table_artifact(
            key=f"{key}-costs",
            table=costs.drop("written_at").to_dicts(),
            description=f"Cost of run {manifest.run_id} by model",
        )
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=run_report(manifest, costs),
        description=f"Report of run {manifest.run_id}",
    )
