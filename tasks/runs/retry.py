"""Retries: put a stage's retryable lines into that stage's next attempt."""

from __future__ import annotations

import logging

import orjson

from schemas.build import RequestIndexRow
from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import storage, tables
from tasks.runs.parse import _retry_uri
from tasks.runs.stages import (
    Stage,
    last_attempt,
    shard_prefix,
    shard_record,
    stage_settled,
    stage_shards,
)
from tasks.runs.store import _iter_lines, save_manifest
from tasks.sharding import ShardWriter

log = logging.getLogger(__name__)


def plan_retries(manifest: RunManifest, job: JobSpec) -> int:
    """Once a stage's attempt is fully parsed, put its retryable lines into its next attempt.

    Returns how many shards were written. The reduce stage retries only once the map stage
    is settled: until then more first-attempt reduce shards may still come.
    """
    written = _plan_stage(manifest, job, "map")
    if stage_settled(manifest, "map"):
        written += _plan_stage(manifest, job, "reduce")
    return written


def _plan_stage(manifest: RunManifest, job: JobSpec, stage: Stage) -> int:
    shards = stage_shards(manifest, stage)
    attempt = last_attempt(shards)
    current = [s for s in shards if s.attempt == attempt]
    if not current or any(s.state != "parsed" for s in current):
        return 0
    if attempt >= manifest.max_attempts or manifest.cancel_requested:
        return 0
    if not any(s.retryable for s in current):
        return 0
    writer = ShardWriter(
        manifest.run_dir, prefix=shard_prefix(stage, attempt + 1), limits=job.limits
    )
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
    manifest.shards.extend(shard_record(info, attempt=attempt + 1, stage=stage) for info in infos)
    save_manifest(manifest)
    log.info("%s attempt %d: %d shard(s) of retried requests", stage, attempt + 1, len(infos))
    return len(infos)
