"""The `overnight` command line: run, submit, collect, status, cancel, estimate, report, query, serve.

Each command is a thin shell around a function in `flows/`, `tasks/` or `localbatch/`; heavy
imports happen inside the command so `overnight --help` stays fast.
"""

from __future__ import annotations

import os

import typer

# Prefect must not phone home from a batch pipeline; users can still override both.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Our own modules' log lines (reconciling a batch, skipping a busy run) reach the Prefect UI too.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tasks,flows")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

app = typer.Typer(
    name="overnight",
    help="Run document jobs through the OpenAI Batch API: files in, typed parquet and costs out.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's local variables can hold credentials: never print them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="OVERNIGHT_DEBUG",
        help="Show tracebacks and debug log lines instead of one-line errors.",
    ),
) -> None:
    """Run document jobs through the OpenAI Batch API: files in, typed parquet and costs out."""
    from overnight._commands import console
    from overnight.orchestration import log_to_terminal

    if debug:
        os.environ["OVERNIGHT_DEBUG"] = "1"
    log_to_terminal(console, debug=debug)


# -- commands are registered below, one block per command, each importing lazily ------------

from localbatch.cli import serve as _serve  # noqa: E402

app.command("serve")(_serve)

from pathlib import Path  # noqa: E402


@app.command()
def estimate(
    job_file: Path = typer.Argument(..., help="The job file (TOML or YAML)."),
    full: bool = typer.Option(
        False, "--full", help="Price every document, not only those the next run would send."
    ),
    retry_failed: bool = typer.Option(
        False,
        "--retry-failed",
        help="Also price documents that ended in a terminal error (as `run --retry-failed`).",
    ),
) -> None:
    """Count a job's documents, requests and tokens and price them; nothing is sent or written.

    Like `run`, it skips documents this job version already finished (see the ledger), so the
    figure is what the next run will cost; `--full` prices everything.

    Exits 1 when the maximum Batch cost is over the job's budget_usd, 2 on a bad job file,
    an unknown model or a missing source.
    """
    from rich.markup import escape

    from overnight._commands import _clear_errors, _load, reading_progress
    from overnight._terminal import TerminalConsole
    from tasks.estimate import BudgetExceededError, check_budget, estimate_job, estimate_tables

    console = TerminalConsole(markup=False, emoji=False)  # names and paths print as is
    err = TerminalConsole(stderr=True)
    job = _load(job_file)
    with _clear_errors():
        should_process = None
        if not full:
            from tasks.ledger import Ledger
            from tasks.runs.carry import answered_for

            ledger = Ledger.load(job.output, job.name, job.fingerprint(), retry_failed=retry_failed)
            # priced as the run will send them: without the chunks an earlier run answered
            answered_for(job, job.fingerprint(), ledger)
            should_process = ledger if ledger.filters else None
        with reading_progress() as progress:
            result = estimate_job(job, should_process=should_process, progress=progress)
    for table in estimate_tables(result):
        console.print(table)
    try:
        check_budget(job, result)
    except BudgetExceededError as exc:
        err.print(
            f"[red]over budget:[/red] {escape(str(exc))}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


@app.command()
def init(
    folder: Path = typer.Argument(
        Path("overnight-examples"), help="Where to put the example jobs and their documents."
    ),
) -> None:
    """Copy the example jobs and their sample documents into a folder of your own, to edit.

    Works the same from a checkout and from an installed wheel; the jobs write their results
    to FOLDER/out.
    """
    import shutil

    from overnight.resources import data_file

    target = folder / "data"
    if target.exists():
        typer.echo(f"error: {target} exists already; choose another folder", err=True)
        raise typer.Exit(2)
    for part in ("jobs", "samples"):
        shutil.copytree(data_file(part), target / part)
    typer.echo(f"wrote the example jobs to {target / 'jobs'}; try:")
    typer.echo(f"  overnight run {target / 'jobs' / 'nightly_summary.toml'}")


from overnight._commands import register as _register_pipeline_commands  # noqa: E402

_register_pipeline_commands(app)


def main() -> None:
    """Console-script entry point."""
    from tasks.processes import interrupt_outside_imports

    interrupt_outside_imports()
    app()


if __name__ == "__main__":
    main()
