"""What building a job produces: shards of request lines, their indexes, and a summary."""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from schemas.job import Endpoint


class RequestIndexRow(NamedTuple):
    """One row of a shard's index parquet: which document and chunk a request came from.

    A NamedTuple rather than a Pydantic model: a million of them are made per run.
    """

    custom_id: str
    document_id: str
    source_uri: str
    content_sha256: str
    chunk_index: int | None
    """None for a reduce request, which reads every chunk's output."""
    chunk_count: int
    input_tokens: int


class ShardInfo(BaseModel):
    """One finished JSONL shard, ready to upload as a batch input file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shard_id: str
    """e.g. `shard-00000`: the file name without extension."""
    uri: str
    index_uri: str
    sha256: str
    """sha256 hex of the shard's bytes."""
    requests: int
    bytes: int
    input_tokens: int
    model: str
    endpoint: Endpoint


class BuildSummary(BaseModel):
    """Counts and shards of one build; documents_seen = skipped + built + rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_name: str
    job_fingerprint: str
    documents_seen: int
    documents_skipped: int
    documents_built: int
    documents_rejected: int
    requests: int
    input_tokens: int
    shards: list[ShardInfo]
    rejected_uri: str
    rejected_count: int
    documents_chunked: int = 0
    """Documents split into more than one request."""
    chunked_requests: int = 0
    """Requests of those documents."""
    carried_documents: list[tuple[str, str | None]] = []
    """Split documents processed again with every chunk answered by an earlier run (document_id,
    content_sha256): built with no request, each chunk answer carried."""
