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
    last_line = ""
    with reporting.live_progress(manifest) as show:
        while True:
            steps.advance_run(run_dir)
            manifest = runs.load_manifest(run_dir)
            update_progress_artifact(
                progress_id, progress=100 * reporting.progress_fraction(manifest)
            )
            line = reporting.progress_line(manifest)
            if not show(manifest) and line.split(",", 1)[0] != last_line.split(",", 1)[0]:
                logger.info(line)  # no terminal to draw on: a log line when progress moves
                last_line = line
            if not manifest.is_open:
                break
            time.sleep(poll_seconds)
    logger.info(reporting.progress_line(manifest))
    reporting.publish_artifacts(manifest)
    return {
        "run_id": manifest.run_id,
        "run_dir": run_dir,
        "status": manifest.status,
        "results": manifest.counts.results,
        "errors": manifest.counts.errors,
        "tables": manifest.tables,
    }
