"""Run: submit a job, wait with live progress, collect — for interactive use and local backends.

Ctrl-C stops the waiting, not the run: its batches go on, and `overnight collect` (or the
scheduled collect flow) finishes it later.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from rich.console import Console
from rich.live import Live

from schemas.job import JobSpec
from tasks import reporting, runs, steps
from tasks.gateway import EMBEDDED


@flow(name="run", log_prints=True)
def run(
    job: JobSpec,
    full: bool = False,
    retry_failed: bool = False,
    poll_seconds: float | None = None,
) -> dict[str, Any]:
    """Submit a job, wait for its batches, collect them; return the run's summary."""
    logger = get_run_logger()
    run_dir = steps.prepare_run(job, full, retry_failed)
    steps.submit_shards(run_dir)
    manifest = runs.load_manifest(run_dir)
    if poll_seconds is None:
        poll_seconds = 0.5 if manifest.backend == EMBEDDED else 30.0
    progress_id = create_progress_artifact(
        progress=0.0, description=f"Requests of run {manifest.run_id} finished"
    )
    assert isinstance(progress_id, UUID)
    console = Console(stderr=True)
    live = (
        Live(reporting.progress_table(manifest), console=console, auto_refresh=False)
        if (console.is_terminal)
        else None
    )
    last_line = ""
    try:
        if live is not None:
            live.start()
        while True:
            steps.advance_run(run_dir)
            manifest = runs.load_manifest(run_dir)
            update_progress_artifact(
                progress_id, progress=100 * reporting.progress_fraction(manifest)
            )
            if live is not None:
                live.update(reporting.progress_table(manifest), refresh=True)
            line = reporting.progress_line(manifest)
            if line.split(",", 1)[0] != last_line.split(",", 1)[0] or not manifest.is_open:
                logger.info(line)
                last_line = line
            if not manifest.is_open:
                break
            time.sleep(poll_seconds)
    finally:
        if live is not None:
            live.stop()
    reporting.publish_artifacts(manifest)
    return {
        "run_id": manifest.run_id,
        "run_dir": run_dir,
        "status": manifest.status,
        "results": manifest.counts.results,
        "errors": manifest.counts.errors,
        "tables": manifest.tables,
    }
