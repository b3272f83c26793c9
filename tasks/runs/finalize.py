"""Finishing: write the tables once every request has its final row, check, close the run."""

from __future__ import annotations

import orjson
import polars as pl

from schemas.job import JobSpec
from schemas.manifest import RunManifest, utcnow
from tasks import storage, tables
from tasks.failpoints import failpoint
from tasks.ledger import ledger_uri, record_run
from tasks.runs.costs import cost_rows
from tasks.runs.parse import parse_outputs, part_uris
from tasks.runs.reduce import carried_parts, reduces, write_document_tables
from tasks.runs.stages import STAGES, awaits_retry
from tasks.runs.store import InvariantError, _iter_lines, _open_marker, save_manifest


def _rejected_part(manifest: RunManifest) -> str | None:
    """The run's rejected documents as an errors part (stage load or build)."""
    if not manifest.rejected_uri or not storage.exists(manifest.rejected_uri):
        return None
    written_at = utcnow()
    rows = []
    for line in _iter_lines(manifest.rejected_uri):
        r = orjson.loads(line)
        rows.append(
            {
                "run_id": manifest.run_id,
                "job_fingerprint": manifest.job_fingerprint,
                "document_id": r["document_id"],
                "source_uri": r["source_uri"],
                "content_sha256": r.get("content_sha256"),
                "model": str(manifest.job.get("model")),
                "input_tokens": 0,
                "cached_tokens": 0,
                "output_tokens": 0,
                "reasoning_tokens": 0,
                "cost_usd": 0.0,
                "written_at": written_at,
                "stage": r.get("stage", "load"),
                "code": r["code"],
                "message": r["message"],
                "retryable": False,
                "simulated": False,  # refused before any backend saw it
            }
        )
    uri = storage.join(manifest.run_dir, "parts", "errors", "rejected.parquet")
    tables.write_parquet(tables.frame(rows, tables.errors_schema()), uri)
    return uri


def _cancel_unsubmitted(manifest: RunManifest) -> None:
    """After a cancel, shards that never reached the API end as cancelled error rows."""
    waiting = [s for s in manifest.shards if s.state in ("built", "uploading", "uploaded")]
    for shard in waiting:
        shard.state = "downloaded"
        shard.batch_status = "cancelled"
    if waiting:
        save_manifest(manifest)


def finalize_run(manifest: RunManifest, job: JobSpec) -> bool:
    """When every request has its final row, write the tables and mark the run done.

    The invariant checked before: inputs = results + errors, where inputs are the requests
    and rejected documents, or, when chunk outputs are reduced (`chunking.output =
    "document"`), the documents built or rejected (a split document's chunk rows are in the
    `chunks` table).
    """
    if manifest.cancel_requested:
        _cancel_unsubmitted(manifest)
        parse_outputs(manifest, job)
    if not manifest.shards and manifest.counts.requests:
        return False
    if any(s.state != "parsed" for s in manifest.shards):
        return False
    if any(awaits_retry(manifest, stage) for stage in STAGES):
        return False

    output_model = job.output_model()
    rejected = _rejected_part(manifest)
    results_parts = [uri for s in manifest.shards for uri in part_uris(manifest, "results", s)]
    request_errors = [uri for s in manifest.shards for uri in part_uris(manifest, "errors", s)]
    errors_parts = list(request_errors)
    if rejected:
        errors_parts.append(rejected)
    run_date = manifest.created_at.date()

    def table_uri(name: str) -> str:
        return tables.table_uri(
            manifest.output, name, job=manifest.job_name, run_date=run_date, run_id=manifest.run_id
        )

    # Under the run's lease: a temporary file beside one of this run's tables (or its ledger
    # file) is what a finalize killed while writing it left behind.
    for target in [
        *(table_uri(name) for name in ("results", "errors", "costs", "chunks")),
        ledger_uri(manifest.output, manifest.job_name, manifest.run_id),
    ]:
        folder, name = target.rsplit("/", 1)
        storage.remove_temp_files(folder, stem=name)
    results_uri = table_uri("results")
    errors_uri = table_uri("errors")
    written = {"results": results_uri, "errors": errors_uri}
    if reduces(job):
        # One row per document: inputs are the documents built or rejected, not requests.
        written["chunks"] = table_uri("chunks")
        n_results, n_chunks, n_errors = write_document_tables(
            manifest, output_model, rejected=rejected, uris=written
        )
        expected = manifest.counts.documents_seen - manifest.counts.documents_skipped
        inputs = "documents"
    else:
        n_results = tables.concat_parquet(
            results_parts + carried_parts(manifest),
            results_uri,
            tables.results_schema(output_model),
        )
        n_errors = tables.concat_parquet(errors_parts, errors_uri, tables.errors_schema())
        expected = (
            manifest.counts.requests + manifest.counts.documents_rejected + manifest.counts.carried
        )
        inputs, n_chunks = "inputs", 0
    if n_results + n_errors != expected:
        raise InvariantError(
            f"run {manifest.run_id}: {expected} {inputs} but {n_results} results + "
            f"{n_errors} errors; not marking it done"
        )
    costs_uri = table_uri("costs")
    superseded = [uri for s in manifest.shards for uri in part_uris(manifest, "superseded", s)]
    costs = cost_rows(manifest, results=results_parts, errors=request_errors, superseded=superseded)
    tables.write_parquet(tables.frame(costs, tables.costs_schema()), costs_uri)
    record_run(
        output=manifest.output,
        job_name=manifest.job_name,
        job_fingerprint=manifest.job_fingerprint,
        run_id=manifest.run_id,
        results_uri=results_uri,
        errors_uri=errors_uri,
    )
    manifest.counts.results, manifest.counts.errors = n_results, n_errors
    if reduces(job):
        manifest.counts.chunks = n_chunks
    manifest.tables = {**written, "costs": costs_uri}
    manifest.status = "done"
    if manifest.cancel_requested:
        never_ran = _cancelled_requests(request_errors)
        if never_ran:
            manifest.status = "cancelled"
            manifest.notes.append(
                f"cancelled: {never_ran} request(s) never ran; the {n_results} result(s) of "
                "work finished before the cancel are kept and billed"
            )
        else:
            manifest.notes.append(
                "cancel requested, but every batch had already finished: nothing was "
                f"cancelled, all {n_results} result(s) are kept and billed"
            )
    manifest.finished_at = utcnow()
    save_manifest(manifest)
    failpoint("before-close")
    storage.delete(_open_marker(manifest.output, manifest.run_id))
    return True


def _cancelled_requests(error_parts: list[str]) -> int:
    """How many requests a cancel stopped before they ran (`batch_cancelled` error rows)."""
    return sum(
        tables.read_parquet(uri, columns=["code"])
        .filter(pl.col("code") == "batch_cancelled")
        .height
        for uri in error_parts
    )
