"""Runs: the manifest store and the steps that move a run from built shards to parquet tables.

Each step is a plain function of a run folder (a local path or S3 URI) that reads the manifest,
does one kind of work, and records every change before the next one, so a process killed at
any moment leaves a run that the next `collect` finishes. Steps in order:

    prepare_run → submit_ready → poll_batches → download_outputs → parse_outputs
                → plan_retries → finalize_run

`advance_run` runs the ones after `prepare_run` once; `collect` calls it every few minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import openai
import orjson
import polars as pl
from pydantic import BaseModel

from schemas.build import RequestIndexRow, ShardInfo
from schemas.documents import Document, RejectedDocument
from schemas.job import JobSpec
from schemas.manifest import (
    META_JOB,
    META_RUN,
    META_SHA,
    META_SHARD,
    TERMINAL_BATCH_STATUSES,
    BatchCancel,
    RunManifest,
    RunOptions,
    ShardRecord,
    utcnow,
)
from tasks import storage, tables
from tasks.build import BuildCounts, build_shards
from tasks.estimate import BudgetExceededError, check_budget, price_counts
from tasks.failpoints import failpoint
from tasks.gateway import EMBEDDED, OPENAI, Gateway, default_backend, get_gateway
from tasks.ledger import Ledger, record_run
from tasks.locks import LockBusy, lease
from tasks.outputs import INVALID_OUTPUT_CODES, Classified, Outcome, Usage, classify_line
from tasks.polling import LOCAL, PollPolicy, due_at, policy_for, retry_after_seconds
from tasks.pricing import ModelPrice, PricingTable, UnknownModelError, cost_usd, load_pricing
from tasks.sharding import ShardWriter

log = logging.getLogger(__name__)


class RunError(Exception):
    """A run cannot proceed; the message says why and what to do."""


class InvariantError(RunError):
    """inputs ≠ results + errors: the run is not marked done."""


# -- the manifest store -------------------------------------------------------------------


def manifest_uri(run_dir: str) -> str:
    return storage.join(run_dir, "manifest.json")


def load_manifest(run_dir: str) -> RunManifest:
    try:
        data = storage.read_bytes(manifest_uri(run_dir))
    except (FileNotFoundError, OSError) as exc:
        raise RunError(f"no run at {run_dir}: {exc}") from exc
    return RunManifest.model_validate_json(data)


def save_manifest(manifest: RunManifest) -> None:
    """Write the manifest atomically."""
    manifest.updated_at = utcnow()
    storage.write_bytes(manifest_uri(manifest.run_dir), manifest.model_dump_json(indent=2).encode())


def _open_marker(output: str, run_id: str) -> str:
    return storage.join(output, "runs", "_open", run_id)


def list_open_runs(output: str) -> list[str]:
    """Run folders of the runs under an output location that are not finished yet."""
    marker_dir = storage.join(output, "runs", "_open")
    if not storage.is_s3(output) and not storage.exists(marker_dir):
        return []
    return [storage.join(output, "runs", info.key) for info in storage.list_files(marker_dir)]


def list_runs(output: str) -> list[str]:
    """Every run folder under an output location, oldest first."""
    runs_dir = storage.join(output, "runs")
    found = [
        storage.join(runs_dir, name)
        for name in storage.list_dirs(runs_dir)
        if not name.startswith("_")
    ]
    return [run_dir for run_dir in found if storage.exists(manifest_uri(run_dir))]


def _describe(options: RunOptions) -> str:
    flags = [
        name
        for name, on in (("--full", options.full), ("--retry-failed", options.retry_failed))
        if on
    ]
    return " ".join(flags) or "no options"


def new_run_id(job: JobSpec, now: datetime) -> str:
    return f"{job.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{job.fingerprint()[:8]}"


# -- preparing a run ----------------------------------------------------------------------


def _shard_record(info: ShardInfo, attempt: int) -> ShardRecord:
    return ShardRecord(**info.model_dump(), key=f"a{attempt}/{info.shard_id}", attempt=attempt)


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
    if len(ledger):
        should_process = ledger.should_process
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
    manifest.shards = [_shard_record(info, attempt=1) for info in summary.shards]
    manifest.status = "in_progress"
    save_manifest(manifest)
    failpoint("after-build")
    return manifest


def _move_backend(manifest: RunManifest, backend: str) -> bool:
    """Move an open run to `backend` if none of its batches was ever created; say so.

    A shard that reached `creating` may have a batch on the old backend (the create call can
    succeed unseen), so such a run stays where it is. Uploaded files are left behind: the
    shards upload again to the new backend.
    """
    if any(
        s.state not in ("built", "uploading", "uploaded") or s.batch_id for s in manifest.shards
    ):
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


# -- submitting -------------------------------------------------------------------------------

_TRANSIENT = (
    openai.APIConnectionError,
    openai.APITimeoutError,
    openai.InternalServerError,
    openai.RateLimitError,
)


def _metadata(manifest: RunManifest, shard: ShardRecord) -> dict[str, str]:
    return {
        META_RUN: manifest.run_id,
        META_SHARD: shard.key,
        META_SHA: shard.sha256,
        META_JOB: manifest.job_name[:512],
    }


def _create_or_adopt(gateway: Gateway, manifest: RunManifest, shard: ShardRecord) -> str | None:
    """Create the shard's batch exactly once: adopt an existing one, else create without retry.

    Returns the batch id, or None when the API rejected the batch (recorded on the shard).
    """
    assert shard.file_id is not None and shard.creating_since is not None
    wanted = {META_RUN: manifest.run_id, META_SHARD: shard.key}
    existing = gateway.find_batch(wanted, since=shard.creating_since)
    if existing is not None:
        log.info("adopting batch %s already created for %s", existing.id, shard.key)
        return existing.id
    for attempt in range(6):
        try:
            batch = gateway.create_batch(
                input_file_id=shard.file_id,
                endpoint=shard.endpoint,
                metadata=_metadata(manifest, shard),
            )
            return batch.id
        except _TRANSIENT as exc:
            log.warning("creating the batch for %s failed (%s); reconciling", shard.key, exc)
            time.sleep(min(2**attempt, 30))
            existing = gateway.find_batch(wanted, since=shard.creating_since)
            if existing is not None:
                return existing.id
        except openai.APIStatusError as exc:
            shard.batch_status = "failed"
            shard.batch_errors = [{"code": "batch_rejected", "message": str(exc)[:2000]}]
            return None
    raise RunError(f"could not create a batch for {shard.key}; run collect again later")


def submit_ready(
    manifest: RunManifest, gateway: Gateway, *, max_in_flight_tokens: int | None
) -> int:
    """Upload and create batches for waiting shards, within the enqueued-token limit.

    Returns how many batches were created. Shards past the limit wait, in order, for a later
    call once earlier batches finish.
    """
    created = 0
    in_flight = sum(s.input_tokens for s in manifest.shards if s.in_flight)
    for shard in manifest.shards:
        if shard.state == "creating":
            # Killed between "create" and "record": reconcile before anything else.
            if manifest.cancel_requested and not _adopt_for_cancel(gateway, manifest, shard):
                continue
            batch_id = _create_or_adopt(gateway, manifest, shard)
            _record_created(manifest, shard, batch_id)
            created += 1
            continue
        if shard.state not in ("built", "uploading", "uploaded"):
            continue
        if manifest.cancel_requested:
            continue
        if (
            max_in_flight_tokens is not None
            and in_flight > 0
            and in_flight + shard.input_tokens > max_in_flight_tokens
        ):
            break
        if shard.state != "uploaded":
            shard.state = "uploading"
            save_manifest(manifest)
            shard.file_id = gateway.upload(
                shard.uri, filename=f"{manifest.run_id}.{shard.key.replace('/', '.')}.jsonl"
            )
            shard.state = "uploaded"
            save_manifest(manifest)
            failpoint("after-upload")
        shard.state = "creating"
        shard.creating_since = utcnow()
        save_manifest(manifest)
        failpoint("before-create")
        batch_id = _create_or_adopt(gateway, manifest, shard)
        failpoint("after-create")
        _record_created(manifest, shard, batch_id)
        in_flight += shard.input_tokens
        created += 1
    return created


def _record_created(manifest: RunManifest, shard: ShardRecord, batch_id: str | None) -> None:
    now = utcnow()
    shard.updated_at = now
    if batch_id is None:
        shard.state = "terminal"
    else:
        shard.batch_id = batch_id
        shard.state = "created"
        shard.submitted_at = now
        shard.next_poll_at = now + timedelta(seconds=policy_for(manifest.backend).first)
    save_manifest(manifest)


def submit_run(run_dir: str) -> int:
    """Upload a run's waiting shards and create their batches; return how many were created."""
    manifest = load_manifest(run_dir)
    job = JobSpec.model_validate(manifest.job)
    gateway = get_gateway(manifest.backend)
    return submit_ready(manifest, gateway, max_in_flight_tokens=job.limits.max_in_flight_tokens)


# -- polling and downloading ------------------------------------------------------------------


def poll_batches(manifest: RunManifest, gateway: Gateway) -> int:
    """Refresh the in-flight batches that are due for a poll.

    Returns how many reached a terminal status. When each batch is next due is decided by
    `tasks.polling`: soon after creation, then less often as it ages. A poll the API answers
    with 429 or 5xx (after the client's own retries) waits for its `retry-after` instead of
    failing the run.
    """
    finished = 0
    changed = False
    policy = policy_for(manifest.backend)
    for shard in manifest.shards:
        if shard.state != "created" or shard.batch_id is None:
            continue
        now = utcnow()
        if shard.next_poll_at is not None and shard.next_poll_at > now:
            continue
        changed = True
        try:
            batch = gateway.retrieve(shard.batch_id)
        except (openai.RateLimitError, openai.InternalServerError) as exc:
            wait = retry_after_seconds(exc)
            log.warning(
                "polling batch %s answered %s; next look in %.0fs",
                shard.batch_id,
                exc.status_code,
                wait or policy.floor,
            )
            shard.next_poll_at = _due(policy, shard, now, retry_after=wait or policy.floor)
            continue
        shard.polls += 1
        shard.batch_status = batch.status
        counts = batch.request_counts
        shard.request_counts = counts.model_dump() if counts else {}
        if batch.status == "in_progress" and shard.running_since is None:
            shard.running_since = now
        if batch.status in TERMINAL_BATCH_STATUSES:
            shard.output_file_id = batch.output_file_id
            shard.error_file_id = batch.error_file_id
            shard.batch_errors = (
                [e.model_dump(exclude_none=True) for e in batch.errors.data or []]
                if batch.errors
                else []
            )
            shard.state = "terminal"
            shard.next_poll_at = None
            shard.updated_at = now
            finished += 1
        else:
            shard.next_poll_at = _due(policy, shard, now)
    if changed:
        save_manifest(manifest)
    return finished


def _due(
    policy: PollPolicy, shard: ShardRecord, now: datetime, *, retry_after: float | None = None
) -> datetime:
    counts = shard.request_counts
    total = int(counts.get("total") or 0)
    done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
    return due_at(
        policy,
        now=now,
        created_at=shard.submitted_at or shard.updated_at,
        status=shard.batch_status,
        progress=done / total if total else None,
        in_progress_since=shard.running_since,
        retry_after=retry_after,
    )


def seconds_until_due(manifest: RunManifest) -> float:
    """How long a waiting caller should sleep before the run has something to do again."""
    policy = policy_for(manifest.backend)
    due = [s.next_poll_at for s in manifest.shards if s.state == "created" and s.next_poll_at]
    if not due:
        return policy.floor
    seconds = (min(due) - utcnow()).total_seconds()
    return min(max(seconds, 0.05), policy.cap if policy is LOCAL else 60.0)


def download_outputs(manifest: RunManifest, gateway: Gateway) -> int:
    """Download output and error files of terminal batches into the run folder."""
    done = 0
    for shard in manifest.shards:
        if shard.state != "terminal":
            continue
        stem = storage.join(manifest.run_dir, "outputs", shard.key.replace("/", "-"))
        if shard.output_file_id:
            shard.output_uri = f"{stem}.output.jsonl"
            gateway.download(shard.output_file_id, shard.output_uri)
        if shard.error_file_id:
            shard.error_uri = f"{stem}.errors.jsonl"
            gateway.download(shard.error_file_id, shard.error_uri)
        shard.state = "downloaded"
        shard.updated_at = utcnow()
        save_manifest(manifest)
        failpoint("after-download")
        done += 1
    return done


# -- parsing ---------------------------------------------------------------------------------


def _iter_lines(uri: str | None) -> Iterator[bytes]:
    if uri:
        yield from storage.iter_lines(uri)


class _Pricer:
    """Batch and standard cost of usage, per model as the API named it."""

    def __init__(self, pricing: PricingTable, fallback_model: str) -> None:
        self.pricing = pricing
        self.fallback = pricing.price(fallback_model)
        self._cache: dict[str, ModelPrice] = {}

    def price(self, model: str | None) -> ModelPrice:
        if not model:
            return self.fallback
        if model not in self._cache:
            try:
                self._cache[model] = self.pricing.price(model)
            except UnknownModelError:
                self._cache[model] = self.fallback
        return self._cache[model]

    def cost(self, model: str | None, usage: Usage | None, *, batch: bool = True) -> float:
        if usage is None:
            return 0.0
        return cost_usd(
            self.price(model),
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            batch=batch,
        )


PART_ROWS = 10_000
"""Judged lines per parquet part: bounds the memory of parsing, whatever the shard size."""


def part_uris(manifest: RunManifest, kind: str, shard: ShardRecord) -> list[str]:
    """The parquet parts (`results`, `errors`, `superseded`) that parsing wrote for a shard."""
    stem = shard.key.replace("/", "-")
    return [
        storage.join(manifest.run_dir, "parts", kind, f"{stem}-{n:03d}.parquet")
        for n in range(shard.parts)
    ]


def _retry_uri(manifest: RunManifest, shard: ShardRecord) -> str:
    return storage.join(manifest.run_dir, "retry", f"{shard.key.replace('/', '-')}.json")


def _missing_line(shard: ShardRecord, custom_id: str) -> Classified:
    """What became of a request that appears in neither output nor error file."""
    status = shard.batch_status
    error = shard.batch_errors[0] if shard.batch_errors else {}
    if status == "failed":
        code = str(error.get("code") or "batch_failed")
        message = str(error.get("message") or "the batch failed")
        if error.get("line") is not None:
            message += f" (input line {error['line']})"
        outcome: Outcome = "retryable" if code == "token_limit_exceeded" else "terminal"
        return Classified(custom_id, outcome, "api", code, f"batch failed: {message}")
    if status == "cancelled":
        return Classified(
            custom_id, "terminal", "api", "batch_cancelled", "the batch was cancelled"
        )
    if status == "expired":
        return Classified(custom_id, "retryable", "api", "batch_expired", "the batch expired")
    return Classified(
        custom_id, "retryable", "api", "missing_output", f"no output line (batch {status})"
    )


_OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "custom_id": pl.String(),
    "kind": pl.String(),
    "model": pl.String(),
    "input_tokens": pl.Int64(),
    "cached_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "reasoning_tokens": pl.Int64(),
    "cost_usd": pl.Float64(),
    "billed": pl.Boolean(),
    "raw_output": pl.String(),
    "stage": pl.String(),
    "code": pl.String(),
    "message": pl.String(),
    "retryable": pl.Boolean(),
    "simulated": pl.Boolean(),
}
"""One row per request line as judged; `kind` is result, error or retry."""


def _run_was_simulated(manifest: RunManifest) -> bool:
    """Whether the run's answers so far came from the simulator (all of a run's batches live
    on one backend, so the first parsed results part answers for the run)."""
    for shard in manifest.shards:
        if shard.state != "parsed" or not shard.results:
            continue
        for uri in part_uris(manifest, "results", shard):
            column = tables.read_parquet(uri, columns=["simulated"]).get_column("simulated")
            if column.len():
                return bool(column.any())
    return False


def parse_shard(
    manifest: RunManifest,
    shard: ShardRecord,
    *,
    output_model: type[BaseModel],
    pricer: _Pricer,
    retry_invalid_outputs: bool,
) -> None:
    """Turn one shard's output and error files into result, error and superseded parts.

    Lines are judged one by one into plain columns; every PART_ROWS lines, identities come
    from the shard's index by one join and typed output columns from one vectorised JSON
    decode, and the part is written, so memory stays at a few columns of PART_ROWS lines.
    """
    index = tables.read_parquet(shard.index_uri).drop("input_tokens")
    requested = index.get_column("custom_id").to_list()
    known = set(requested)
    last_attempt = shard.attempt >= manifest.max_attempts or manifest.cancel_requested
    # The embedded backend only simulates. Elsewhere each answer says whether the simulator
    # wrote it; a line without an answer (an HTTP error, an expired line) takes its batch's
    # run's word: simulated if any answer of the run so far said so.
    simulator_backend = manifest.backend == EMBEDDED
    simulated_seen: list[bool | None] = [True if simulator_backend else None]
    cols: dict[str, list[Any]] = {name: [] for name in _OUTCOME_SCHEMA}
    seen: set[str] = set()

    def add(c: Classified) -> None:
        retry_it = c.outcome == "retryable" or (
            retry_invalid_outputs and c.code in INVALID_OUTPUT_CODES
        )
        if c.outcome == "ok":
            kind = "result"
        elif retry_it and not last_attempt:
            kind = "retry"
        else:
            kind = "error"
            if retry_it:
                c.message += f" (gave up after {shard.attempt} attempt(s))"
        usage = c.usage or Usage()
        model = c.model or shard.model
        for name, value in (
            ("custom_id", c.custom_id),
            ("kind", kind),
            ("model", model),
            ("input_tokens", usage.input_tokens),
            ("cached_tokens", usage.cached_tokens),
            ("output_tokens", usage.output_tokens),
            ("reasoning_tokens", usage.reasoning_tokens),
            ("cost_usd", pricer.cost(model, c.usage)),
            ("billed", c.usage is not None),
            ("raw_output", c.raw_output if kind == "result" else None),
            ("stage", c.stage),
            ("code", c.code or None),
            ("message", c.message[:4000] or None),
            ("retryable", c.outcome == "retryable"),
            ("simulated", True if simulator_backend else c.simulated),
        ):
            cols[name].append(value)

    retry: list[str] = []
    shard.parts = 0

    def flush() -> None:
        """Write the lines judged so far as one part of each kind, and start afresh."""
        if None in cols["simulated"] and simulated_seen[0] is None:
            simulated_seen[0] = any(v is True for v in cols["simulated"]) or _run_was_simulated(
                manifest
            )
        judged = (
            pl.DataFrame(cols, schema=_OUTCOME_SCHEMA)
            .with_columns(pl.col("simulated").fill_null(bool(simulated_seen[0])))
            .join(index, on="custom_id", how="left")
            .with_columns(
                run_id=pl.lit(manifest.run_id),
                job_fingerprint=pl.lit(manifest.job_fingerprint),
                batch_id=pl.lit(shard.batch_id, pl.String),
                attempt=pl.lit(shard.attempt, pl.Int64),
                written_at=pl.lit(utcnow()).dt.cast_time_unit("us"),
            )
        )
        for values in cols.values():
            values.clear()
        kind = pl.col("kind")
        errors_schema = pl.Schema(tables.errors_schema())
        retried = judged.filter(kind == "retry")
        parts = {
            "results": tables.results_frame(judged.filter(kind == "result"), output_model),
            "errors": judged.filter(kind == "error")
            .select(list(errors_schema))
            .cast(errors_schema),
            "superseded": retried.filter(pl.col("billed"))
            .select(list(errors_schema))
            .cast(errors_schema),
        }
        shard.parts += 1
        for name, part in parts.items():
            tables.write_parquet(part, part_uris(manifest, name, shard)[-1])
        shard.results += parts["results"].height
        shard.errors += parts["errors"].height
        retry.extend(retried.get_column("custom_id").to_list())

    shard.results = shard.errors = 0
    for uri in (shard.output_uri, shard.error_uri):
        for line in _iter_lines(uri):
            c = classify_line(line, output_model)
            if c.custom_id not in known or c.custom_id in seen:
                log.warning("ignoring an unexpected output line for %r", c.custom_id)
                continue
            seen.add(c.custom_id)
            add(c)
            if len(cols["custom_id"]) >= PART_ROWS:
                flush()
    for custom_id in requested:
        if custom_id not in seen:
            add(_missing_line(shard, custom_id))
            if len(cols["custom_id"]) >= PART_ROWS:
                flush()
    if cols["custom_id"] or not shard.parts:
        flush()
    storage.write_bytes(_retry_uri(manifest, shard), orjson.dumps(retry))
    shard.retryable = len(retry)


def parse_outputs(manifest: RunManifest, job: JobSpec) -> int:
    """Parse every downloaded shard into parquet parts; return how many were parsed."""
    pending = [s for s in manifest.shards if s.state == "downloaded"]
    if not pending:
        return 0
    output_model = job.output_model()
    pricer = _Pricer(load_pricing(), job.model)
    for shard in pending:
        parse_shard(
            manifest,
            shard,
            output_model=output_model,
            pricer=pricer,
            retry_invalid_outputs=job.limits.retry_invalid_outputs,
        )
        shard.state = "parsed"
        shard.updated_at = utcnow()
        save_manifest(manifest)
        failpoint("after-parse")
    return len(pending)


# -- retries ---------------------------------------------------------------------------------


def plan_retries(manifest: RunManifest, job: JobSpec) -> int:
    """Once an attempt is fully parsed, put its retryable lines into the next attempt's shards."""
    attempt = manifest.current_attempt
    current = [s for s in manifest.shards if s.attempt == attempt]
    if not current or any(s.state != "parsed" for s in current):
        return 0
    if attempt >= manifest.max_attempts or manifest.cancel_requested:
        return 0
    if not any(s.retryable for s in current):
        return 0
    writer = ShardWriter(manifest.run_dir, prefix=f"attempt-{attempt + 1}/shard", limits=job.limits)
    for shard in current:
        if not shard.retryable:
            continue
        wanted = set(orjson.loads(storage.read_bytes(_retry_uri(manifest, shard))))
        index = {
            row["custom_id"]: row
            for row in tables.read_parquet(shard.index_uri).iter_rows(named=True)
            if row["custom_id"] in wanted
        }
        for line in _iter_lines(shard.uri):
            custom_id = orjson.loads(line)["custom_id"]
            if custom_id in index:
                row = index[custom_id]
                writer.add(
                    custom_id, line.rstrip(b"\n"), RequestIndexRow(**row), row["input_tokens"]
                )
    infos = writer.close()
    manifest.shards.extend(_shard_record(info, attempt=attempt + 1) for info in infos)
    save_manifest(manifest)
    log.info("attempt %d: %d shard(s) of retried requests", attempt + 1, len(infos))
    return len(infos)


# -- finishing -------------------------------------------------------------------------------


def _rejected_part(manifest: RunManifest) -> str | None:
    """The run's rejected documents as an errors part (stage load or build)."""
    if not manifest.rejected_uri or not storage.exists(manifest.rejected_uri):
        return None
    written_at = utcnow()
    rows = []
    for line in _iter_lines(manifest.rejected_uri):
        r = orjson.loads(line)
        rows.append(
            {
                "run_id": manifest.run_id,
                "job_fingerprint": manifest.job_fingerprint,
                "document_id": r["document_id"],
                "source_uri": r["source_uri"],
                "content_sha256": r.get("content_sha256"),
                "model": str(manifest.job.get("model")),
                "input_tokens": 0,
                "cached_tokens": 0,
                "output_tokens": 0,
                "reasoning_tokens": 0,
                "cost_usd": 0.0,
                "written_at": written_at,
                "stage": r.get("stage", "load"),
                "code": r["code"],
                "message": r["message"],
                "retryable": False,
                "simulated": False,  # refused before any backend saw it
            }
        )
    uri = storage.join(manifest.run_dir, "parts", "errors", "rejected.parquet")
    tables.write_parquet(tables.frame(rows, tables.errors_schema()), uri)
    return uri


def _cancel_unsubmitted(manifest: RunManifest) -> None:
    """After a cancel, shards that never reached the API end as cancelled error rows."""
    waiting = [s for s in manifest.shards if s.state in ("built", "uploading", "uploaded")]
    for shard in waiting:
        shard.state = "downloaded"
        shard.batch_status = "cancelled"
    if waiting:
        save_manifest(manifest)


def finalize_run(manifest: RunManifest, job: JobSpec) -> bool:
    """When every request has its final row, write the tables and mark the run done."""
    if manifest.cancel_requested:
        _cancel_unsubmitted(manifest)
        parse_outputs(manifest, job)
    if not manifest.shards and manifest.counts.requests:
        return False
    if any(s.state != "parsed" for s in manifest.shards):
        return False
    last = manifest.current_attempt
    if (
        any(s.retryable for s in manifest.shards if s.attempt == last)
        and last < manifest.max_attempts
        and not manifest.cancel_requested
    ):
        return False

    output_model = job.output_model()
    rejected = _rejected_part(manifest)
    results_parts = [uri for s in manifest.shards for uri in part_uris(manifest, "results", s)]
    request_errors = [uri for s in manifest.shards for uri in part_uris(manifest, "errors", s)]
    errors_parts = list(request_errors)
    if rejected:
        errors_parts.append(rejected)
    run_date = manifest.created_at.date()

    def table_uri(name: str) -> str:
        return tables.table_uri(
            manifest.output, name, job=manifest.job_name, run_date=run_date, run_id=manifest.run_id
        )

    results_uri = table_uri("results")
    errors_uri = table_uri("errors")
    n_results = tables.concat_parquet(
        results_parts, results_uri, tables.results_schema(output_model)
    )
    n_errors = tables.concat_parquet(errors_parts, errors_uri, tables.errors_schema())
    expected = manifest.counts.requests + manifest.counts.documents_rejected
    if n_results + n_errors != expected:
        raise InvariantError(
            f"run {manifest.run_id}: {expected} inputs but {n_results} results + "
            f"{n_errors} errors; not marking it done"
        )
    costs_uri = table_uri("costs")
    superseded = [uri for s in manifest.shards for uri in part_uris(manifest, "superseded", s)]
    costs = cost_rows(manifest, results=results_parts, errors=request_errors, superseded=superseded)
    tables.write_parquet(tables.frame(costs, tables.costs_schema()), costs_uri)
    record_run(
        output=manifest.output,
        job_name=manifest.job_name,
        job_fingerprint=manifest.job_fingerprint,
        run_id=manifest.run_id,
        results_uri=results_uri,
        errors_uri=errors_uri,
    )
    manifest.counts.results, manifest.counts.errors = n_results, n_errors
    manifest.tables = {"results": results_uri, "errors": errors_uri, "costs": costs_uri}
    manifest.status = "done"
    if manifest.cancel_requested:
        never_ran = _cancelled_requests(request_errors)
        if never_ran:
            manifest.status = "cancelled"
            manifest.notes.append(
                f"cancelled: {never_ran} request(s) never ran; the {n_results} result(s) of "
                "work finished before the cancel are kept and billed"
            )
        else:
            manifest.notes.append(
                "cancel requested, but every batch had already finished: nothing was "
                f"cancelled, all {n_results} result(s) are kept and billed"
            )
    manifest.finished_at = utcnow()
    save_manifest(manifest)
    failpoint("before-close")
    storage.delete(_open_marker(manifest.output, manifest.run_id))
    return True


def _cancelled_requests(error_parts: list[str]) -> int:
    """How many requests a cancel stopped before they ran (`batch_cancelled` error rows)."""
    return sum(
        tables.read_parquet(uri, columns=["code"])
        .filter(pl.col("code") == "batch_cancelled")
        .height
        for uri in error_parts
    )


def cost_rows(
    manifest: RunManifest, *, results: list[str], errors: list[str], superseded: list[str]
) -> list[dict[str, Any]]:
    """Per model: requests, outcomes, tokens, batch and standard cost of everything billed.

    `results` and `errors` parts hold each request's one row; `superseded` parts hold billed
    attempts that were retried, which count in tokens and cost but not in requests.
    """
    succeeded = set(results)
    final = results + errors
    columns = [
        "model",
        "simulated",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "reasoning_tokens",
    ]
    frames = []
    # Every part named here was written when its shard was parsed (empty ones included).
    for uri, is_final in [(u, True) for u in final] + [(u, False) for u in superseded]:
        df = tables.read_parquet(uri, columns=[*columns, "cost_usd"])
        if df.is_empty():
            continue
        frames.append(df.with_columns(succeeded=pl.lit(uri in succeeded), final=pl.lit(is_final)))
    pricing = load_pricing()
    pricer = _Pricer(pricing, str(manifest.job["model"]))
    if not frames:
        return []
    grouped = (
        pl.concat(frames)
        .group_by("model", "simulated")
        .agg(
            requests=pl.col("final").sum(),
            succeeded=(pl.col("succeeded") & pl.col("final")).sum(),
            failed=(~pl.col("succeeded") & pl.col("final")).sum(),
            input_tokens=pl.col("input_tokens").sum(),
            cached_tokens=pl.col("cached_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
            reasoning_tokens=pl.col("reasoning_tokens").sum(),
            batch_cost_usd=pl.col("cost_usd").sum(),
        )
        .sort("model", "simulated")
    )
    rows = []
    for g in grouped.iter_rows(named=True):
        standard = pricer.cost(
            g["model"],
            Usage(g["input_tokens"], g["cached_tokens"], g["output_tokens"], 0),
            batch=False,
        )
        rows.append(
            {
                "run_id": manifest.run_id,
                "job_fingerprint": manifest.job_fingerprint,
                **g,
                "standard_cost_usd": standard,
                "savings_usd": standard - g["batch_cost_usd"],
                "estimated_cost_usd": manifest.estimate_usd,
                "pricing_as_of": str(pricing.as_of),
                "written_at": utcnow(),
            }
        )
    return rows


# -- the whole step ----------------------------------------------------------------------


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
    gateway = gateway or get_gateway(manifest.backend)
    submit_ready(manifest, gateway, max_in_flight_tokens=job.limits.max_in_flight_tokens)
    poll_batches(manifest, gateway)
    download_outputs(manifest, gateway)
    parse_outputs(manifest, job)
    plan_retries(manifest, job)
    # Finished batches freed enqueued-token room, and retries may be waiting: use both now.
    submit_ready(manifest, gateway, max_in_flight_tokens=job.limits.max_in_flight_tokens)
    finalize_run(manifest, job)
    if manifest.problem is not None:
        manifest.problem = manifest.problem_at = None
        save_manifest(manifest)
    return manifest


def cancel_run(run_dir: str, *, gateway: Gateway | None = None) -> RunManifest:
    """Cancel a run's in-flight batches; `collect` then records every cancelled line."""
    try:
        with lease(storage.join(run_dir, "lock"), wait_seconds=300):
            return _cancel_run(run_dir, gateway=gateway)
    except LockBusy as exc:
        raise RunError(f"cannot cancel now: {exc}; try again") from None


def _cancel_run(run_dir: str, *, gateway: Gateway | None) -> RunManifest:
    """Ask the API to cancel every batch that can still be cancelled; record what each did.

    A batch that already finished (the API answers 409, or reports a terminal or finalizing
    status) is no failure: its results are collected and billed like any other. A batch
    whose cancel call fails is reported as such and the others are still cancelled; calling
    again retries it. Shards never submitted will not be.
    """
    manifest = load_manifest(run_dir)
    if not manifest.is_open:
        raise RunError(f"run {manifest.run_id} is {manifest.status}; nothing to cancel")
    gateway = gateway or get_gateway(manifest.backend)
    manifest.cancel_requested = True
    save_manifest(manifest)
    report: list[BatchCancel] = []
    for shard in manifest.shards:
        if shard.state == "creating":
            _adopt_for_cancel(gateway, manifest, shard)
        if shard.state in ("built", "uploading", "uploaded"):
            report.append(BatchCancel(shard=shard.key, outcome="not_submitted"))
        elif shard.state == "created" and shard.batch_id:
            report.append(_cancel_batch(gateway, shard))
        else:
            report.append(
                BatchCancel(
                    shard=shard.key,
                    batch_id=shard.batch_id,
                    outcome="already_finished",
                    batch_status=shard.batch_status,
                )
            )
    manifest.cancels = report
    save_manifest(manifest)
    return manifest


def _adopt_for_cancel(gateway: Gateway, manifest: RunManifest, shard: ShardRecord) -> bool:
    """After a cancel, settle a shard killed while `creating` without creating its batch.

    The batch is adopted if the server has it (True: it can be cancelled); otherwise the
    shard goes back to `uploaded`, which a cancelled run never submits (False).
    """
    assert shard.creating_since is not None
    wanted = {META_RUN: manifest.run_id, META_SHARD: shard.key}
    existing = gateway.find_batch(wanted, since=shard.creating_since)
    if existing is None:
        shard.state = "uploaded"
        save_manifest(manifest)
        return False
    _record_created(manifest, shard, existing.id)
    return True


def _cancel_batch(gateway: Gateway, shard: ShardRecord) -> BatchCancel:
    assert shard.batch_id is not None
    try:
        batch = gateway.cancel(shard.batch_id)
    except openai.ConflictError as exc:  # 409: the batch ended before the cancel
        try:
            status: str | None = gateway.retrieve(shard.batch_id).status
        except openai.APIError:
            status = None
        return BatchCancel(
            shard=shard.key,
            batch_id=shard.batch_id,
            # A batch already stopping counts as cancelled (a cancel sent twice).
            outcome="cancelled" if status in ("cancelling", "cancelled") else "already_finished",
            batch_status=status,
            message=exc.message[:500],
        )
    except openai.APIError as exc:
        log.warning("cancelling batch %s failed: %s", shard.batch_id, exc)
        return BatchCancel(
            shard=shard.key, batch_id=shard.batch_id, outcome="failed", message=str(exc)[:500]
        )
    shard.batch_status = batch.status
    return BatchCancel(
        shard=shard.key,
        batch_id=shard.batch_id,
        outcome="cancelled" if batch.status in ("cancelling", "cancelled") else "already_finished",
        batch_status=batch.status,
    )
