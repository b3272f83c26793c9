"""Carrying: a split document processed again sends only the chunks no earlier run answered.

A document split in several requests is processed again when an earlier run of the same job
version left it unfinished: a chunk failed for good after its retries, the run was cancelled
part-way, or the requests that combine its chunks failed. The chunks that run did answer are
not sent, and paid for, a second time: `find_answered` looks them up in the tables of the run
the ledger last saw the document in, the build leaves them out (`Ledger.answered_chunks`),
and `write_carried` copies their rows into this run as a results part, so the results (or
the `chunks` table, and the combining request) see every chunk as if answered here.

A carried row keeps its `custom_id`, `batch_id` and `attempt` (the batch that answered it)
and gets this run's `run_id`, with zero tokens and cost: the earlier run's row holds what it
cost, so summing `cost_usd` over every run counts each answer once.

When every chunk of a document has an answer (its combining request failed, or a cancel came
before it was sent), nothing of it is sent: the build lists it (`BuildSummary.
carried_documents`), all its chunks are carried, and with `chunking.output = "document"` its
combining request is planned as the run starts (`plan_reduce`), from the carried answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl
from pydantic import BaseModel

from schemas.job import JobSpec
from schemas.manifest import RunManifest, utcnow
from tasks import storage, tables
from tasks.ledger import Ledger, chunk_key
from tasks.runs.reduce import reduces
from tasks.runs.store import InvariantError

log = logging.getLogger(__name__)

_KEYS = ["document_id", "content_sha256", "chunk_index", "chunk_count"]


def _table(job: JobSpec) -> str:
    """Where a job version's chunk answers are: its `chunks` table when chunk answers are
    combined into one row a document, else its `results`."""
    return "chunks" if reduces(job) else "results"


def find_answered(job: JobSpec, fingerprint: str, ledger: Ledger) -> pl.DataFrame:
    """The chunk answers earlier runs hold for documents this run processes again: one row a
    chunk (`_KEYS`, and `uri`, the table it is in). Only the runs the ledger last saw those
    documents in are read, so a night without unfinished split documents reads nothing."""
    empty = pl.DataFrame(
        schema={
            **dict.fromkeys(_KEYS[:2], pl.String()),
            "chunk_index": pl.Int32(),
            "chunk_count": pl.Int32(),
            "uri": pl.String(),
        }
    )
    revisits = ledger.revisits
    if revisits.is_empty():
        return empty
    folder = storage.join(job.output, _table(job), f"job={job.name}")
    if not storage.is_s3(folder) and not storage.exists(folder):
        return empty
    runs = set(revisits.get_column("run_id").to_list())
    frames = []
    for info in storage.list_files(folder, include=["*.parquet"]):
        if info.key.rsplit("/", 1)[-1].removesuffix(".parquet") not in runs:
            continue
        found = (
            tables.read_parquet(info.uri, columns=["job_fingerprint", *_KEYS])
            .filter((pl.col("job_fingerprint") == fingerprint) & (pl.col("chunk_count") > 1))
            .join(revisits.select(_KEYS[:2]), on=_KEYS[:2], how="semi", nulls_equal=True)
            .select(_KEYS)
            .with_columns(uri=pl.lit(info.uri))
        )
        if not found.is_empty():
            frames.append(found.cast({"chunk_index": pl.Int32(), "chunk_count": pl.Int32()}))
    if not frames:
        return empty
    return pl.concat(frames).unique(_KEYS, keep="first", maintain_order=True)


def answered_for(job: JobSpec, fingerprint: str, ledger: Ledger) -> pl.DataFrame:
    """`find_answered`, told to the ledger, which the build then asks which chunks to leave
    out (`Ledger.answered_chunks`); the answers found, for `write_carried`."""
    answered = find_answered(job, fingerprint, ledger)
    rows = answered.select(_KEYS).iter_rows()
    ledger.answer_chunks({chunk_key(d, s, i, n) for d, s, i, n in rows})
    return answered


def write_carried(
    manifest: RunManifest,
    answered: pl.DataFrame,
    output_model: type[BaseModel],
    whole: Sequence[tuple[str, str | None]] = (),
) -> int:
    """Copy the answers of the chunks this run's build left out into a results part of this
    run (`manifest.carried_uri`); return how many. `whole` are the documents the build took
    with no request, every chunk answered. Run again after a kill, it writes the same."""
    if answered.is_empty():
        return 0
    built = pl.concat(
        [
            tables.read_parquet(shard.index_uri, columns=_KEYS).filter(pl.col("chunk_count") > 1)
            for shard in manifest.shards
        ]
        or [pl.DataFrame(schema=dict.fromkeys(_KEYS, pl.String()))]
    ).cast({"chunk_index": pl.Int32(), "chunk_count": pl.Int32()})
    # The chunks of the documents built here that the build left out: each has an answer.
    whole_documents = pl.DataFrame(
        list(whole), schema=dict.fromkeys(_KEYS[:2], pl.String()), orient="row"
    )
    documents = pl.concat([built.select(_KEYS[:2]).cast(pl.String()), whole_documents]).unique()
    left_out = answered.join(documents, on=_KEYS[:2], how="semi", nulls_equal=True).join(
        built, on=_KEYS, how="anti", nulls_equal=True
    )
    if left_out.is_empty():
        return 0
    schema = tables.results_schema(output_model)
    rows = []
    for (uri,), keys in left_out.group_by(["uri"], maintain_order=True):
        rows.append(
            tables.read_parquet(uri)
            .cast({"chunk_index": pl.Int32(), "chunk_count": pl.Int32()})
            .join(keys.select(_KEYS), on=_KEYS, how="semi", nulls_equal=True)
            .unique(_KEYS, keep="first", maintain_order=True)
        )
    carried = (
        pl.concat(rows, how="diagonal_relaxed")
        .with_columns(
            run_id=pl.lit(manifest.run_id),
            input_tokens=pl.lit(0, pl.Int64),
            cached_tokens=pl.lit(0, pl.Int64),
            output_tokens=pl.lit(0, pl.Int64),
            reasoning_tokens=pl.lit(0, pl.Int64),
            cost_usd=pl.lit(0.0),
            written_at=pl.lit(utcnow()).dt.cast_time_unit("us"),
        )
        .select(list(schema))
        .cast(pl.Schema(schema))
    )
    if carried.height != left_out.height:
        raise InvariantError(
            f"run {manifest.run_id}: {left_out.height} chunk answer(s) to carry from earlier "
            f"runs but {carried.height} found in their tables; not going on"
        )
    uri = storage.join(manifest.run_dir, "parts", "results", "carried.parquet")
    tables.write_parquet(carried, uri)
    manifest.carried_uri = uri
    manifest.counts.carried = carried.height
    log.info(
        "%d chunk answer(s) of %d document(s) carried from earlier runs, not sent again",
        carried.height,
        carried.select(_KEYS[:2]).n_unique(),
    )
    return carried.height
