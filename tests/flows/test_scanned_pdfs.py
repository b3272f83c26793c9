"""Scanned PDFs end to end on the local Batch API, through the official openai client."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import runs
from tests._scans import scanned_pdf
from tests.flows.conftest import assert_every_input_has_one_row, read_table


def _finish(run_dir: str) -> RunManifest:
    for _ in range(400):
        manifest = runs.advance_run(run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.05)
    raise AssertionError(f"run {run_dir} did not finish")


def test_a_scanned_invoice_gives_one_result_and_a_long_scan_a_rejected_row(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "invoice-scan.pdf").write_bytes(scanned_pdf(2))
    (docs / "archive-scan.pdf").write_bytes(scanned_pdf(4, title="ARCHIVE BOX 7"))
    (docs / "note.txt").write_text("Invoice 1042 was paid on 2026-03-02.")
    job = make_job(
        model="gpt-4.1-mini",
        params={"image_detail": "high"},
        output_schema="schemas.invoice:InvoiceV1",
    )
    job = job.model_copy(update={"source": job.source.model_copy(update={"max_pages": 3})})
    manifest = _finish(runs.prepare_run(job).run_dir)
    assert manifest.status == "done"
    results, errors = assert_every_input_has_one_row(manifest)

    assert sorted(results["document_id"].to_list()) == ["invoice-scan.pdf", "note.txt"]
    scan = results.filter(results["document_id"] == "invoice-scan.pdf").to_dicts()
    assert len(scan) == 1, "one result row for the whole scanned document"
    assert errors.select("document_id", "stage", "code").to_dicts() == [
        {"document_id": "archive-scan.pdf", "stage": "load", "code": "too_many_pages"}
    ]
    assert errors["message"][0] == (
        "a scanned PDF of 4 pages (no text layer on 4); it would be sent as one image per "
        "page, and source.max_pages is 3"
    )
    # what went out: one request with both pages as high-detail images
    [shard] = manifest.shards
    [line] = [
        orjson.loads(raw)
        for raw in Path(shard.uri).read_bytes().splitlines()
        if b"image_url" in raw
    ]
    parts = line["body"]["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
    assert {p["image_url"]["detail"] for p in parts[1:]} == {"high"}
    costs = read_table(manifest, "costs")
    assert costs.height >= 1
