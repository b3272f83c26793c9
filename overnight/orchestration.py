"""Whether a command runs its steps directly or as Prefect flows, and the terminal's logging.

With no Prefect API configured, `run`, `submit` and `collect` call the lifecycle's steps in
this process: no temporary Prefect server is started, so the first command on a new machine
does not wait for one to migrate its database, and a killed command leaves nothing behind.
With `PREFECT_API_URL` set (in the environment or the active Prefect profile), the same
commands run as the flows that `prefect.yaml` deploys and report to that server.
"""

from __future__ import annotations

import logging
import os
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.logging import RichHandler

from overnight._terminal import PrintableFormatter

OUR_LOGGERS = ("tasks", "flows", "overnight")


class PrefectUnreachable(Exception):
    """PREFECT_API_URL is set but nothing answers there."""


def prefect_api_url() -> str | None:
    """The Prefect API this process would report to, without importing Prefect."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    profile = data.get("profiles", {}).get(active, {})
    value = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(value) if value else None


def check_prefect_api(url: str, *, timeout: float = 5.0) -> None:
    """Raise PrefectUnreachable unless something answers HTTP at the Prefect API's address."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered (Prefect Cloud wants a key for /health): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrefectUnreachable(
            f"cannot reach the Prefect API at {url} ({reason}): start it "
            "(`prefect server start`), or unset PREFECT_API_URL to run without Prefect"
        ) from None


def log_to_terminal(console: Console, *, debug: bool) -> None:
    """Show overnight's own log lines (INFO and up, DEBUG with --debug) on the terminal,
    control characters in them (from file names, API messages) shown as escapes."""
    handler: logging.Handler
    if console.is_terminal:
        # Through the console, so lines print above the live progress table, not through it.
        handler = RichHandler(
            console=console,
            show_path=False,
            omit_repeated_times=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="%H:%M:%S",
        )
        handler.setFormatter(PrintableFormatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(
            PrintableFormatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
        )
    level = logging.DEBUG if debug else logging.INFO
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("localbatch").setLevel(logging.WARNING)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes to whatever `sys.stderr` is at the time of each line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _NoFailureTracebacks(logging.Filter):
    """Keep Prefect's failure records (and their tracebacks) off the terminal.

    The command prints the failure itself, in one line; the records still go to the Prefect
    API, where the flow run's page shows the whole traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None or record.levelno >= logging.ERROR:
            return False
        return not record.getMessage().startswith("Finished in state Failed")


def quiet_prefect_failures() -> None:
    """Install the filter on every Prefect console handler of this process."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _NoFailureTracebacks) for f in handler.filters
            ):
                handler.addFilter(_NoFailureTracebacks())
