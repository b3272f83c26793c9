"""Submit: build a job's shards and create its batches, then return at once.

The batches take minutes to hours; `collect` (scheduled every few minutes) finishes the run.
A flow never holds a worker while OpenAI works.
"""

from __future__ import annotations

from prefect import flow

from schemas.job import JobSpec
from tasks.lifecycle import submit_job
from tasks.steps import PrefectRuntime


@flow(name="submit", log_prints=True)
def submit(job: JobSpec, full: bool = False, retry_failed: bool = False) -> str:
    """Build and submit one run of a job; return its run folder.

    Documents this job version already finished are skipped unless `full`; terminal failures
    are retried only with `retry_failed`.
    """
    return submit_job(job, full=full, retry_failed=retry_failed, runtime=PrefectRuntime())
