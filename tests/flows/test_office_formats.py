"""Office files and e-mail, end to end on the local Batch API: one result per document."""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import runs
from tests.flows.conftest import assert_every_input_has_one_row

CASES = Path(__file__).resolve().parents[1] / "cases"
FILES = [
    "review.docx",
    "review.pptx",
    "invoices.xlsx",
    "review.odt",
    "review.rtf",
    "review.epub",
    "invoice.eml",
    "fake-email-attachment.msg",
]


def _finish(run_dir: str) -> RunManifest:
    for _ in range(400):
        manifest = runs.advance_run(run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.05)
    raise AssertionError(f"run {run_dir} did not finish")


def _bucket_drop(docs: Path) -> dict[str, str | None]:
    """Each format plain and gzipped, plus a corrupt copy of each: the expected row codes."""
    docs.mkdir()
    expected: dict[str, str | None] = {}
    for name in FILES:
        data = (CASES / name).read_bytes()
        (docs / name).write_bytes(data)
        (docs / f"{name}.gz").write_bytes(gzip.compress(data))
        stem, ext = name.rsplit(".", 1)
        corrupt = f"{stem}-corrupt.{ext}"
        (docs / corrupt).write_bytes(bytes(range(1, 256)) * 8)
        expected |= {name: None, f"{name}.gz": None, corrupt: "undecodable"}
    for mail in ("invoice.eml", "invoice.eml.gz"):
        expected[f"{mail}#invoice-0917.txt"] = None
    for mail in ("fake-email-attachment.msg", "fake-email-attachment.msg.gz"):
        expected[f"{mail}#fake-attachment.txt"] = None
    shutil.copy(CASES / "plain.txt", docs / "plain.txt")
    expected["plain.txt"] = None
    return expected


def test_every_new_format_gives_one_result_and_attachments_name_their_message(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    expected = _bucket_drop(tmp_path / "docs")
    job = make_job()
    night = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    manifest = _finish(runs.prepare_run(job, now=night).run_dir)
    assert manifest.status == "done"
    results, errors = assert_every_input_has_one_row(manifest)

    rows: dict[str, str | None] = {doc: None for doc in results["document_id"].to_list()}
    assert results["document_id"].is_duplicated().sum() == 0, "one result per document"
    for doc, code in errors.select("document_id", "code").iter_rows():
        assert doc not in rows, f"{doc!r} has two rows"
        rows[doc] = code
    assert rows == expected
    assert (errors["stage"] == "load").all()
    assert all(errors["message"].str.len_chars() > 0)
    assert manifest.counts.documents_seen == len(expected)

    # An attachment's row is found from its message: same source_uri, id `<message>#<name>`.
    mail = results.filter(
        results["document_id"].is_in(["invoice.eml", "invoice.eml#invoice-0917.txt"])
    )
    assert mail["source_uri"].n_unique() == 1 and mail.height == 2
    assert str(tmp_path / "docs" / "invoice.eml") == mail["source_uri"][0]

    # Ids are stable: the next night finds every document and attachment already done.
    second = _finish(runs.prepare_run(job, now=night + timedelta(days=1)).run_dir)
    assert second.status == "done" and second.counts.requests == 0
    assert second.counts.documents_skipped == len(expected)
