"""The ledger: which documents a version of a job has already finished, for nightly increments.

After each run, one small parquet file per run records, for every document that reached its
final rows, `(job_fingerprint, document_id, content_sha256, outcome)`. The next run of the
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
"""`outcome`: ok (every row a result), failed (a terminal error), retry (a retryable error)."""


def _key(document_id: str, content_sha256: str | None) -> int:
    digest = hashlib.blake2b(
        f"{document_id}\0{content_sha256 or ''}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def ledger_dir(output: str, job_name: str) -> str:
    return storage.join(output, "ledger", f"job={job_name}")


def record_run(
    *,
    output: str,
    job_name: str,
    job_fingerprint: str,
    run_id: str,
    results_uri: str,
    errors_uri: str,
) -> int:
    """Write the ledger file of a finished run from its tables; return its document count."""
    cols = ["document_id", "content_sha256"]
    ok = pl.read_parquet(storage.read_bytes(results_uri), columns=cols).with_columns(
        failed=pl.lit(False), retry=pl.lit(False)
    )
    errors = pl.read_parquet(storage.read_bytes(errors_uri), columns=[*cols, "retryable"]).select(
        *cols, failed=~pl.col("retryable"), retry=pl.col("retryable")
    )
    per_doc = (
        pl.concat([ok, errors])
        .group_by(cols)
        .agg(pl.col("failed").any(), pl.col("retry").any())
        .select(
            pl.lit(job_fingerprint).alias("job_fingerprint"),
            "document_id",
            "content_sha256",
            pl.when(pl.col("retry"))
            .then(pl.lit("retry"))
            .when(pl.col("failed"))
            .then(pl.lit("failed"))
            .otherwise(pl.lit("ok"))
            .alias("outcome"),
            pl.lit(run_id).alias("run_id"),
            pl.lit(datetime.now(UTC)).dt.cast_time_unit("us").alias("recorded_at"),
        )
        .sort("document_id")
    )
    tables.write_parquet(
        per_doc.cast(pl.Schema(LEDGER_SCHEMA)),
        storage.join(ledger_dir(output, job_name), f"{run_id}.parquet"),
    )
    return per_doc.height


class Ledger:
    """The set of documents one job version can skip, held as 8-byte hashes (bounded memory)."""

    def __init__(self, done: set[int]) -> None:
        self._done = done

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
            df = pl.read_parquet(storage.read_bytes(info.uri)).filter(
                pl.col("job_fingerprint") == job_fingerprint
            )
            if not df.is_empty():
                frames.append(df.select("document_id", "content_sha256", "outcome", "recorded_at"))
        if not frames:
            return cls(set())
        latest = (
            pl.concat(frames)
            .sort("recorded_at")
            .group_by("document_id", "content_sha256")
            .agg(pl.col("outcome").last())
            .filter(pl.col("outcome").is_in(sorted(skip)))
        )
        return cls(
            {_key(d, s) for d, s in latest.select("document_id", "content_sha256").iter_rows()}
        )

    def __len__(self) -> int:
        return len(self._done)

    def should_process(self, document: Document | RejectedDocument) -> bool:
        """False when this version of the job already finished this exact content."""
        return _key(document.document_id, document.content_sha256) not in self._done
