"""Merge the partitions of one build: shards in partition order, counters, one rejects file.

Each partition refuses a custom_id it has already written, but two partitions never see each
other's: two documents with the same id (records of two JSONL files, say) in two partitions
would both be written. The merge finds such ids in the shards' indexes (chunk 0 is enough:
two documents share a custom_id exactly when they share `document_key`, and then they share
`<key>-0`) and keeps the document of the lowest partition, the one `plan_requests` meets
first too. The later ones are taken out of their shards (rewritten atomically, dropped if
empty) and rejected as `duplicate_id`, as a single writer would have done.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import orjson
import polars as pl

from schemas.build import ShardInfo
from schemas.documents import RejectedDocument
from tasks import storage, tables
from tasks.build import BuildCounts, PartitionResult
from tasks.sharding import INDEX_SCHEMA


def merge_partitions(
    run_dir: str, results: list[PartitionResult], *, dry_run: bool = False
) -> tuple[BuildCounts, list[ShardInfo], str]:
    """The counters, shards and rejects file (`<run_dir>/rejected.jsonl`) of the whole build
    (of a dry build, whose shards are their indexes alone: what `estimate` counts)."""
    results = sorted(results, key=lambda r: r.index)
    if len(results) == 1:
        only = results[0]
        return only.counts, list(only.shards), only.rejected_uri
    losers = _later_duplicates(results)
    counts = BuildCounts()
    shards: list[ShardInfo] = []
    extra: dict[int, list[RejectedDocument]] = {}
    for result in results:
        if result.index in losers:
            result, extra[result.index] = _drop_documents(
                result, losers[result.index], dry_run=dry_run
            )
        counts.add(result.counts)
        shards += result.shards
    rejected_uri = storage.join(run_dir, "rejected.jsonl")
    with storage.open_write(rejected_uri) as fh:
        for result in results:
            with storage.open_read(result.rejected_uri) as part:
                while chunk := part.read(1 << 20):
                    fh.write(chunk)
            for rejected in extra.get(result.index, []):
                fh.write(orjson.dumps(rejected.model_dump(mode="json")) + b"\n")
    for result in results:
        storage.delete(result.rejected_uri)
    return counts, shards, rejected_uri


def _later_duplicates(results: list[PartitionResult]) -> dict[int, set[str]]:
    """Partition → document keys it shares with a lower partition."""
    frames = [
        tables.read_parquet(shard.index_uri, columns=["custom_id", "chunk_index"])
        .filter(pl.col("chunk_index") == 0)
        .select("custom_id", partition=pl.lit(result.index, dtype=pl.Int32))
        for result in results
        for shard in result.shards
    ]
    if not frames:
        return {}
    twice = (
        pl.concat(frames)
        .with_columns(first=pl.col("partition").min().over("custom_id"))
        .filter(pl.col("partition") != pl.col("first"))
    )
    losers: dict[int, set[str]] = defaultdict(set)
    for custom_id, partition in twice.select("custom_id", "partition").iter_rows():
        losers[partition].add(custom_id.rsplit("-", 1)[0])
    return dict(losers)


def _drop_documents(
    result: PartitionResult, keys: set[str], *, dry_run: bool = False
) -> tuple[PartitionResult, list[RejectedDocument]]:
    """Take the documents with these keys out of a partition's shards (their indexes alone
    in a dry run); reject them."""
    counts = BuildCounts(**{**vars(result.counts), "rejected_by_code": {}})
    counts.rejected_by_code = dict(result.counts.rejected_by_code)
    shards: list[ShardInfo] = []
    rejected: list[RejectedDocument] = []
    schema = {name: getattr(pl, dtype) for name, dtype in INDEX_SCHEMA.items()}
    for shard in result.shards:
        index = tables.read_parquet(shard.index_uri).cast(schema)  # type: ignore[arg-type]
        drop = index["custom_id"].str.replace(r"-\d+$", "").is_in(list(keys))
        if not drop.any():
            shards.append(shard)
            continue
        kept = index.filter(~drop)
        gone = index.filter(drop)
        data = b""
        if not dry_run:
            lines = storage.iter_lines(shard.uri)
            data = b"".join(
                line + b"\n"
                for line, dropped in zip(lines, drop.to_list(), strict=True)
                if not dropped
            )
        for row in gone.filter(pl.col("chunk_index") == 0).iter_rows(named=True):
            custom_id = row["custom_id"]
            rejected.append(
                RejectedDocument(
                    document_id=row["document_id"],
                    source_uri=row["source_uri"],
                    content_sha256=row["content_sha256"],
                    stage="build",
                    code="duplicate_id",
                    message=(
                        f"custom_id {custom_id} is already in this run: another document has "
                        f"the id {row['document_id']!r}"
                    ),
                )
            )
            counts.documents_built -= 1
            counts.documents_rejected += 1
            counts.rejected_by_code["duplicate_id"] = (
                counts.rejected_by_code.get("duplicate_id", 0) + 1
            )
            if row["chunk_count"] > 1:
                counts.documents_chunked -= 1
                counts.chunked_requests -= row["chunk_count"]
        tokens = int(gone["input_tokens"].sum())
        counts.requests -= gone.height
        counts.input_tokens -= tokens
        if kept.is_empty():
            storage.delete(shard.uri)
            storage.delete(shard.index_uri)
            continue
        if not dry_run:
            storage.write_bytes(shard.uri, data)
        with storage.open_write(shard.index_uri) as fh:
            kept.write_parquet(fh)
        shards.append(
            shard.model_copy(
                update={
                    "sha256": "" if dry_run else hashlib.sha256(data).hexdigest(),
                    "requests": kept.height,
                    "bytes": shard.bytes if dry_run else len(data),
                    "input_tokens": shard.input_tokens - tokens,
                }
            )
        )
    return PartitionResult(result.index, counts, shards, result.rejected_uri), rejected
