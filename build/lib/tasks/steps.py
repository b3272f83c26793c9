"""Thin Prefect tasks around the run steps in `tasks.runs`; they pass run folders, not data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
from botocore.exceptions import BotoCoreError, ClientError
from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun

from schemas.job import JobSpec
from tasks import runs
from tasks.gateway import get_gateway

_TRANSIENT = (
    openai.APIConnectionError,
    openai.APITimeoutError,
    openai.InternalServerError,
    openai.RateLimitError,
    BotoCoreError,
    ClientError,
    ConnectionError,
    TimeoutError,
)


def _is_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry API and storage hiccups; never retry a bad job or a broken invariant."""
    try:
        state.result()
    except _TRANSIENT:
        return True
    except Exception:
        return False
    return False


@task(
    name="prepare_run",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_is_transient,
)
def prepare_run(job: JobSpec, full: bool = False, retry_failed: bool = False) -> str:
    """Build the shards of a new run (or resume this job's open run); return its folder."""
    manifest = runs.prepare_run(
        job, full=full, retry_failed=retry_failed, progress=_build_progress(every=20_000)
    )
    return manifest.run_dir


def _build_progress(every: int) -> Callable[[int], None]:
    """A progress callback that logs how many documents were read, every `every` of them."""
    logger = get_run_logger()
    started = time.monotonic()
    state = {"seen": 0, "next": every}

    def advance(n: int) -> None:
        state["seen"] += n
        if state["seen"] >= state["next"]:
            rate = state["seen"] / max(time.monotonic() - started, 1e-9)
            logger.info("read %d documents (%.0f/s)", state["seen"], rate)
            state["next"] += every

    return advance


@task(
    name="submit_shards",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_is_transient,
)
def submit_shards(run_dir: str) -> int:
    """Upload shards and create their batches, within the enqueued-token limit."""
    manifest = runs.load_manifest(run_dir)
    job = JobSpec.model_validate(manifest.job)
    gateway = get_gateway(manifest.backend)
    return runs.submit_ready(
        manifest, gateway, max_in_flight_tokens=job.limits.max_in_flight_tokens
    )


@task(
    name="advance_run",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_is_transient,
)
def advance_run(run_dir: str) -> dict[str, Any]:
    """Poll, download, parse, retry and finish what can be finished now for one run."""
    manifest = runs.advance_run(run_dir)
    return {"run_id": manifest.run_id, "status": manifest.status}


@task(
    name="cancel_run",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_is_transient,
)
def cancel_run(run_dir: str) -> str:
    """Cancel a run's in-flight batches."""
    return runs.cancel_run(run_dir).status
