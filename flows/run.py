"""Run: submit a job, wait with live progress, collect — for interactive use and local backends.

Ctrl-C stops the waiting, not the run: its batches go on, and `overnight collect` (or the
scheduled collect flow) finishes it later.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from schemas.job import JobSpec
from tasks.lifecycle import run_job
from tasks.steps import PrefectRuntime


@flow(name="run", log_prints=True)
def run(job: JobSpec, full: bool = False, retry_failed: bool = False) -> dict[str, Any]:
    """Submit a job, wait for its batches by the polling rule, collect them; return a summary."""
    return run_job(job, full=full, retry_failed=retry_failed, runtime=PrefectRuntime())
