"""One summary per document, however long: chunk answers (map) reduced by a second Batch stage."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from schemas.job import JobSpec
from schemas.manifest import META_RUN, META_SHARD, RunManifest
from tasks import runs
from tasks.failpoints import EXIT_CODE
from tests.flows.conftest import drive, read_table, write_corpus

GPL = Path("/usr/share/common-licenses/GPL-3")
COPIES = 12


def _long_document(folder: Path) -> Path:
    """12 copies of the GPL-3 text: about 90,000 tokens, far more than one request holds."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpl-12.txt"
    path.write_text("\n\n".join([GPL.read_text(encoding="utf-8")] * COPIES), encoding="utf-8")
    return path


def _reducing_job(make_job: Callable[..., JobSpec], **overrides: Any) -> JobSpec:
    return make_job(chunking={"max_input_tokens": 16_000, "output": "document"}, **overrides)


def _finish(run_dir: str) -> RunManifest:
    for _ in range(600):
        manifest = runs.advance_run(run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.05)
    raise AssertionError(f"{run_dir} still open")


def _batches_of(server: Any, run_id: str) -> list[Any]:
    return [
        b
        for b in server.client().batches.list(limit=100)
        if (b.metadata or {}).get(META_RUN) == run_id
    ]


def _assert_one_row_per_document(manifest: RunManifest, documents: int) -> pl.DataFrame:
    results, errors = read_table(manifest, "results"), read_table(manifest, "errors")
    assert results.height + errors.height == documents
    ids = pl.concat([results.get_column("document_id"), errors.get_column("document_id")])
    assert ids.n_unique() == documents, "a document has more than one row"
    return results


@pytest.mark.skipif(not GPL.exists(), reason="needs Debian's /usr/share/common-licenses/GPL-3")
def test_a_long_document_gets_one_summary_row_and_its_chunk_rows(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    _long_document(tmp_path / "docs")
    write_corpus(tmp_path / "docs", 2)
    job = _reducing_job(make_job)
    manifest = _finish(runs.prepare_run(job).run_dir)

    assert manifest.status == "done"
    results = _assert_one_row_per_document(manifest, 3)
    chunks = read_table(manifest, "chunks")
    n = chunks.height
    assert n > 2, "the long document was split in several requests"
    assert chunks.get_column("document_id").unique().to_list() == ["gpl-12.txt"]
    assert sorted(chunks.get_column("chunk_index").to_list()) == list(range(n))
    assert chunks.get_column("chunk_count").unique().to_list() == [n]

    long = results.filter(pl.col("document_id") == "gpl-12.txt")
    assert long.height == 1
    row = long.row(0, named=True)
    assert row["chunk_index"] is None and row["chunk_count"] == n
    assert row["custom_id"].endswith("-r") and row["summary"] and row["title"]
    # The combined answer reads like the document's: the first part's title, no JSON.
    first = chunks.filter(pl.col("chunk_index") == 0).row(0, named=True)
    assert row["title"] == first["title"]
    assert "{" not in row["summary"] and "too long to read" not in row["summary"]
    short = results.filter(pl.col("document_id") != "gpl-12.txt")
    assert short.get_column("chunk_count").to_list() == [1, 1]

    # Both stages went through the Batch API: one batch per shard, the reduce one keyed r1/.
    keys = sorted(b.metadata[META_SHARD] for b in _batches_of(backend, manifest.run_id))
    assert keys == sorted(s.key for s in manifest.shards)
    assert [k.split("/")[0] for k in keys] == ["a1", "r1"]

    # Costs cover both stages: every request, and every billed token of map and reduce.
    costs = read_table(manifest, "costs")
    assert costs.get_column("requests").sum() == n + 2 + 1
    billed = pl.concat([results, chunks])
    for column in ("input_tokens", "output_tokens"):
        assert costs.get_column(column).sum() == billed.get_column(column).sum()
    assert costs.get_column("batch_cost_usd").sum() == pytest.approx(
        billed.get_column("cost_usd").sum()
    )
    assert manifest.counts.reduce_requests == 1 and manifest.counts.chunks == n


def test_per_chunk_output_stays_the_default(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "long.txt").write_text(
        "\n\n".join(f"Paragraph {i}: " + "the harbor ledger lists copper. " * 60 for i in range(40))
    )
    job = make_job(chunking={"max_input_tokens": 2_000})
    assert job.chunking.output == "chunk"
    manifest = _finish(runs.prepare_run(job).run_dir)
    results = read_table(manifest, "results")
    assert results.height == manifest.counts.requests > 1
    assert "chunks" not in manifest.tables
    assert all(not s.key.startswith("r") for s in manifest.shards)


@pytest.mark.skipif(not GPL.exists(), reason="needs Debian's /usr/share/common-licenses/GPL-3")
@pytest.mark.parametrize("failpoint", ["before-reduce-recorded", "after-reduce-planned"])
def test_killed_between_map_and_reduce_resumes_to_the_same_single_row(
    failpoint: str, batch_server: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    _long_document(tmp_path / "docs")
    write_corpus(tmp_path / "docs", 1)
    job = _reducing_job(make_job)
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())

    killed = drive(job_file, batch_server, "run", failpoint)
    assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    [run_dir] = runs.list_runs(job.output)
    stopped = runs.load_manifest(run_dir)
    assert all(s.state == "parsed" for s in stopped.shards if s.key.startswith("a"))
    planned = [s for s in stopped.shards if s.key.startswith("r")]
    assert len(planned) == (1 if failpoint == "after-reduce-planned" else 0)

    again = drive(job_file, batch_server, "collect", None)
    assert again.returncode == 0, again.stderr[-3000:]
    manifest = runs.load_manifest(run_dir)
    assert manifest.status == "done"
    results = _assert_one_row_per_document(manifest, 2)
    assert results.filter(pl.col("document_id") == "gpl-12.txt").height == 1
    batches = _batches_of(batch_server, manifest.run_id)
    keys = [b.metadata[META_SHARD] for b in batches]
    assert sorted(keys) == sorted(s.key for s in manifest.shards), "one batch per shard"
    assert len([k for k in keys if k.startswith("r1/")]) == 1, "the reduce batch went out once"


@pytest.mark.skipif(not GPL.exists(), reason="needs Debian's /usr/share/common-licenses/GPL-3")
def test_a_long_document_whose_chunks_fail_gets_one_error_row_and_no_reduce(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from localbatch import FaultConfig

    _long_document(tmp_path / "docs")
    write_corpus(tmp_path / "docs", 1)
    job = _reducing_job(make_job)
    backend.set_faults(FaultConfig(line_refusal_rate=1.0))
    try:
        manifest = _finish(runs.prepare_run(job).run_dir)
    finally:
        backend.set_faults(FaultConfig())

    assert manifest.status == "done"
    assert _assert_one_row_per_document(manifest, 2).height == 0
    errors = read_table(manifest, "errors")
    long = errors.filter(pl.col("document_id") == "gpl-12.txt").row(0, named=True)
    n = long["chunk_count"]
    assert long["chunk_index"] == 0 and long["code"] == "refusal"
    assert long["message"].startswith(f"chunk 1 of {n} failed ({n} of its chunks did)")
    assert read_table(manifest, "chunks").height == 0
    assert not [s for s in manifest.shards if s.key.startswith("r")], "nothing to reduce"
    assert read_table(manifest, "costs").get_column("requests").sum() == n + 1


@pytest.mark.skipif(not GPL.exists(), reason="needs Debian's /usr/share/common-licenses/GPL-3")
def test_a_failing_reduce_request_is_retried_in_its_own_stage_then_ends_as_one_error_row(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from localbatch import FaultConfig

    _long_document(tmp_path / "docs")
    write_corpus(tmp_path / "docs", 1)
    job = _reducing_job(make_job, limits={"max_attempts": 2})
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())
    # The map stage runs clean; the process stops once the reduce shard is recorded, unsent.
    killed = drive(job_file, backend, "run", "after-reduce-planned")
    assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    [run_dir] = runs.list_runs(job.output)
    backend.set_faults(FaultConfig(line_500_rate=1.0))  # every reduce line fails, retryably
    try:
        manifest = _finish(run_dir)
    finally:
        backend.set_faults(FaultConfig())

    assert sorted(s.key.split("/")[0] for s in manifest.shards) == ["a1", "r1", "r2"]
    results = _assert_one_row_per_document(manifest, 2)
    assert results.get_column("chunk_count").to_list() == [1]
    [row] = read_table(manifest, "errors").to_dicts()
    assert row["document_id"] == "gpl-12.txt" and row["custom_id"].endswith("-r")
    assert row["attempt"] == 2 and row["chunk_index"] is None
    assert "gave up after 2 attempt(s)" in row["message"]
    n = read_table(manifest, "chunks").height
    assert n > 2
    costs = read_table(manifest, "costs")
    assert costs.get_column("requests").sum() == n + 1 + 1, "a retried request counts once"
    keys = [b.metadata[META_SHARD] for b in _batches_of(backend, manifest.run_id)]
    assert sorted(keys) == sorted(s.key for s in manifest.shards)


@pytest.mark.skipif(not GPL.exists(), reason="needs Debian's /usr/share/common-licenses/GPL-3")
def test_chunk_answers_too_long_to_combine_give_an_error_row_not_a_stuck_run(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    """Regression: a reduce request over the shard token limit raised on every collect."""
    _long_document(tmp_path / "docs")
    write_corpus(tmp_path / "docs", 2)
    # Each chunk request (≤ 4,000 tokens) fits a 5,000-token shard; the ~20 chunk answers
    # together do not.
    job = make_job(
        chunking={"max_input_tokens": 4_000, "output": "document"},
        limits={"max_shard_tokens": 5_000},
    )
    manifest = _finish(runs.prepare_run(job).run_dir)

    assert manifest.status == "done"
    assert len(manifest.reduce_oversized) == 1
    assert manifest.counts.reduce_requests == 0
    results = _assert_one_row_per_document(manifest, 3)
    assert "gpl-12.txt" not in results.get_column("document_id").to_list()
    error = read_table(manifest, "errors").filter(pl.col("document_id") == "gpl-12.txt")
    assert error.get_column("code").to_list() == ["reduce_too_large"]
    message = error.get_column("message")[0]
    assert "limits.max_shard_tokens" in message and "chunks table" in message
    chunks = read_table(manifest, "chunks")
    assert chunks.height == chunks.get_column("chunk_count")[0] > 2
    # Collecting again changes nothing: the document is never planned again.
    again = runs.advance_run(manifest.run_dir)
    assert again.status == "done" and len(again.reduce_oversized) == 1
