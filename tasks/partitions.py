"""Split a source listing into partitions that are stable for that listing.

A listed entry belongs to one of `BUCKETS` buckets by a hash of its key (its path relative to
the source), never by arrival order; a run with `count` partitions (a power of two) gives
partition `p` the buckets `p * BUCKETS // count` up to the next partition's first. The count
is derived from the listing alone (one partition per `files_per_partition` entries or per
`bytes_per_partition` listed bytes, whichever asks for more, rounded up to a power of two, at
most `MAX_PARTITIONS`), so the partitions, and the shards built from them, do not depend on
how many workers build them.

A listing within both limits is one partition, held in memory: small
runs are built exactly as before partitions existed. A longer one is written once, streaming,
into one JSONL file per bucket under `<spill_dir>/b00.jsonl ...`, which each partition's
builder reads back (locally, on another process or on a Dask worker: the spill folder is in
the run's output storage).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

import orjson

from overnight.settings import Settings
from schemas.job import SourceSpec
from tasks import storage
from tasks.sources._listing import list_source
from tasks.storage import ObjectInfo

BUCKETS = 64
MAX_PARTITIONS = 32
FILES_PER_PARTITION: int = Settings.model_fields["build_partition_files"].default
"""Listed entries per partition (before rounding the count up to a power of two): a partition
of ~2 KB documents takes ~5 s on one core, so a Prefect task's own cost on a Dask worker (a
new API client and settings per task run, ~0.5 s) stays near a tenth of it. The default of
`OVERNIGHT_BUILD_PARTITION_FILES`, stated once, in `overnight.settings`."""
BYTES_PER_PARTITION: int = Settings.model_fields["build_partition_bytes"].default
"""Listed bytes per partition: 16,384 files of ~2 KB make 32 MiB. Counted too, so that 4,000
manuals or PDFs of several MB each are not one partition on one core."""


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    """How one listing is split: `count` partitions, the listing in memory or spilled."""

    count: int
    entries: int
    """Entries listed (files and the other entries that become rejects)."""
    spill_dir: str | None = None
    """Where the bucket files are, when the listing was spilled (`count` > 1)."""
    listing: tuple[ObjectInfo, ...] = ()
    """The whole listing, when it was kept in memory (`count` == 1)."""

    def buckets(self, index: int) -> range:
        """The buckets of partition `index`."""
        if not 0 <= index < self.count:
            raise IndexError(f"partition {index} of {self.count}")
        width = BUCKETS // self.count
        return range(index * width, (index + 1) * width)


def bucket_of(key: str) -> int:
    """The bucket of a listed key: the first 8 bytes of its blake2b digest, modulo BUCKETS."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def partition_count(
    entries: int,
    files_per_partition: int = FILES_PER_PARTITION,
    *,
    size: int = 0,
    bytes_per_partition: int = BYTES_PER_PARTITION,
) -> int:
    """Partitions for a listing of `entries` holding `size` bytes: a power of two, 1 up to
    MAX_PARTITIONS."""
    if files_per_partition < 1 or bytes_per_partition < 1:
        raise ValueError("files_per_partition and bytes_per_partition must be at least 1")
    wanted = max(-(-entries // files_per_partition), -(-size // bytes_per_partition))
    count = 1
    while count < wanted and count < MAX_PARTITIONS:
        count *= 2
    return count


def _bucket_uri(spill_dir: str, bucket: int) -> str:
    return storage.join(spill_dir, f"b{bucket:02d}.jsonl")


def _encode(info: ObjectInfo) -> bytes:
    record: dict[str, Any] = {
        "uri": info.uri,
        "key": info.key,
        "size": info.size,
        "version": info.version,
        "kind": info.kind,
        "detail": info.detail,
    }
    if info.path is not None:  # a local name that is not valid UTF-8: keep its exact bytes
        record["path"] = os.fsencode(info.path).hex()
    return orjson.dumps(record) + b"\n"


def _decode(line: bytes) -> ObjectInfo:
    record = orjson.loads(line)
    path = record.pop("path", None)
    return ObjectInfo(**record, path=None if path is None else os.fsdecode(bytes.fromhex(path)))


def plan_partitions(
    source: SourceSpec,
    *,
    spill_dir: str,
    files_per_partition: int = FILES_PER_PARTITION,
    bytes_per_partition: int = BYTES_PER_PARTITION,
    on_spill: Callable[[], None] | None = None,
) -> PartitionPlan:
    """List the source once and split it; spill the listing to `spill_dir` if it is long.

    `on_spill()` is called as soon as the listing is known to need several partitions.
    """
    entries = list_source(source)
    head: list[ObjectInfo] = []
    size = 0
    for info in entries:
        head.append(info)
        size += info.size or 0
        if len(head) > files_per_partition or size > bytes_per_partition:
            break
    else:
        return PartitionPlan(count=1, entries=len(head), listing=tuple(head))
    if on_spill is not None:
        on_spill()
    total = size = 0
    with ExitStack() as stack:
        files: list[IO[bytes]] = [
            stack.enter_context(storage.open_write(_bucket_uri(spill_dir, b)))
            for b in range(BUCKETS)
        ]
        for info in chain(head, entries):
            files[bucket_of(info.key)].write(_encode(info))
            total += 1
            size += info.size or 0
    count = partition_count(
        total, files_per_partition, size=size, bytes_per_partition=bytes_per_partition
    )
    return PartitionPlan(count=count, entries=total, spill_dir=spill_dir)


def iter_partition(plan: PartitionPlan, index: int) -> Iterator[ObjectInfo]:
    """The entries of partition `index`, bucket by bucket, each in listing order."""
    if plan.spill_dir is None:
        if index != 0 or plan.count != 1:
            raise IndexError(f"partition {index} of {plan.count}")
        yield from plan.listing
        return
    for bucket in plan.buckets(index):
        for line in storage.iter_lines(_bucket_uri(plan.spill_dir, bucket)):
            if line.strip():
                yield _decode(line)


def remove_spill(plan: PartitionPlan) -> None:
    """Delete the spilled listing once every partition is built."""
    if plan.spill_dir is not None:
        for bucket in range(BUCKETS):
            storage.delete(_bucket_uri(plan.spill_dir, bucket))
