"""The run steps as Prefect tasks, and the runtime that the flows hand to `tasks.lifecycle`.

The tasks are thin wrappers around `tasks.runs`; they pass run folders, not data, and retry
the same transient failures, with the same delays, as the CLI's direct runtime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import reporting, runs
from tasks.build import build_progress
from tasks.lifecycle import RETRY_DELAYS, is_transient


def _is_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry API and storage hiccups; never retry a bad job or a broken invariant."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


_RETRIES: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": _is_transient,
}


@task(name="prepare_run", **_RETRIES)
def prepare_run(job: JobSpec, full: bool = False, retry_failed: bool = False) -> str:
    """Build the shards of a new run (or resume this job's open run); return its folder."""
    progress = build_progress(get_run_logger().info, every=20_000)
    manifest = runs.prepare_run(job, full=full, retry_failed=retry_failed, progress=progress)
    return manifest.run_dir


@task(name="submit_shards", **_RETRIES)
def submit_shards(run_dir: str) -> int:
    """Upload shards and create their batches, within the enqueued-token limit."""
    return runs.submit_run(run_dir)


@task(name="advance_run", **_RETRIES)
def advance_run(run_dir: str) -> dict[str, Any]:
    """Poll, download, parse, retry and finish what can be finished now for one run."""
    manifest = runs.advance_run(run_dir)
    return {"run_id": manifest.run_id, "status": manifest.status}


@dataclass
class PrefectRuntime:
    """Steps as Prefect tasks of the current flow run, with a progress artifact and reports."""

    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = field(
        default_factory=get_run_logger
    )
    _progress_id: UUID | None = None

    def prepare_run(self, job: JobSpec, full: bool, retry_failed: bool) -> str:
        return prepare_run(job, full, retry_failed)

    def submit_shards(self, run_dir: str) -> int:
        return submit_shards(run_dir)

    def advance_run(self, run_dir: str) -> dict[str, Any]:
        return advance_run(run_dir)

    def show_progress(self, manifest: RunManifest) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        progress = 100 * reporting.progress_fraction(manifest)
        if self._progress_id is None:
            created = create_progress_artifact(
                progress=progress, description=f"Requests of run {manifest.run_id} finished"
            )
            assert isinstance(created, UUID)
            self._progress_id = created
        else:
            update_progress_artifact(self._progress_id, progress=progress)

    def publish(self, manifest: RunManifest) -> None:
        reporting.publish_artifacts(manifest)
