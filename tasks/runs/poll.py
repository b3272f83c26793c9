"""Polling: refresh the in-flight batches that are due, on the schedule `tasks.polling` decides."""

from __future__ import annotations

import logging
from datetime import datetime

import openai

from schemas.manifest import TERMINAL_BATCH_STATUSES, RunManifest, ShardRecord, utcnow
from tasks.gateway import Gateway
from tasks.polling import LOCAL, PollPolicy, due_at, policy_for, retry_after_seconds
from tasks.runs.store import save_manifest

log = logging.getLogger(__name__)


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
