"""Reducing: one output per long document, from its chunks' outputs (a second Batch stage).

With `chunking.output = "document"`, the chunk requests are the *map* stage (shard keys
`a<attempt>/...`). As soon as every chunk of a document split in several has its final row,
`plan_reduce` writes one *reduce* request for it (the chunks' outputs in order, under the job's
own system prompt and output schema) into a shard of the reduce stage (keys `r<attempt>/...`),
which then goes through submit, poll, download, parse and retries like any other shard, with
the same exactly-once rules. Documents that fit one request skip the stage: their one result
is the document's. A document with a chunk that failed for good is not reduced: its row in
`errors` says which chunk failed.

Planning is safe under kills: the reduce shards' files are deterministic and only count once
the manifest lists them, and a document already in a reduce shard is never planned again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import polars as pl
from pydantic import BaseModel

from schemas.build import RequestIndexRow
from schemas.job import JobSpec
from schemas.manifest import RunManifest, ShardRecord
from tasks import storage, tables
from tasks.capabilities import ModelCapabilities, load_capabilities
from tasks.failpoints import failpoint
from tasks.render import RequestRenderer, reduce_custom_id, reduce_user_text
from tasks.runs.parse import part_uris
from tasks.runs.stages import shard_record, stage_shards
from tasks.runs.store import InvariantError, save_manifest
from tasks.sharding import RequestTooLargeError, ShardWriter

log = logging.getLogger(__name__)


def reduces(job: JobSpec) -> bool:
    """Whether the job writes one row per document (chunk outputs reduced) or per chunk."""
    return job.chunking.output == "document"


def reduced_documents(manifest: RunManifest) -> set[str]:
    """Documents that were planned: a reduce request (in a first-attempt reduce shard), or an
    error row because their chunk answers do not fit one request."""
    found: set[str] = set()
    for shard in stage_shards(manifest, "reduce"):
        if shard.attempt == 1:
            index = tables.read_parquet(shard.index_uri, columns=["document_id"])
            found.update(index.get_column("document_id").to_list())
    for uri in manifest.reduce_oversized:
        index = tables.read_parquet(uri, columns=["document_id"])
        found.update(index.get_column("document_id").to_list())
    return found


def _wave(uri_or_id: str) -> str:
    """`w00003` of a reduce shard id (`w00003-00000`) or of an oversized file's URI."""
    return uri_or_id.rsplit("/", 1)[-1].split("-", 1)[0]


def _does_not_fit(
    writer: ShardWriter, job: JobSpec, caps: ModelCapabilities | None, line: bytes, tokens: int
) -> str | None:
    """Why this reduce request can never be sent, or None if it can."""
    try:
        writer.check_fits(len(line) + 1, tokens)
    except RequestTooLargeError as exc:
        return f"{exc}"
    cap = job.params.max_output_tokens
    if caps is not None and tokens + cap > caps.context_window:
        return (
            f"a request of {tokens} input tokens plus params.max_output_tokens {cap} exceeds "
            f"{job.model}'s context window of {caps.context_window} tokens"
        )
    return None


def carried_parts(manifest: RunManifest) -> list[str]:
    """The run's results part of chunk answers carried from earlier runs, if it has one."""
    return [manifest.carried_uri] if manifest.carried_uri else []


def _final_chunk_rows(manifest: RunManifest, kind: str, columns: list[str]) -> pl.DataFrame:
    """Rows of split documents in the parsed map shards' `results` or `errors` parts (and,
    for results, the chunk answers carried from earlier runs)."""
    uris = [
        uri
        for shard in stage_shards(manifest, "map")
        if shard.state == "parsed"
        for uri in part_uris(manifest, kind, shard)
    ]
    if kind == "results":
        uris += carried_parts(manifest)
    frames = [
        tables.read_parquet(uri, columns=columns).filter(pl.col("chunk_count") > 1) for uri in uris
    ]
    if not frames:
        known = {**tables.errors_schema(), "raw_output": pl.String()}
        return pl.DataFrame(schema={c: known[c] for c in columns})
    return pl.concat(frames)


def plan_reduce(manifest: RunManifest, job: JobSpec) -> int:
    """Write a reduce request for every split document whose chunks all succeeded; count them.

    A document is ready when each of its chunks has its final row in a parsed map shard; one
    whose chunk failed for good gets no reduce request (finalize writes its error row). The
    new requests go into one new reduce shard (more if limits say so), recorded in the
    manifest before anything is sent. A cancelled run plans no more reduce requests.
    """
    if not reduces(job) or manifest.cancel_requested:
        return 0
    map_parsed = any(s.state == "parsed" for s in stage_shards(manifest, "map"))
    if not map_parsed and not manifest.carried_uri:
        return 0
    planned = reduced_documents(manifest)
    columns = ["document_id", "chunk_index", "chunk_count"]
    done = pl.concat(
        [
            _final_chunk_rows(manifest, "results", columns).with_columns(ok=pl.lit(True)),
            _final_chunk_rows(manifest, "errors", columns).with_columns(ok=pl.lit(False)),
        ]
    ).filter(~pl.col("document_id").is_in(list(planned)))
    ready = (
        done.group_by("document_id")
        .agg(
            chunks=pl.col("chunk_index").n_unique(),
            chunk_count=pl.col("chunk_count").first(),
            ok=pl.col("ok").all(),
        )
        .filter((pl.col("chunks") == pl.col("chunk_count")) & pl.col("ok"))
        .get_column("document_id")
        .sort()
        .to_list()
    )
    if not ready:
        return 0
    outputs = (
        _final_chunk_rows(
            manifest,
            "results",
            [
                "document_id",
                "source_uri",
                "content_sha256",
                "chunk_index",
                "chunk_count",
                "raw_output",
            ],
        )
        .filter(pl.col("document_id").is_in(ready))
        .sort("document_id", "chunk_index")
    )
    renderer = RequestRenderer(job)
    # Each planning is a wave of first-attempt shards: reduce-1/w00000-00000.jsonl, ... whose
    # number follows the waves the manifest already lists, so a rewrite after a kill lands on
    # the same files (nothing of an unrecorded wave was ever sent).
    waves = {_wave(s.shard_id) for s in stage_shards(manifest, "reduce") if s.attempt == 1}
    waves.update(_wave(uri) for uri in manifest.reduce_oversized)
    prefix = f"reduce-1/w{len(waves):05d}"
    writer = ShardWriter(
        manifest.run_dir, prefix=prefix, limits=job.limits, model=job.model, endpoint=job.endpoint
    )
    caps = load_capabilities().get(job.model)
    oversized: list[dict[str, object]] = []
    for rows in outputs.partition_by("document_id", maintain_order=True):
        first = rows.row(0, named=True)
        custom_id = reduce_custom_id(first["document_id"])
        text = reduce_user_text(first["document_id"], rows.get_column("raw_output").to_list())
        tokens = renderer.request_tokens(renderer.count(text))
        line = renderer.line(custom_id, text)
        why = _does_not_fit(writer, job, caps, line, tokens)
        if why is not None:
            oversized.append({"document_id": first["document_id"], "why": why})
            continue
        row = RequestIndexRow(
            custom_id,
            first["document_id"],
            first["source_uri"],
            first["content_sha256"],
            None,
            first["chunk_count"],
            tokens,
        )
        writer.add(custom_id, line, row, tokens)
    infos = writer.close()
    oversized_uri = None
    if oversized:
        # Deterministic, like the shards: a rewrite after a kill lands on the same file.
        oversized_uri = storage.join(manifest.run_dir, "shards", f"{prefix}-oversized.parquet")
        tables.write_parquet(pl.DataFrame(oversized, schema=_OVERSIZED), oversized_uri)
        log.warning(
            "reduce: %d document(s) have chunk answers too long for one reduce request; "
            "each gets an error row and keeps its chunk answers in the chunks table",
            len(oversized),
        )
    failpoint("before-reduce-recorded")
    manifest.shards.extend(shard_record(info, attempt=1, stage="reduce") for info in infos)
    if oversized_uri is not None:
        manifest.reduce_oversized.append(oversized_uri)
    manifest.counts.reduce_requests += len(ready) - len(oversized)
    save_manifest(manifest)
    log.info("reduce: %d document(s) in %d shard(s)", len(ready) - len(oversized), len(infos))
    failpoint("after-reduce-planned")
    return len(ready) - len(oversized)


_OVERSIZED = {"document_id": pl.String(), "why": pl.String()}

_SINGLE = pl.col("chunk_count") <= 1
"""Rows of documents that fit one request: their map row is the document's row."""


def _concat(
    groups: list[tuple[list[str], pl.Expr | None]], dest: str, schema: Mapping[str, pl.DataType]
) -> int:
    """Concatenate parquet parts, each group filtered by its expression, into one file."""
    sources = [uri for uris, _ in groups for uri in uris]
    if not sources:
        tables.write_parquet(pl.DataFrame(schema=dict(schema)), dest)
        return 0

    def build(paths: list[str]) -> pl.LazyFrame:
        frames, start = [], 0
        for uris, keep in groups:
            mine, start = paths[start : start + len(uris)], start + len(uris)
            if mine:
                frame = pl.scan_parquet(mine).select(list(schema))
                frames.append(frame if keep is None else frame.filter(keep))
        return pl.concat(frames)

    return tables.sink(sources, dest, build)


def _unreduced_rows(manifest: RunManifest, reduced: set[str]) -> pl.DataFrame:
    """One error row per split document that got no reduce request, and why.

    Its first failed chunk's row, saying so; or, when the run was cancelled before the
    document's chunks were combined, a `batch_cancelled` row.
    """
    schema = tables.errors_schema()
    failed = (
        _final_chunk_rows(manifest, "errors", list(schema))
        .filter(~pl.col("document_id").is_in(list(reduced)))
        .sort("document_id", "chunk_index")
    )
    failures = failed.group_by("document_id").agg(failed_chunks=pl.len())
    rows = (
        failed.unique("document_id", keep="first", maintain_order=True)
        .join(failures, on="document_id")
        .with_columns(
            message=pl.format(
                "chunk {} of {} failed ({} of its chunks did), so the document has no "
                "combined answer; its other chunk answers are in the chunks table: {}",
                pl.col("chunk_index") + 1,
                pl.col("chunk_count"),
                pl.col("failed_chunks"),
                pl.col("message"),
            )
        )
        .select(list(schema))
    )
    identity = [c for c in schema if c in tables.results_schema(_NoFields)]
    unreduced = (
        _final_chunk_rows(manifest, "results", identity)
        .filter(
            ~pl.col("document_id").is_in(list(reduced))
            & ~pl.col("document_id").is_in(rows.get_column("document_id").to_list())
        )
        .sort("document_id", "chunk_index")
        .unique("document_id", keep="first", maintain_order=True)
    )
    if unreduced.height and not manifest.cancel_requested:
        raise InvariantError(
            f"run {manifest.run_id}: {unreduced.height} split document(s) have every chunk "
            "answered but no reduce request (e.g. "
            f"{unreduced.get_column('document_id')[0]}); not marking it done"
        )
    too_long = _oversized_rows(manifest, identity)
    cancelled = _unanswered(
        unreduced,
        stage="api",
        code="batch_cancelled",
        message=pl.lit(
            "the run was cancelled before this document's chunk answers were combined; "
            "they are in the chunks table"
        ),
    )
    return pl.concat([frame.cast(pl.Schema(schema)) for frame in (rows, cancelled, too_long)])


def _oversized_rows(manifest: RunManifest, identity: list[str]) -> pl.DataFrame:
    """One `reduce_too_large` error row per document planned as too long for one request."""
    schema = tables.errors_schema()
    if not manifest.reduce_oversized:
        return pl.DataFrame(schema=schema)
    why = pl.concat([tables.read_parquet(uri) for uri in manifest.reduce_oversized])
    frame = (
        _final_chunk_rows(manifest, "results", identity)
        .join(why, on="document_id")
        .sort("document_id", "chunk_index")
        .unique("document_id", keep="first", maintain_order=True)
    )
    return _unanswered(
        frame,
        stage="build",
        code="reduce_too_large",
        message=pl.format(
            "the answers of its {} chunks do not fit one request to combine them ({}); "
            "it was not sent, and the chunk answers are in the chunks table",
            pl.col("chunk_count"),
            pl.col("why"),
        ),
    )


def _unanswered(frame: pl.DataFrame, *, stage: str, code: str, message: pl.Expr) -> pl.DataFrame:
    """Error rows for documents that never got a combined answer: nothing used, nothing paid."""
    return frame.with_columns(
        input_tokens=pl.lit(0, pl.Int64),
        cached_tokens=pl.lit(0, pl.Int64),
        output_tokens=pl.lit(0, pl.Int64),
        reasoning_tokens=pl.lit(0, pl.Int64),
        cost_usd=pl.lit(0.0),
        stage=pl.lit(stage),
        code=pl.lit(code),
        message=message,
        retryable=pl.lit(False),
    ).select(list(tables.errors_schema()))


class _NoFields(BaseModel):
    pass


def write_document_tables(
    manifest: RunManifest,
    output_model: type[BaseModel],
    *,
    rejected: str | None,
    uris: dict[str, str],
) -> tuple[int, int, int]:
    """Write `results` (one row per document), `chunks` and `errors`; return their row counts.

    results: the map row of each document that fit one request, and each reduce result.
    chunks: every map result of a split document. errors: rejected documents, failed map
    requests of one-request documents, failed reduce requests, and one row per split
    document that had no reduce request (`_unreduced_rows`).
    """
    maps, reds = stage_shards(manifest, "map"), stage_shards(manifest, "reduce")

    def parts(kind: str, shards: list[ShardRecord]) -> list[str]:
        return [uri for s in shards for uri in part_uris(manifest, kind, s)]

    documents = storage.join(manifest.run_dir, "parts", "errors", "documents.parquet")
    tables.write_parquet(_unreduced_rows(manifest, reduced_documents(manifest)), documents)
    results_schema = tables.results_schema(output_model)
    n_results = _concat(
        [(parts("results", maps), _SINGLE), (parts("results", reds), None)],
        uris["results"],
        results_schema,
    )
    n_chunks = _concat(
        [(parts("results", maps) + carried_parts(manifest), ~_SINGLE)],
        uris["chunks"],
        results_schema,
    )
    n_errors = _concat(
        [
            ([rejected] if rejected else [], None),
            (parts("errors", maps), _SINGLE),
            (parts("errors", reds), None),
            ([documents], None),
        ],
        uris["errors"],
        tables.errors_schema(),
    )
    return n_results, n_chunks, n_errors
