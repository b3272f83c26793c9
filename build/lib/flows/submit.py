"""Submit: build a job's shards and create its batches, then return at once.

The batches take minutes to hours; `collect` (scheduled every few minutes) finishes the run.
A flow never holds a worker while OpenAI works.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from schemas.job import JobSpec
from tasks import runs, steps


@flow(name="submit", log_prints=True)
def submit(job: JobSpec, full: bool = False, retry_failed: bool = False) -> str:
    """Build and submit one run of a job; return its run folder.

    Documents this job version already finished are skipped unless `full`; terminal failures
    are retried only with `retry_failed`.
    """
    logger = get_run_logger()
    run_dir = steps.prepare_run(job, full, retry_failed)
    created = steps.submit_shards(run_dir)
    manifest = runs.load_manifest(run_dir)
    logger.info(
        "run %s: %d requests in %d shard(s), %d batch(es) created, %d document(s) rejected; "
        "estimated batch cost $%.4f",
        manifest.run_id,
        manifest.counts.requests,
        len(manifest.shards),
        created,
        manifest.counts.documents_rejected,
        manifest.estimate_usd or 0.0,
    )
    return run_dir
