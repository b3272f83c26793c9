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

app = typer.Typer(
    name="overnight",
    help="Run document jobs through the OpenAI Batch API: files in, typed parquet and costs out.",
    no_args_is_help=True,
    add_completion=False,
)

# -- commands are registered below, one block per command, each importing lazily ------------


from overnight._commands import register as _register_pipeline_commands  # noqa: E402

_register_pipeline_commands(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
