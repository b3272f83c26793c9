"""Submitting: upload waiting shards and create each batch exactly once, within token limits."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import openai

from schemas.job import JobSpec
from schemas.manifest import (
    META_JOB,
    META_RUN,
    META_SHA,
    META_SHARD,
    RunManifest,
    ShardRecord,
    utcnow,
)
from tasks.failpoints import failpoint
from tasks.gateway import Gateway, GatewayError, backend_unavailable, get_gateway
from tasks.polling import policy_for
from tasks.runs.store import RunError, load_manifest, save_manifest

log = logging.getLogger(__name__)


def any_batch_created(manifest: RunManifest) -> bool:
    """Whether a batch of this run may exist on its backend (a shard reached `creating`: the
    create call can succeed unseen)."""
    return any(
        s.state not in ("built", "uploading", "uploaded") or s.batch_id for s in manifest.shards
    )


def run_gateway(manifest: RunManifest) -> Gateway:
    """The gateway to a run's backend; when that cannot be reached, why, for this run."""
    try:
        return get_gateway(manifest.backend)
    except GatewayError:
        if manifest.backend and not any_batch_created(manifest):
            raise GatewayError(
                backend_unavailable(manifest.backend, batches_created=False)
            ) from None
        raise


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
