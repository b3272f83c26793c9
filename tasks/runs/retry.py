"""Retries: put an attempt's retryable lines into the next attempt's shards."""

from __future__ import annotations

import logging

import orjson

from schemas.build import RequestIndexRow
from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import storage, tables
from tasks.runs.parse import _retry_uri
from tasks.runs.prepare import _shard_record
from tasks.runs.store import _iter_lines, save_manifest
from tasks.sharding import ShardWriter

log = logging.getLogger(__name__)


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
