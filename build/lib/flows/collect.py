"""Collect: move every open run under an output location forward; safe to run at any time.

Scheduled every few minutes. Each call polls batches, downloads finished ones, validates their
lines, resubmits retryable lines, and writes the parquet tables of runs that are complete.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger

from tasks import reporting, runs, steps
from tasks.gateway import EMBEDDED


@flow(name="collect", log_prints=True)
def collect(output: str, embedded_wait_seconds: float = 300.0) -> list[dict[str, Any]]:
    """Advance every open run under `output`; return each run's id and status.

    Batches on the embedded local API only make progress while an overnight process hosts
    it, so for those runs this keeps collecting (up to `embedded_wait_seconds`) while their
    batches are in flight, instead of returning after one look.
    """
    logger = get_run_logger()
    outcomes = []
    run_dirs = runs.list_open_runs(output)
    if not run_dirs:
        logger.info("no open runs under %s", output)
    for run_dir in run_dirs:
        outcome = steps.advance_run(run_dir)
        manifest = runs.load_manifest(run_dir)
        deadline = time.monotonic() + embedded_wait_seconds
        while manifest.backend == EMBEDDED and manifest.is_open and time.monotonic() < deadline:
            time.sleep(0.5)
            outcome = steps.advance_run(run_dir)
            manifest = runs.load_manifest(run_dir)
        logger.info(reporting.progress_line(manifest))
        if not manifest.is_open:
            reporting.publish_artifacts(manifest)
        outcomes.append(outcome)
    return outcomes
