"""Nothing in a source stops a run: every odd entry ends as exactly one row with its reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

from schemas.job import JobSpec
from tasks import runs
from tests.flows.conftest import assert_every_input_has_one_row
from tests.odd_entries import make_odd_folder


def _finish(run_dir: str) -> runs.RunManifest:
    for _ in range(400):
        manifest = runs.advance_run(run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.05)
    raise AssertionError(f"run {run_dir} did not finish")


def test_every_odd_entry_has_exactly_one_row_and_good_files_have_results(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    expected = make_odd_folder(tmp_path / "docs", outside=tmp_path / "outside")
    assert len(set(expected.values())) >= 8 and len(expected) >= 30
    manifest = _finish(runs.prepare_run(make_job()).run_dir)
    assert manifest.status == "done"
    results, errors = assert_every_input_has_one_row(manifest)

    rows = {doc: None for doc in results["document_id"].to_list()}
    for doc, code in errors.select("document_id", "code").iter_rows():
        assert doc not in rows, f"{doc!r} has two rows"
        rows[doc] = code
    assert rows == expected
    assert (errors["stage"] == "load").all()
    assert manifest.counts.documents_seen == len(expected)

    # A name that is not UTF-8 is kept losslessly: unquoting gives the file's bytes back.
    escaped = results.filter(results["document_id"] == "100%25-%FF%FE.txt")
    uri = escaped["source_uri"].item()
    assert unquote_to_bytes(uri) == bytes(tmp_path / "docs") + b"/100%-\xff\xfe.txt"


def test_the_next_night_skips_the_odd_entries_it_already_reported(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    expected = make_odd_folder(tmp_path / "docs", outside=tmp_path / "outside")
    job = make_job()
    night = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    first = _finish(runs.prepare_run(job, now=night).run_dir)
    assert first.counts.requests == sum(code is None for code in expected.values())
    second = _finish(runs.prepare_run(job, now=night + timedelta(days=1)).run_dir)
    assert second.run_id != first.run_id and second.status == "done"
    assert second.counts.requests == 0
    assert second.counts.documents_skipped == len(expected)


@pytest.mark.parametrize("mode", ["empty", "all rejected"])
def test_a_run_with_nothing_to_send_closes_at_once_as_done(
    mode: str, backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    if mode == "all rejected":
        (docs / "empty.txt").write_bytes(b"")
        (docs / "loop").symlink_to("loop")
    manifest = runs.prepare_run(make_job())
    assert manifest.status == "done", "closed by prepare_run, without waiting for a collect"
    assert runs.list_open_runs(manifest.output) == []
    assert manifest.shards == [] and manifest.counts.requests == 0
    results, errors = assert_every_input_has_one_row(manifest)
    assert results.height == 0
    assert sorted(errors["code"].to_list()) == (
        ["empty", "symlink_loop"] if mode == "all rejected" else []
    )
    assert set(manifest.tables) == {"results", "errors", "costs"}


def test_a_document_rejected_for_a_duplicate_id_is_taken_again_once_the_clash_is_gone(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    # Regression: a `duplicate_id` rejection was remembered as the document's own terminal
    # failure, so the document was skipped every night after the other one went away.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The harbor office moves to the river building in May.")
    (docs / "records.jsonl").write_text(
        '{"id": "note.txt", "text": "The invoice for the ledger audit is due on Friday."}\n'
    )
    job = make_job()
    job = job.model_copy(update={"source": job.source.model_copy(update={"id_field": "id"})})
    night = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    first = _finish(runs.prepare_run(job, now=night).run_dir)
    _, errors = assert_every_input_has_one_row(first)
    assert errors["code"].to_list() == ["duplicate_id"]
    rejected_uri = errors["source_uri"].item()
    kept = docs / "records.jsonl" if rejected_uri.endswith("note.txt") else docs / "note.txt"
    kept.unlink()  # the clash is gone; the rejected document itself is unchanged

    second = _finish(runs.prepare_run(job, now=night + timedelta(days=1)).run_dir)
    assert second.counts.requests == 1, "the document rejected for its id is taken again"
    results, _ = assert_every_input_has_one_row(second)
    assert results["source_uri"].to_list() == [rejected_uri]
