"""End to end: a document the model could not take is an error row, and is never sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.run import run
from schemas.job import JobSpec
from tasks import runs
from tests.flows.conftest import assert_every_input_has_one_row, write_corpus


def test_a_request_over_the_context_window_is_an_error_row_and_never_sent(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 2)
    (tmp_path / "docs" / "huge.txt").write_text("harbour budget report " * 45_000)  # ~135k tokens
    job = make_job(chunking={"max_input_tokens": 100_000, "max_chunks": 1, "overlap_tokens": 0})
    manifest = runs.load_manifest(run(job)["run_dir"])
    results, errors = assert_every_input_has_one_row(manifest)
    assert results.height == 2
    row = errors.row(0, named=True)
    assert (errors.height, row["document_id"], row["stage"], row["code"]) == (
        1,
        "huge.txt",
        "build",
        "context_length_exceeded",
    )
    assert "context window of 128000 tokens" in row["message"]
    [batch] = backend.client().batches.list()
    assert batch.request_counts is not None and batch.request_counts.total == 2, "never sent"
