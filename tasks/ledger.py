"""The ledger: which documents a version of a job has already finished, for nightly increments.

After each run, one small parquet file per run records, for every row the run wrote,
`(job_fingerprint, document_id, content_sha256, outcome)`. The next run of the
same job version skips a document whose id and content hash the ledger holds as `ok` (or as
`failed`, a terminal error, unless asked to retry those), and picks up new, changed and
retryable ones. A new prompt, schema, model or parameter is a new fingerprint: everything is
processed again. Files live at `<output>/ledger/job=<job>/<run_id>.parquet`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import polars as pl

from schemas.documents import Document, RejectedDocument
from tasks import storage, tables

LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "job_fingerprint": pl.String(),
    "document_id": pl.String(),
    "content_sha256": pl.String(),
    "outcome": pl.String(),
    "run_id": pl.String(),
    "recorded_at": pl.Datetime("us", "UTC"),
}
"""One row per result or error row of a run. `outcome`: ok (a result), failed (a terminal
error), retry (a retryable error, or one that says nothing about the document)."""

NOT_THE_DOCUMENTS_FAULT = ("duplicate_id", "batch_cancelled")
"""Terminal error codes that are no verdict on the document itself: another document had its
id, or a cancel stopped its request before it ran. The next run takes such a document again
(as `retry`), where a terminal error of its own (empty, undecodable, refused) is skipped until
`--retry-failed`."""


def _key(document_id: str, content_sha256: str | None) -> int:
    digest = hashlib.blake2b(
        f"{document_id}\0{content_sha256 or ''}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def ledger_dir(output: str, job_name: str) -> str:
    return storage.join(output, "ledger", f"job={job_name}")


def ledger_uri(output: str, job_name: str, run_id: str) -> str:
    """The ledger file one run records."""
    return storage.join(ledger_dir(output, job_name), f"{run_id}.parquet")


def record_run(
    *,
    output: str,
    job_name: str,
    job_fingerprint: str,
    run_id: str,
    results_uri: str,
    errors_uri: str,
) -> int:
    """Write the ledger file of a finished run from its tables; return its row count.

    One row per result or error row (a chunked document has several); streamed, so a run of
    a million requests costs a few row groups of memory. `Ledger.load` folds chunks.
    """

    def build(paths: list[str]) -> pl.LazyFrame:
        results, errors = paths
        keys = ["document_id", "content_sha256"]
        outcome = (
            pl.when(pl.col("retryable") | pl.col("code").is_in(NOT_THE_DOCUMENTS_FAULT))
            .then(pl.lit("retry"))
            .otherwise(pl.lit("failed"))
        )
        return (
            pl.concat(
                [
                    pl.scan_parquet(results).select(*keys, outcome=pl.lit("ok")),
                    pl.scan_parquet(errors).select(*keys, outcome=outcome),
                ]
            )
            .select(
                pl.lit(job_fingerprint).alias("job_fingerprint"),
                *keys,
                "outcome",
                pl.lit(run_id).alias("run_id"),
                pl.lit(datetime.now(UTC)).dt.cast_time_unit("us").alias("recorded_at"),
            )
            .cast(pl.Schema(LEDGER_SCHEMA))
        )

    return tables.sink([results_uri, errors_uri], ledger_uri(output, job_name, run_id), build)


_RANK = {"ok": 0, "failed": 1, "retry": 2}


def chunk_key(document_id: str, content_sha256: str | None, index: int, count: int) -> int:
    """One chunk of one document version, as an 8-byte hash."""
    return _key(f"{document_id}\0{index}\0{count}", content_sha256)


_REVISITS = {"document_id": pl.String(), "content_sha256": pl.String(), "run_id": pl.String()}


class Ledger:
    """The set of documents one job version can skip, held as 8-byte hashes (bounded memory).

    Called with a document, it says whether to process it (the build's `should_process`);
    `answered_chunks` says which chunks of a split document that is processed again an
    earlier run already has answers for (`carry`), so they are not sent, and paid, twice.
    """

    def __init__(self, done: set[int], revisits: pl.DataFrame | None = None) -> None:
        self._done = done
        self.revisits = revisits if revisits is not None else pl.DataFrame(schema=_REVISITS)
        """Documents processed again, with the run that last had them (document_id,
        content_sha256, run_id): where answered chunks of theirs can be found."""
        self._answered: set[int] = set()

    def __call__(self, item: Document | RejectedDocument) -> bool:
        return self.should_process(item)

    def answer_chunks(self, keys: set[int]) -> None:
        """Chunks (`chunk_key`) whose answers an earlier run holds and this one carries."""
        self._answered = keys

    def answered_chunks(self, document_id: str, content_sha256: str | None, count: int) -> set[int]:
        """Which of a document's `count` chunks an earlier run already answered."""
        if not self._answered:
            return set()
        return {
            i
            for i in range(count)
            if chunk_key(document_id, content_sha256, i, count) in self._answered
        }

    @classmethod
    def load(
        cls, output: str, job_name: str, job_fingerprint: str, *, retry_failed: bool = False
    ) -> Ledger:
        """Read every ledger file of a job; keep the latest outcome of each document version."""
        folder = ledger_dir(output, job_name)
        if not storage.is_s3(folder) and not storage.exists(folder):
            return cls(set())
        skip = {"ok"} if retry_failed else {"ok", "failed"}
        frames = []
        for info in storage.list_files(folder, include=["*.parquet"]):
            df = tables.read_parquet(
                info.uri,
                columns=[
                    "job_fingerprint",
                    "document_id",
                    "content_sha256",
                    "outcome",
                    "recorded_at",
                    "run_id",
                ],
            ).filter(pl.col("job_fingerprint") == job_fingerprint)
            if not df.is_empty():
                frames.append(df.drop("job_fingerprint"))
        if not frames:
            return cls(set())
        keys = ["document_id", "content_sha256"]
        latest = (
            pl.concat(frames)
            # A document's outcome in one run is its worst chunk's: retry > failed > ok.
            .with_columns(rank=pl.col("outcome").replace_strict(_RANK, return_dtype=pl.Int8))
            .group_by(*keys, "recorded_at", "run_id")
            .agg(pl.col("rank").max())
            .sort("recorded_at")
            .group_by(keys)
            .agg(pl.col("rank").last(), pl.col("run_id").last())
        )
        skippable = pl.col("rank").is_in([_RANK[o] for o in sorted(skip)])
        skipped, revisits = latest.filter(skippable), latest.filter(~skippable)
        return cls(
            {_key(d, s) for d, s in skipped.select("document_id", "content_sha256").iter_rows()},
            revisits.select(list(_REVISITS)).cast(pl.Schema(_REVISITS)),
        )

    def __len__(self) -> int:
        return len(self._done)

    @property
    def filters(self) -> bool:
        """Whether the build must ask this ledger: documents to skip, or chunks to leave out."""
        return bool(self._done or self._answered)

    def skip(self, document_id: str, content_sha256: str | None) -> None:
        """Skip this document version too (another open run has it)."""
        self._done.add(_key(document_id, content_sha256))

    def should_process(self, document: Document | RejectedDocument) -> bool:
        """False when this version of the job already finished this exact content."""
        return _key(document.document_id, document.content_sha256) not in self._done
