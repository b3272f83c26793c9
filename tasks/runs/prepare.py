"""Preparing: build a run's shards, estimate, refuse if over budget, or resume the open run."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson

from schemas.documents import Document, RejectedDocument
from schemas.job import JobSpec
from schemas.manifest import RunManifest, RunOptions, utcnow
from tasks import storage, tables
from tasks.build import BuildCounts, build_shards
from tasks.estimate import BudgetExceededError, check_budget, price_counts
from tasks.failpoints import failpoint
from tasks.gateway import EMBEDDED, OPENAI, default_backend
from tasks.ledger import Ledger
from tasks.locks import LockBusy, lease
from tasks.pricing import load_pricing
from tasks.runs.carry import answered_for, write_carried
from tasks.runs.finalize import finalize_run
from tasks.runs.reduce import plan_reduce
from tasks.runs.stages import shard_record
from tasks.runs.store import (
    RunError,
    _iter_lines,
    _open_marker,
    list_open_runs,
    load_manifest,
    manifest_uri,
    save_manifest,
)
from tasks.runs.submit import any_batch_created

log = logging.getLogger(__name__)


def _describe(options: RunOptions) -> str:
    flags = [
        name
        for name, on in (("--full", options.full), ("--retry-failed", options.retry_failed))
        if on
    ]
    return " ".join(flags) or "no options"


def new_run_id(job: JobSpec, now: datetime) -> str:
    return f"{job.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{job.fingerprint()[:8]}"


def _remove_unborn_runs(job: JobSpec) -> None:
    """Remove the folders of this job's runs that never began: a process killed while it
    wrote a new run's first manifest left the folder with only that file's temporary copy,
    which no later command opens (a run without a manifest is no run). Called under the
    job's lease, which every process creating one of its runs holds."""
    runs_dir = storage.join(job.output, "runs")
    if storage.local_path(runs_dir) is None:
        return  # S3: an object appears whole, so a manifest is there or nothing is
    own = re.compile(rf"{re.escape(job.name)}-\d{{8}}T\d{{6}}Z-[0-9a-f]{{8}}(?:-\d+)?")
    for name in storage.list_dirs(runs_dir):
        run_dir = storage.join(runs_dir, name)
        if not own.fullmatch(name) or storage.exists(manifest_uri(run_dir)):
            continue
        if storage.remove_temp_files(run_dir, stem="manifest.json"):
            log.info("removed %s: a run killed before its first manifest was written", name)
        with contextlib.suppress(OSError):  # only when nothing else is in it
            Path(run_dir).rmdir()


def prepare_run(
    job: JobSpec,
    *,
    full: bool = False,
    retry_failed: bool = False,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
    backend: str | None = None,
) -> RunManifest:
    """Start a run (or resume this job's open run): build shards, estimate, refuse if over budget.

    Unless `full`, documents the ledger holds as done by this job version are skipped; terminal
    failures are skipped too unless `retry_failed`. The options are recorded in the manifest,
    so a run resumed before its build finished is built the way it was asked for (a resume
    that asks for more, e.g. `full`, gets it too). A lease per job keeps two processes from
    starting the same job's run twice. A run with nothing to send is closed at once as done,
    its rejected documents in its errors table.
    """
    try:
        with lease(storage.join(job.output, "runs", "_locks", job.name)):
            manifest = _prepare_run(
                job,
                full=full,
                retry_failed=retry_failed,
                progress=progress,
                now=now,
                backend=backend,
            )
            if manifest.is_open and not manifest.shards and not manifest.counts.requests:
                _close_empty_run(manifest, job)
            return manifest
    except LockBusy as exc:
        raise RunError(f"job {job.name} is being submitted by another process ({exc})") from None


def _close_empty_run(manifest: RunManifest, job: JobSpec) -> None:
    """Finish a run that built no request now, rather than at the next collect."""
    try:
        with lease(storage.join(manifest.run_dir, "lock")):
            if plan_reduce(manifest, job):  # carried documents to combine (killed before)
                return
            finalize_run(manifest, job)
    except LockBusy:
        log.info("%s is being collected by another process, which will close it", manifest.run_id)


def _prepare_run(
    job: JobSpec,
    *,
    full: bool,
    retry_failed: bool,
    progress: Callable[[int], None] | None,
    now: datetime | None,
    backend: str | None,
) -> RunManifest:
    fingerprint = job.fingerprint()
    backend = backend or default_backend()
    elsewhere: list[RunManifest] = []
    for run_dir in list_open_runs(job.output):
        existing = load_manifest(run_dir)
        if not existing.is_open:
            # Killed after finishing but before the marker went: finish the close.
            storage.delete(_open_marker(job.output, existing.run_id))
            continue
        if existing.job_name == job.name and existing.job_fingerprint == fingerprint:
            if existing.backend != backend and not _move_backend(existing, backend):
                elsewhere.append(existing)
                continue
            asked = RunOptions(
                full=full or existing.options.full,
                retry_failed=retry_failed or existing.options.retry_failed,
            )
            if existing.shards:
                if asked != existing.options:
                    log.warning(
                        "resuming open run %s as it was built (%s); it is not rebuilt with %s",
                        existing.run_id,
                        _describe(existing.options),
                        _describe(asked),
                    )
                log.info("resuming open run %s", existing.run_id)
                return existing
            manifest = existing
            if asked != manifest.options:
                manifest.notes.append(f"resumed with {_describe(asked)}")
                manifest.options = asked
                save_manifest(manifest)
            break
    else:
        _remove_unborn_runs(job)
        now = now or utcnow()
        run_id = new_run_id(job, now)
        run_dir = storage.join(job.output, "runs", run_id)
        taken = 1
        while elsewhere and storage.exists(manifest_uri(run_dir)):
            # Another run of this job version started this same second (on another backend).
            taken += 1
            run_id = f"{new_run_id(job, now)}-{taken}"
            run_dir = storage.join(job.output, "runs", run_id)
        manifest = RunManifest(
            run_id=run_id,
            job_name=job.name,
            job_fingerprint=fingerprint,
            job=job.model_dump(mode="json"),
            run_dir=run_dir,
            output=job.output,
            backend=backend,
            created_at=now,
            max_attempts=job.limits.max_attempts,
            options=RunOptions(full=full, retry_failed=retry_failed),
        )
        save_manifest(manifest)
        storage.write_bytes(_open_marker(job.output, run_id), b"")
    failpoint("after-run-created")

    should_process: Callable[[Document | RejectedDocument], bool] | None = None
    options = manifest.options
    ledger = (
        Ledger.load(job.output, job.name, fingerprint, retry_failed=options.retry_failed)
        if not options.full
        else Ledger(set())
    )
    for other in elsewhere:
        # Never send twice what another open run of this job version already has: its
        # documents stay with it, on its backend, and end in its tables.
        skipped = _claim_documents(other, ledger)
        note = (
            f"run {other.run_id} of this job stays open on {other.backend} with batches "
            f"created there; this run on {manifest.backend} leaves out its {skipped} "
            f"document(s). {_how_to_reach(other.backend)}, or cancel it with "
            f"`overnight cancel {other.run_id}` (a later run then picks its documents up)."
        )
        log.warning("%s", note)
        manifest.notes.append(note)
    # Chunks of split documents processed again that an earlier run answered are not sent.
    answered = answered_for(job, fingerprint, ledger)
    if ledger.filters:
        should_process = ledger
    summary = build_shards(job, manifest.run_dir, should_process=should_process, progress=progress)
    manifest.counts.documents_seen = summary.documents_seen
    manifest.counts.documents_skipped = summary.documents_skipped
    manifest.counts.documents_rejected = summary.rejected_count
    manifest.counts.requests = summary.requests
    manifest.counts.input_tokens_estimated = summary.input_tokens
    manifest.rejected_uri = summary.rejected_uri
    counted = BuildCounts(
        documents_seen=summary.documents_seen,
        documents_skipped=summary.documents_skipped,
        documents_built=summary.documents_built,
        documents_rejected=summary.documents_rejected,
        requests=summary.requests,
        input_tokens=summary.input_tokens,
        documents_chunked=summary.documents_chunked,
        chunked_requests=summary.chunked_requests,
    )
    estimate = price_counts(job, counted, shards=len(summary.shards), pricing=load_pricing())
    manifest.estimate_usd = estimate.batch_cost_max_usd
    manifest.estimate_assumes = "; ".join(estimate.assumptions)
    try:
        check_budget(job, estimate)
    except BudgetExceededError as exc:
        manifest.status = "cancelled"
        manifest.notes.append(f"refused: {exc}")
        manifest.finished_at = utcnow()
        save_manifest(manifest)
        storage.delete(_open_marker(job.output, manifest.run_id))
        raise RunError(str(exc)) from None
    manifest.shards = [shard_record(info, attempt=1) for info in summary.shards]
    write_carried(manifest, answered, job.output_model(), summary.carried_documents)
    manifest.status = "in_progress"
    save_manifest(manifest)
    # Documents whose every chunk was carried are ready to combine now.
    plan_reduce(manifest, job)
    failpoint("after-build")
    return manifest


def _move_backend(manifest: RunManifest, backend: str) -> bool:
    """Move an open run to `backend` if none of its batches was ever created; say so.

    A shard that reached `creating` may have a batch on the old backend (the create call can
    succeed unseen), so such a run stays where it is. Uploaded files are left behind: the
    shards upload again to the new backend.
    """
    if any_batch_created(manifest):
        return False
    note = (
        f"moving run {manifest.run_id} from {manifest.backend or 'an unknown backend'} to "
        f"{backend}: no batch had been created yet"
    )
    log.warning("%s", note)
    manifest.notes.append(note)
    manifest.backend = backend
    for shard in manifest.shards:
        shard.state = "built"
        shard.file_id = None
        shard.updated_at = utcnow()
    save_manifest(manifest)
    return True


def _claim_documents(other: RunManifest, ledger: Ledger) -> int:
    """Add another open run's documents (requested or rejected) to the skip set; count them."""
    claimed: set[tuple[str, str | None]] = set()
    for shard in other.shards:
        if shard.attempt != 1:
            continue  # retries re-send requests of attempt 1: same documents
        index = tables.read_parquet(shard.index_uri, columns=["document_id", "content_sha256"])
        claimed.update(index.iter_rows())
    for line in _iter_lines(other.rejected_uri):
        record = orjson.loads(line)
        claimed.add((str(record["document_id"]), record.get("content_sha256")))
    for document_id, content_sha256 in claimed:
        ledger.skip(document_id, content_sha256)
    return len(claimed)


def _how_to_reach(backend: str) -> str:
    if backend == EMBEDDED:
        return (
            "`overnight collect` finishes it on the embedded local Batch API (simulated "
            "answers), whatever OPENAI_API_KEY says"
        )
    url = "" if backend == OPENAI else f" and OPENAI_BASE_URL={backend}"
    return f"To collect it, set OPENAI_API_KEY{url} again and run `overnight collect`"
