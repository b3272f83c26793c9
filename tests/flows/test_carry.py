"""A split document processed again sends only the chunks no earlier run answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.run import run
from localbatch import FaultConfig
from schemas.job import JobSpec
from schemas.manifest import META_RUN, RunManifest
from tasks import runs
from tests.flows.conftest import WORDS, read_table, write_corpus


def _long_documents(folder: Path, n: int) -> None:
    """n documents of ~1,300 tokens: three or four requests each at 500 input tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n):
        sentences = [
            " ".join(WORDS[(d * 11 + s * 5 + w) % len(WORDS)] for w in range(14)).capitalize()
            + f" in section {s} of file {d}."
            for s in range(80)
        ]
        paragraphs = ["\n".join(sentences[p : p + 8]) for p in range(0, 80, 8)]
        (folder / f"long-{d:02d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


def _run(job: JobSpec) -> RunManifest:
    return runs.load_manifest(run(job)["run_dir"])


def _lines_sent(server: Any, manifest: RunManifest) -> int:
    batches = server.client().batches.list(limit=100)
    return sum(
        b.request_counts.total
        for b in batches
        if (b.metadata or {}).get(META_RUN) == manifest.run_id and b.request_counts
    )


@pytest.mark.parametrize("output", ["chunk", "document"])
def test_chunks_an_earlier_run_answered_are_not_sent_again(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path, output: str
) -> None:
    # A split document whose chunk failed for good was sent whole again the next night: its
    # answered chunks were paid for twice.
    _long_documents(tmp_path / "docs", 8)
    write_corpus(tmp_path / "docs", 3)
    job = make_job(
        chunking={"max_input_tokens": 500, "overlap_tokens": 0, "output": output},
        limits={"max_attempts": 1},
    )
    backend.set_faults(FaultConfig(line_500_rate=0.35))
    first = _run(job)
    assert first.status == "done"
    table = "chunks" if output == "document" else "results"
    answered = read_table(first, table).filter(pl.col("chunk_count") > 1)
    failed_first = read_table(first, "errors")
    retried = set(failed_first.get_column("document_id").to_list())
    carried_expected = answered.filter(pl.col("document_id").is_in(list(retried)))
    assert carried_expected.height > 0, "the faults left no half-answered document to test"

    backend.set_faults(FaultConfig())
    second = _run(job)
    assert second.status == "done"
    chunks = read_table(second, table).filter(pl.col("chunk_count") > 1)
    carried = chunks.filter(pl.col("cost_usd") == 0)
    # The answered chunks come over as they were, at no cost in this run ...
    assert second.counts.carried == carried.height == carried_expected.height > 0
    keys = ["document_id", "chunk_index", "custom_id", "batch_id", "raw_output"]
    assert carried.select(keys).sort(keys).equals(carried_expected.select(keys).sort(keys))
    assert (carried.get_column("run_id") == second.run_id).all()
    assert (carried.get_column("input_tokens") == 0).all()
    # ... every retried split document has all its chunks again ...
    for (document_id,), rows in chunks.group_by(["document_id"]):
        assert sorted(rows.get_column("chunk_index").to_list()) == list(
            range(rows.get_column("chunk_count")[0])
        ), document_id
    # ... and only the chunks without an answer were sent, each once.
    singles = len(retried) - chunks.get_column("document_id").n_unique()
    assert second.counts.requests == chunks.height - carried.height + singles
    sent = _lines_sent(backend, second)
    assert sent == second.counts.requests + second.counts.reduce_requests
    assert read_table(second, "costs").get_column("requests").sum() == sent
    if output == "document":
        results = read_table(second, "results")
        assert results.height + read_table(second, "errors").height == len(retried)
    # A third night finds nothing left to do.
    third = _run(job)
    assert third.counts.requests == 0 and third.counts.carried == 0


def test_a_document_with_every_chunk_answered_sends_only_its_combining_request(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    # Every chunk answered, the combining request failed for good: the next night sent the
    # document's first chunk again, paying for it twice, before combining.
    _long_documents(tmp_path / "docs", 3)
    job = make_job(
        chunking={"max_input_tokens": 500, "overlap_tokens": 0, "output": "document"},
        limits={"max_attempts": 1},
    )
    backend.set_faults(FaultConfig())
    run_dir = runs.prepare_run(job).run_dir
    runs.advance_run(run_dir)  # the chunk requests go out
    client = backend.client()
    for _ in range(600):
        if all(b.status == "completed" for b in client.batches.list(limit=100)):
            break
        time.sleep(0.05)
    backend.set_faults(FaultConfig(batch_all_lines_fail=True))  # only the combining batch sees it
    for _ in range(600):
        first = runs.advance_run(run_dir)
        if not first.is_open:
            break
        time.sleep(0.05)
    assert first.status == "done"
    chunks = read_table(first, "chunks")
    assert read_table(first, "results").height == 0
    assert read_table(first, "errors").height == 3
    assert chunks.get_column("document_id").n_unique() == 3

    backend.set_faults(FaultConfig())
    second = _run(job)
    assert second.status == "done"
    # No chunk is sent again: every chunk answer is carried, and each document is combined.
    assert second.counts.requests == 0
    assert second.counts.carried == chunks.height
    assert second.counts.reduce_requests == 3
    assert _lines_sent(backend, second) == 3
    results = read_table(second, "results")
    assert results.height == 3 and read_table(second, "errors").height == 0
    carried = read_table(second, "chunks")
    keys = ["document_id", "chunk_index", "custom_id", "batch_id", "raw_output"]
    assert carried.select(keys).sort(keys).equals(chunks.select(keys).sort(keys))
    assert (carried.get_column("cost_usd") == 0).all()
    assert read_table(second, "costs").get_column("requests").sum() == 3
    third = _run(job)
    assert third.counts.requests == 0 and third.counts.reduce_requests == 0
