"""The pipeline commands: run, submit, collect, status, cancel."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from overnight._terminal import TerminalConsole, printable

if TYPE_CHECKING:
    from schemas.job import JobSpec
    from schemas.manifest import RunManifest

# Text from documents, file names and answers is printed as is: rich markup ("[/INST]",
# "[1]") and emoji codes (":smile:") are read only where a line asks for them (`markup=True`,
# its values escaped). Control characters in it are shown as escapes (`TerminalConsole`).
console = TerminalConsole(stderr=True, markup=False, emoji=False)
# Piped output (CI logs, files) gets a wide page rather than rich's 80-column default.
out = TerminalConsole(markup=False, emoji=False, width=None if sys.stdout.isatty() else 160)

JobFile = Annotated[
    Path, typer.Argument(help="Job file (TOML or YAML), e.g. data/jobs/nightly_summary.toml")
]
Output = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Output location (folder or s3://bucket/prefix)."),
]


def debugging() -> bool:
    """--debug (or OVERNIGHT_DEBUG=1): show tracebacks instead of one-line errors."""
    return os.environ.get("OVERNIGHT_DEBUG", "").lower() in ("1", "true", "yes")


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(
        f"[red]error:[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )
    return typer.Exit(code)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn the failures a user can act on into one line and exit code 2, not a traceback."""
    import openai
    from botocore.exceptions import BotoCoreError, ClientError

    from overnight.orchestration import PrefectUnreachable
    from schemas.job import JobSpecError
    from tasks.build import BuildError
    from tasks.gateway import GatewayError
    from tasks.lifecycle import describe_failure
    from tasks.pricing import PricingError
    from tasks.runs import RunError
    from tasks.sources import SourceError
    from tasks.storage import StorageError

    try:
        yield
    except (
        openai.APIError,
        RunError,
        GatewayError,
        BuildError,
        SourceError,
        StorageError,
        JobSpecError,
        PricingError,
        PrefectUnreachable,
        BotoCoreError,
        ClientError,
        OSError,  # the local disk: not a folder, no permission, no space
    ) as exc:
        if debugging():
            raise
        raise _fail(describe_failure(exc)) from None


@contextmanager
def reading_progress(every: int = 50_000) -> Iterator[Callable[[int], None]]:
    """A callback counting documents read, shown while the block runs: a live count on a
    terminal (gone when done), else a line on stderr every `every` documents."""
    if not console.is_terminal:
        from tasks.build import build_progress

        yield build_progress(console.print, every=every)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("reading documents: {task.completed:,.0f} read"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("read", total=None)
        yield lambda n: bar.advance(task, n)


def _load(job_file: Path) -> JobSpec:
    from schemas.job import JobSpecError, load_job

    try:
        return load_job(job_file)
    except (JobSpecError, OSError) as exc:
        if debugging():
            raise
        raise _fail(str(exc)) from None


def _output_of(job_file: Path | None, output: str | None) -> str:
    if output:
        return output
    if job_file is None:
        raise _fail("give a job file or --output")
    return str(_load(job_file).output)


Full = Annotated[
    bool, typer.Option("--full", help="Process every document, not only new and changed ones.")
]
RetryFailed = Annotated[
    bool,
    typer.Option("--retry-failed", help="Also retry documents that ended in a terminal error."),
]


def _with_prefect() -> bool:
    """True when a Prefect API is configured (and answers): run the commands as flows."""
    from overnight.orchestration import check_prefect_api, prefect_api_url

    url = prefect_api_url()
    if url is None:
        return False
    check_prefect_api(url)
    return True


def _quiet_prefect() -> None:
    if not debugging():
        from overnight.orchestration import quiet_prefect_failures

        quiet_prefect_failures()


def run(job_file: JobFile, full: Full = False, retry_failed: RetryFailed = False) -> None:
    """Submit a job, wait for its batches with live progress, and write the parquet tables."""
    from tasks.runs import load_manifest

    job = _load(job_file)
    try:
        with _clear_errors():
            if _with_prefect():
                from flows.run import run as run_flow

                _quiet_prefect()
                summary = run_flow(job, full=full, retry_failed=retry_failed)
            else:
                from tasks.lifecycle import DirectRuntime, run_job

                summary = run_job(
                    job, full=full, retry_failed=retry_failed, runtime=DirectRuntime()
                )
    except KeyboardInterrupt:
        console.print(_stopped_message(job, job_file), markup=True)
        raise typer.Exit(130) from None
    _print_outcome(load_manifest(summary["run_dir"]))


def _stopped_message(job: JobSpec, job_file: Path) -> str:
    """What Ctrl-C left behind: batches that go on, or a run stopped before it sent any."""
    from tasks.runs import load_manifest
    from tasks.runs.store import list_open_runs

    collect = f"`overnight collect {escape(str(job_file))}`"
    sent: bool | None = None  # None: no open run of this job (it stopped before making one)
    try:
        for run_dir in list_open_runs(job.output):
            manifest = load_manifest(run_dir)
            if manifest.job_name == job.name:
                sent = sent or any(shard.batch_id for shard in manifest.shards)
    except Exception:  # a message only: say what is surely true
        return f"\n[yellow]Stopped.[/yellow] {collect} finishes the run, if it started one."
    if sent:
        return (
            f"\n[yellow]Stopped waiting.[/yellow] The run's batches go on; {collect} finishes it."
        )
    if sent is False:
        return (
            f"\n[yellow]Stopped[/yellow] before the run's batches were sent; {collect} sends them."
        )
    return "\n[yellow]Stopped[/yellow] before a run was made: nothing was sent."


def _print_outcome(manifest: RunManifest) -> None:
    """The run's cost table and where its tables are."""
    from tasks.reporting import cost_table, read_costs

    costs = read_costs(manifest)
    if costs is not None and not costs.is_empty():
        out.print(cost_table(costs))
    c = manifest.counts
    # Every request the cost table counts: a split document's combining request included.
    combining = f" ({c.reduce_requests} combining split documents)" if c.reduce_requests else ""
    if c.carried:
        combining += f" + {c.carried} chunk answer(s) carried from earlier runs, not sent again"
    out.print(
        f"run {escape(manifest.run_id)}: [bold]{manifest.status}[/bold] · {c.documents_seen} "
        f"documents ({c.documents_skipped} unchanged, {c.documents_rejected} rejected) · "
        f"{c.requests + c.reduce_requests} requests{combining} → {c.results} results, "
        f"{c.errors} error rows",
        markup=True,
    )
    for name, uri in manifest.tables.items():
        out.print(f"  {name:8} {uri}", highlight=False, soft_wrap=True)
    if not c.documents_seen:
        source = manifest.job.get("source") or {}
        filtered = source.get("include") or source.get("exclude")
        matching = " matching its include/exclude patterns" if filtered else ""
        console.print(
            f"warning: the source {source.get('uri')} holds no documents{matching}: check "
            "source.uri in the job file",
            highlight=False,
            soft_wrap=True,
        )
    if c.errors:
        _print_error_reasons(manifest, warn=c.results == 0 and c.requests > 0)


_SHOWN_REASONS = 6
_EXAMPLE_CHARS = 200
"""An example error message's length at most in the run's closing lines (the table has all)."""


def _print_error_reasons(manifest: RunManifest, *, warn: bool) -> None:
    """The commonest reasons rows ended in `errors`, each with its count and one example
    message (examples differ within a reason: each names its own document); how to list the
    rest when there are more."""
    import polars as pl

    from tasks import tables

    errors = tables.read_parquet(
        manifest.tables["errors"], columns=["stage", "code", "document_id", "message"]
    )
    reasons = (
        errors.group_by("stage", "code")
        .agg(pl.len().alias("rows"), pl.col("document_id").first(), pl.col("message").first())
        .sort("rows", "stage", "code", descending=[True, False, False])
    )
    if warn:
        out.print("[bold red]No request succeeded.[/bold red] Most common reasons:", markup=True)
    else:
        out.print("errors by reason:")
    for stage, code, rows, document, message in reasons.head(_SHOWN_REASONS).iter_rows():
        # On one line. Control characters are made escapes first: splitting at whitespace
        # would make a carriage return (and other controls) a space, hiding it.
        example = " ".join(printable(f"{document}: {message or ''}").split())
        if len(example) > _EXAMPLE_CHARS:  # cut at a word, and say so
            example = example[: _EXAMPLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
        out.print(f"  {rows:>7} {stage}/{code}  e.g. {example}", highlight=False, soft_wrap=True)
    rest = reasons.slice(_SHOWN_REASONS)
    if rest.height:
        sql = (
            "select stage, code, count(*) as n from errors "
            f"where run_id = '{manifest.run_id}' group by all order by n desc"
        )
        out.print(
            f"  and {rest.height} more reason(s), {rest.get_column('rows').sum()} row(s): "
            f'overnight query -o {shlex.quote(manifest.output)} "{sql}"',
            highlight=False,
            soft_wrap=True,
        )


def submit(job_file: JobFile, full: Full = False, retry_failed: RetryFailed = False) -> None:
    """Build and submit a job's batches, and return at once; `collect` finishes the run."""
    job = _load(job_file)
    with _clear_errors():
        if _with_prefect():
            from flows.submit import submit as submit_flow

            _quiet_prefect()
            run_dir = submit_flow(job, full=full, retry_failed=retry_failed)
        else:
            from tasks.lifecycle import DirectRuntime, submit_job

            run_dir = submit_job(job, full=full, retry_failed=retry_failed, runtime=DirectRuntime())
    out.print(f"submitted: {run_dir}", highlight=False)


def collect(
    job_file: Annotated[
        Path | None, typer.Argument(help="Job file whose output to collect.")
    ] = None,
    output: Output = None,
) -> None:
    """Move every open run forward: poll, download, validate, retry, write tables.

    Each run goes on its own: one that fails is reported (exit code 2) and recorded in its
    manifest, where `overnight status` shows it; the others are still collected.
    """
    location = _output_of(job_file, output)
    with _clear_errors():
        if _with_prefect():
            from flows.collect import CollectFailed
            from flows.collect import collect as collect_flow

            _quiet_prefect()
            try:
                outcomes = collect_flow(location)
            except CollectFailed as exc:
                raise _fail(str(exc)) from None
            for done in outcomes:
                out.print(f"{done['run_id']}: {done['status']}", highlight=False)
            return
        from tasks.lifecycle import DirectRuntime, collect_output

        found = collect_output(location, runtime=DirectRuntime())
    for outcome in found:
        if outcome.problem:
            console.print(
                f"[red]error:[/red] run {escape(outcome.run_id)}: {escape(outcome.problem)}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
        else:
            out.print(f"{outcome.run_id}: {outcome.status}", highlight=False)
    if any(o.problem for o in found):
        raise typer.Exit(2)


def status(
    job_file: Annotated[Path | None, typer.Argument(help="Job file whose runs to list.")] = None,
    output: Output = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Show one run's batches.")] = None,
) -> None:
    """List runs with their progress, or one run's batches."""
    from rich.table import Table

    from tasks import reporting, runs, storage

    location = _output_of(job_file, output)
    if run_id:
        with _clear_errors():
            manifest = runs.load_manifest(storage.join(location, "runs", run_id))
        out.print(reporting.progress_table(manifest))
        for note in manifest.notes:
            out.print(note, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"runs under {location}", title_justify="left")
    for column in ("run", "status", "progress", "requests", "results", "errors", "estimate $"):
        table.add_column(column)
    problems = []
    waiting = 0
    found = runs.list_runs(location)
    if not found:
        raise _fail(f"no overnight runs under {location}: check the job file or --output")
    for run_dir in found:
        m = runs.load_manifest(run_dir)
        if m.is_open and m.problem:
            problems.append(m)
        elif m.is_open:
            waiting += 1
        refused = any(note.startswith("refused:") for note in m.notes)
        shown = "cancelling" if m.is_open and m.cancel_requested else m.status
        table.add_row(
            m.run_id,
            f"{shown} (refused: nothing sent)" if refused else shown,
            f"{reporting.progress_fraction(m):.0%}",
            str(m.counts.requests),
            *(
                (str(m.counts.results), str(m.counts.errors))
                if not m.is_open
                else (
                    f"{sum(s.results for s in m.shards)} so far",
                    f"{sum(s.errors for s in m.shards)} so far",
                )
            ),
            f"{m.estimate_usd or 0:.4f}",
        )
    out.print(table)
    if waiting:
        # Progress is what the last `run` or `collect` saw: nothing polls between commands.
        target = shlex.quote(str(job_file)) if job_file else f"-o {shlex.quote(location)}"
        out.print(
            f"{waiting} open run(s): progress as last seen; `overnight collect {target}` "
            "checks their batches and moves them on (a `run` still waiting does it too)",
            highlight=False,
            soft_wrap=True,
        )
    for m in problems:
        when = m.problem_at.strftime("%Y-%m-%d %H:%M UTC") if m.problem_at else "last time"
        out.print(
            f"[red]{escape(m.run_id)}[/red] could not move forward ({when}): "
            f"{escape(m.problem or '')}\n  fix that, then `overnight collect` carries it on; "
            f"or give it up with `overnight cancel {escape(m.run_id)}`",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )


def cancel(
    run_id: Annotated[str, typer.Argument(help="The run to cancel.")],
    job_file: Annotated[
        Path | None, typer.Argument(help="Job file whose output holds the run.")
    ] = None,
    output: Output = None,
) -> None:
    """Cancel a run's batches; `collect` then records every cancelled request."""
    from tasks import runs, storage

    location = _output_of(job_file, output)
    with _clear_errors():
        manifest = runs.cancel_run(storage.join(location, "runs", run_id))
    said = {
        "cancelled": "cancelled",
        "already_finished": "already finished: its results are collected and billed",
        "not_submitted": "not submitted: it will not be sent",
        "failed": "failed to cancel",
    }
    out.print(f"cancel requested for {manifest.run_id}:", highlight=False)
    for c in manifest.cancels:
        status = f" ({c.batch_status})" if c.batch_status else ""
        detail = f": {c.message}" if c.outcome == "failed" and c.message else ""
        out.print(
            f"  {c.shard}  {c.batch_id or '-'}  {said[c.outcome]}{status}{detail}",
            highlight=False,
        )
    tally = {outcome: 0 for outcome in said}
    for c in manifest.cancels:
        tally[c.outcome] += 1
    out.print(
        f"{tally['cancelled']} cancelled, {tally['already_finished']} already finished, "
        f"{tally['not_submitted']} not submitted, {tally['failed']} failed; "
        "run `overnight collect` to record it",
        highlight=False,
    )
    if tally["failed"]:
        raise _fail(
            f"{tally['failed']} batch(es) could not be cancelled; run "
            f"`overnight cancel {manifest.run_id}` again to retry them",
            code=1,
        )


Format = Literal["table", "csv", "parquet", "json"]


def query(
    sql: Annotated[str, typer.Argument(help="SQL over the views results, errors, costs, latest.")],
    job_file: Annotated[
        Path | None, typer.Option("--job", help="Job file whose output to query.")
    ] = None,
    output: Output = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = "table",
    to: Annotated[Path | None, typer.Option("--to", help="Write the answer to this file.")] = None,
) -> None:
    """Query the outputs with DuckDB SQL; print a table or write CSV, parquet or JSON."""
    import duckdb

    from tasks.analytics import NoOutputError
    from tasks.analytics import query as run_query

    location = _output_of(job_file, output)
    try:
        with _clear_errors():
            answer = run_query(location, sql)
    except duckdb.Error as exc:
        raise _fail(f"query failed: {exc}") from None
    except NoOutputError as exc:
        raise _fail(str(exc)) from None
    if fmt == "table" and to is None:
        from rich.table import Table

        table = Table(show_lines=False)
        for column in answer.columns:
            table.add_column(column)
        for row in answer.iter_rows():
            table.add_row(*["" if v is None else str(v) for v in row])
        out.print(table)
        out.print(f"{answer.height} row(s)")
        return
    if fmt == "parquet" and to is None:
        raise _fail("--format parquet needs --to FILE")
    with _clear_errors():  # a --to folder that does not exist: one line
        if fmt in ("table", "csv"):
            text = answer.write_csv()
            if to is None:
                sys.stdout.write(text)
            else:
                to.write_text(text)
        elif fmt == "json":
            text = answer.write_json()
            if to is None:
                sys.stdout.write(text + "\n")
            else:
                to.write_text(text)
        elif to is not None:
            answer.write_parquet(to)
    if to is not None:
        console.print(f"wrote {answer.height} row(s) to {to}")


def report(
    job_file: Annotated[
        Path | None, typer.Option("--job", help="Job file whose output to report on.")
    ] = None,
    output: Output = None,
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day.")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day.")] = None,
    to: Annotated[
        Path | None, typer.Option("--to", help="Write a .md or .html report here.")
    ] = None,
) -> None:
    """Outcomes and cost per day, job and model: what a team lead and finance ask for."""
    from tasks.analytics import NoOutputError, report_html, report_markdown
    from tasks.analytics import report as build_report

    location = _output_of(job_file, output)
    try:
        with _clear_errors():
            parts = build_report(
                location,
                since=since.date() if since else None,
                until=until.date() if until else None,
            )
    except NoOutputError as exc:
        raise _fail(str(exc)) from None
    title = f"overnight report: {location}"
    if to is None:
        from rich.markdown import Markdown

        # A report reads best at most 100 columns wide; its tables are made to fit that.
        # Markdown makes its text without the console's `render_str`: escaped here.
        out.print(
            Markdown(printable(report_markdown(parts, title=title))), width=min(out.width, 100)
        )
        return
    text = (
        report_html(parts, title=title)
        if to.suffix in (".html", ".htm")
        else report_markdown(parts, title=title)
    )
    with _clear_errors():
        to.write_text(text, encoding="utf-8")
    console.print(f"wrote {to}")


def register(app: typer.Typer) -> None:
    for command in (run, submit, collect, status, cancel, query, report):
        app.command()(command)
