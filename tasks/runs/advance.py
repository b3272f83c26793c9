"""Advancing a run: the one place that orders the steps.

Each step is a plain function of a run's manifest that does one kind of work and records every
change before the next one, so a process killed at any moment leaves a run that the next
`collect` finishes. Steps in order:

    prepare_run → submit_ready → poll_batches → download_outputs → parse_outputs
                → plan_reduce → plan_retries → finalize_run

`plan_reduce` does something only for jobs whose chunk outputs are reduced into one output per
document (`chunking.output = "document"`): its shards are then submitted by the same
`submit_ready`, in the same call, and go through the same steps.

`advance_run` runs the ones after `prepare_run` once; `collect` calls it every few minutes.
"""

from __future__ import annotations

import logging

from schemas.job import JobSpec
from schemas.manifest import RunManifest, utcnow
from tasks import storage
from tasks.gateway import Gateway
from tasks.locks import LockBusy, lease
from tasks.runs.download import download_outputs
from tasks.runs.finalize import finalize_run
from tasks.runs.parse import parse_outputs
from tasks.runs.poll import poll_batches
from tasks.runs.prepare import _prepare_run
from tasks.runs.reduce import plan_reduce
from tasks.runs.retry import plan_retries
from tasks.runs.store import RunError, _open_marker, load_manifest, save_manifest
from tasks.runs.submit import any_batch_created, run_gateway, submit_ready

log = logging.getLogger(__name__)


def record_problem(run_dir: str, problem: str) -> None:
    """Note on an open run why the last attempt to move it forward failed (`status` shows it)."""
    try:
        with lease(storage.join(run_dir, "lock"), wait_seconds=0):
            manifest = load_manifest(run_dir)
            manifest.problem = problem
            manifest.problem_at = utcnow()
            save_manifest(manifest)
    except (LockBusy, RunError, OSError) as exc:
        log.warning("could not record the problem on %s: %s", run_dir, exc)


def advance_run(run_dir: str, *, gateway: Gateway | None = None) -> RunManifest:
    """Do every step that can be done now for one run; safe to call any number of times.

    When another process holds the run's lease, this call does nothing and returns the run
    as it stands.
    """
    try:
        with lease(storage.join(run_dir, "lock")):
            return _advance_run(run_dir, gateway=gateway)
    except LockBusy as exc:
        log.info("skipping %s this time: %s", run_dir, exc)
        return load_manifest(run_dir)


def _advance_run(run_dir: str, *, gateway: Gateway | None) -> RunManifest:
    manifest = load_manifest(run_dir)
    # A temporary file in the run's folder is a killed writer's (a part, a shard, an output
    # file), and would stay forever. A build writes there under the job's lease, not the
    # run's: only files idle for 10 minutes go.
    removed = storage.remove_temp_files(run_dir, recursive=True, idle_seconds=600)
    if removed:
        log.info("removed %d temporary file(s) a killed process left in %s", removed, run_dir)
    if not manifest.is_open:
        # Killed after finishing but before the open marker went: finish the close.
        storage.delete(_open_marker(manifest.output, manifest.run_id))
        return manifest
    job = JobSpec.model_validate(manifest.job)
    if manifest.status == "submitting":
        manifest = _prepare_run(
            job,
            full=manifest.options.full,
            retry_failed=manifest.options.retry_failed,
            progress=None,
            now=None,
            backend=manifest.backend,
        )
    if manifest.cancel_requested and not any_batch_created(manifest):
        # Nothing reached the API: the cancelled run closes here, whatever its backend.
        finalize_run(manifest, job)
        return manifest
    gateway = gateway or run_gateway(manifest)
    submit_ready(manifest, gateway, max_in_flight_tokens=job.limits.max_in_flight_tokens)
    poll_batches(manifest, gateway)
    download_outputs(manifest, gateway)
    parse_outputs(manifest, job)
    plan_reduce(manifest, job)
    plan_retries(manifest, job)
    # Finished batches freed enqueued-token room, and retries or reduce requests may be
    # waiting: send them now.
    submit_ready(manifest, gateway, max_in_flight_tokens=job.limits.max_in_flight_tokens)
    finalize_run(manifest, job)
    if manifest.problem is not None:
        manifest.problem = manifest.problem_at = None
        save_manifest(manifest)
    return manifest
