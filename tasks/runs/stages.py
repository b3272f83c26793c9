"""Stages: a run's shards belong to the map stage (`a<attempt>/...`) or the reduce stage (`r...`).

Each stage has its own attempts: retries of a stage's last attempt go into that stage's next
one. A job without reduce has the map stage only, as before reduce existed.
"""

from __future__ import annotations

from typing import Literal

from schemas.build import ShardInfo
from schemas.manifest import RunManifest, ShardRecord

Stage = Literal["map", "reduce"]
STAGES: tuple[Stage, ...] = ("map", "reduce")
_KEY_LETTER: dict[Stage, str] = {"map": "a", "reduce": "r"}


def stage_of(shard: ShardRecord) -> Stage:
    """The stage of a shard, from its key (`a1/shard-00000` map, `r1/w00000-00000` reduce)."""
    return "reduce" if shard.key.startswith(_KEY_LETTER["reduce"]) else "map"


def shard_prefix(stage: Stage, attempt: int) -> str:
    """Where a stage's retried shards of one attempt are written under the run folder (first
    attempts: `shards/` for map, `reduce-1/w<wave>` for reduce, see `plan_reduce`)."""
    if stage == "map":
        return "shards/shard" if attempt == 1 else f"attempt-{attempt}/shard"
    return f"reduce-{attempt}/shard"


def shard_record(info: ShardInfo, *, attempt: int, stage: Stage = "map") -> ShardRecord:
    """The manifest record of a shard just written, keyed by stage and attempt."""
    key = f"{_KEY_LETTER[stage]}{attempt}/{info.shard_id}"
    return ShardRecord(**info.model_dump(), key=key, attempt=attempt)


def stage_shards(manifest: RunManifest, stage: Stage) -> list[ShardRecord]:
    return [s for s in manifest.shards if stage_of(s) == stage]


def last_attempt(shards: list[ShardRecord]) -> int:
    return max((s.attempt for s in shards), default=1)


def awaits_retry(manifest: RunManifest, stage: Stage) -> bool:
    """The stage's last attempt is parsed with lines to retry, and attempts are left."""
    shards = stage_shards(manifest, stage)
    last = last_attempt(shards)
    return (
        any(s.retryable for s in shards if s.attempt == last)
        and last < manifest.max_attempts
        and not manifest.cancel_requested
    )


def stage_settled(manifest: RunManifest, stage: Stage) -> bool:
    """Every shard of the stage is parsed and nothing of it waits for a retry."""
    shards = stage_shards(manifest, stage)
    return all(s.state == "parsed" for s in shards) and not awaits_retry(manifest, stage)
