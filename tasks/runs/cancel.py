"""Cancelling: ask the API to cancel a run's in-flight batches and record what each did."""

from __future__ import annotations

import logging

import openai

from schemas.manifest import BatchCancel, RunManifest, ShardRecord
from tasks import storage
from tasks.gateway import Gateway
from tasks.locks import LockBusy, lease
from tasks.runs.store import RunError, load_manifest, save_manifest
from tasks.runs.submit import _adopt_for_cancel, run_gateway

log = logging.getLogger(__name__)


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
    if gateway is None and any(s.state in ("creating", "created") for s in manifest.shards):
        gateway = run_gateway(manifest)  # a run none of whose batches was created needs none
    manifest.cancel_requested = True
    save_manifest(manifest)
    report: list[BatchCancel] = []
    for shard in manifest.shards:
        if shard.state == "creating" and gateway is not None:
            _adopt_for_cancel(gateway, manifest, shard)
        if shard.state in ("built", "uploading", "uploaded"):
            report.append(BatchCancel(shard=shard.key, outcome="not_submitted"))
        elif shard.state == "created" and shard.batch_id and gateway is not None:
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
