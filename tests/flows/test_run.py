"""The run flow end to end: documents in, typed parquet and costs out, through the local API."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from flows.run import run
from localbatch import FaultConfig
from schemas.job import JobSpec
from tasks import runs
from tests.flows.conftest import (
    assert_every_input_has_one_row,
    overnight,
    read_table,
    write_corpus,
)


def _run(job: JobSpec) -> runs.RunManifest:
    summary = run(job)
    return runs.load_manifest(summary["run_dir"])


def test_documents_become_typed_results_with_costs(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 12)
    manifest = _run(make_job())
    assert manifest.status == "done"
    results, errors = assert_every_input_has_one_row(manifest)
    assert (results.height, errors.height) == (12, 0)
    assert results["attempt"].to_list() == [1] * 12
    assert results["summary"].null_count() == 0 and results["summary"].n_unique() == 12
    assert (results["input_tokens"] > 0).all() and (results["cost_usd"] > 0).all()

    costs = read_table(manifest, "costs")
    assert costs.height == 1
    row = costs.row(0, named=True)
    assert row["requests"] == row["succeeded"] == 12
    assert row["input_tokens"] == results["input_tokens"].sum()
    assert row["batch_cost_usd"] == pytest.approx(results["cost_usd"].sum())
    assert row["standard_cost_usd"] == pytest.approx(2 * row["batch_cost_usd"])
    assert row["savings_usd"] == pytest.approx(row["batch_cost_usd"])
    assert row["estimated_cost_usd"] >= row["batch_cost_usd"], "the estimate is an upper bound"


def test_duckdb_reads_the_tables_with_hive_partitions(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 3)
    manifest = _run(make_job())
    out = tmp_path / "out"
    con = duckdb.connect()
    rows = con.execute(
        f"select job, run_date, count(*) from read_parquet('{out}/results/*/*/*.parquet', "
        "hive_partitioning = true) group by all"
    ).fetchall()
    assert rows == [("nightly-test", manifest.created_at.date(), 3)]
    costs = con.execute(
        f"select sum(batch_cost_usd) from read_parquet('{out}/costs/*/*/*.parquet', hive_partitioning = true)"
    ).fetchone()
    assert costs is not None and costs[0] > 0


def test_bad_documents_end_in_the_errors_table(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, 2)
    (docs / "empty.txt").write_text("")
    (docs / "binary.exe").write_bytes(b"\x7fELF\x00\x01\x02" * 50)
    (docs / "broken.txt").write_bytes(b"\x00\x01\x02 binary \x00 in a .txt")
    manifest = _run(make_job())
    results, errors = assert_every_input_has_one_row(manifest)
    assert results.height == 2
    by_doc = dict(errors.select("document_id", "code").iter_rows())
    assert by_doc == {
        "empty.txt": "empty",
        "binary.exe": "unsupported_type",
        "broken.txt": "undecodable",
    }
    assert (errors["stage"] == "load").all()


def test_line_faults_are_retried_or_recorded_with_their_reason(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 40)
    backend.set_faults(
        FaultConfig(
            line_500_rate=0.1,
            line_429_rate=0.1,
            line_timeout_rate=0.05,
            line_invalid_json_rate=0.05,
            line_schema_violation_rate=0.05,
            line_refusal_rate=0.05,
            line_length_rate=0.05,
        )
    )
    manifest = _run(make_job(limits={"max_attempts": 4}))
    results, errors = assert_every_input_has_one_row(manifest)
    codes = set(errors["code"].to_list())
    assert {"invalid_json", "schema_mismatch", "refusal", "truncated"} & codes
    gave_up = errors.filter(pl.col("stage") == "api")
    assert (gave_up["attempt"] == 4).all() and gave_up["retryable"].all(), (
        "API failures are retried"
    )
    assert results["attempt"].max() > 1, "retried requests succeeded on a later attempt"
    assert manifest.current_attempt > 1
    # Failed-but-billed requests still count in the cost table.
    costs = read_table(manifest, "costs").row(0, named=True)
    assert costs["failed"] == errors.height
    assert costs["batch_cost_usd"] >= results["cost_usd"].sum() + errors["cost_usd"].sum() - 1e-12


def test_retries_are_bounded(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 5)
    backend.set_faults(FaultConfig(batch_all_lines_fail=True))
    manifest = _run(make_job(limits={"max_attempts": 2}))
    results, errors = assert_every_input_has_one_row(manifest)
    assert results.height == 0 and errors.height == 5
    assert errors["attempt"].to_list() == [2] * 5
    assert errors["retryable"].all()
    assert all("gave up after 2" in m for m in errors["message"].to_list())


def test_expired_batch_keeps_partial_results_and_resubmits_the_rest(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 20)
    backend.set_faults(FaultConfig(batch_expire_after_fraction=0.5))
    manifest = _run(make_job(limits={"max_attempts": 3}))
    results, _errors = assert_every_input_has_one_row(manifest)
    first = manifest.shards[0]
    assert first.batch_status == "expired"
    assert 0 < first.results < 20
    attempts = results["attempt"].value_counts().sort("attempt")
    assert attempts["attempt"].to_list()[0] == 1 and attempts["attempt"].max() >= 2


def test_token_limit_failure_is_resubmitted(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 6)
    backend.set_faults(FaultConfig(batch_enqueued_token_limit=10))
    job = make_job(limits={"max_attempts": 2})
    manifest = _run(job)
    _, errors = assert_every_input_has_one_row(manifest)
    assert set(errors["code"].to_list()) == {"token_limit_exceeded"}


def test_in_flight_token_limit_makes_shards_wait_their_turn(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 9)
    job = make_job(limits={"max_requests_per_shard": 3, "max_in_flight_tokens": 1})
    prepared = runs.prepare_run(job)
    from tasks.gateway import get_gateway

    gateway = get_gateway(prepared.backend)
    created = runs.submit_ready(prepared, gateway, max_in_flight_tokens=1)
    assert created == 1 and [s.state for s in prepared.shards] == ["created", "built", "built"]
    manifest = _run(job)
    assert manifest.run_id == prepared.run_id, "run resumed the open run"
    assert_every_input_has_one_row(manifest)
    assert len({s.batch_id for s in manifest.shards}) == 3


def test_cancel_records_every_cancelled_request(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 6)
    backend.set_faults(FaultConfig(line_delay_seconds=0.5))
    job = make_job(limits={"max_requests_per_shard": 3, "max_in_flight_tokens": 1})
    manifest = runs.prepare_run(job)
    runs.advance_run(manifest.run_dir)
    runs.cancel_run(manifest.run_dir)
    backend.set_faults(FaultConfig())
    for _ in range(200):
        manifest = runs.advance_run(manifest.run_dir)
        if not manifest.is_open:
            break
        time.sleep(0.05)
    assert manifest.status == "cancelled"
    _results, errors = assert_every_input_has_one_row(manifest)
    assert "batch_cancelled" in set(errors["code"].to_list())
    assert pl.Series(errors["retryable"]).sum() == 0


def test_long_document_gives_one_row_per_chunk(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, 1)
    paragraphs = [
        f"Section {i}. The harbor office logged {i * 7} arrivals and {i * 3} departures, "
        "with the night shift noting calm water and clear signals throughout." * 3
        for i in range(60)
    ]
    (docs / "long.txt").write_text("\n\n".join(paragraphs))
    job = make_job(chunking={"max_input_tokens": 1500, "overlap_tokens": 50})
    manifest = _run(job)
    results, _ = assert_every_input_has_one_row(manifest)
    long = results.filter(pl.col("document_id") == "long.txt").sort("chunk_index")
    count = long["chunk_count"][0]
    assert count > 3
    assert long["chunk_index"].to_list() == list(range(count))
    assert (long["input_tokens"] <= 1500 + 200).all()


def test_run_publishes_cost_and_report_artifacts(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    write_corpus(tmp_path / "docs", 2)
    manifest = _run(make_job())

    async def artifacts() -> dict[str, str]:
        async with get_client() as client:
            found = await client.read_artifacts()
        return {a.key or "": a.type or "" for a in found}

    by_key = asyncio.run(artifacts())
    key = manifest.run_id.lower()
    assert by_key.get(f"{key}-costs") == "table"
    assert by_key.get(f"{key}-report") == "markdown"


def test_failed_batch_validation_ends_every_request_with_the_reason(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 3)
    backend.set_faults(FaultConfig(batch_fail_validation=True))
    manifest = _run(make_job())
    results, errors = assert_every_input_has_one_row(manifest)
    assert results.height == 0
    assert manifest.shards[0].batch_status == "failed"
    assert not errors["retryable"].any(), "a file the API rejects is not sent again"
    assert all(m.startswith("batch failed:") for m in errors["message"].to_list())


def test_flaky_and_slow_api_still_creates_each_batch_once(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 8)
    backend.set_faults(
        FaultConfig(api_429_rate=0.2, api_500_rate=0.2, api_delay_seconds=0.05, api_delay_rate=0.3)
    )
    manifest = _run(make_job(limits={"max_requests_per_shard": 2}))
    backend.set_faults(FaultConfig())
    results, _ = assert_every_input_has_one_row(manifest)
    assert results.height == 8
    batches = [
        b
        for b in backend.client().batches.list(limit=100)
        if (b.metadata or {}).get("overnight_run_id") == manifest.run_id
    ]
    assert len(batches) == len(manifest.shards) == 4


def test_responses_endpoint_end_to_end(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 3)
    manifest = _run(make_job(endpoint="/v1/responses"))
    results, errors = assert_every_input_has_one_row(manifest)
    assert (results.height, errors.height) == (3, 0)
    assert (results["input_tokens"] > 0).all() and results["title"].null_count() == 0


def test_images_become_vision_requests_end_to_end(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    cases = Path(__file__).resolve().parents[1] / "cases"
    (docs / "scan.png").write_bytes((cases / "pixel.png").read_bytes())
    (docs / "fake.png").write_bytes((cases / "not-really.png").read_bytes())
    manifest = _run(make_job())
    results, errors = assert_every_input_has_one_row(manifest)
    assert results["document_id"].to_list() == ["scan.png"]
    assert errors["document_id"].to_list() == ["fake.png"]
    shard = Path(manifest.shards[0].uri).read_text()
    assert '"image_url"' in shard and "data:image/png;base64," in shard


def test_submit_refuses_a_run_over_budget_before_sending_anything(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 5)
    job = make_job(budget_usd=0.0001)
    with pytest.raises(runs.RunError, match="exceeds budget_usd"):
        runs.prepare_run(job)
    (run_dir,) = runs.list_runs(job.output)
    manifest = runs.load_manifest(run_dir)
    assert manifest.status == "cancelled" and manifest.notes[0].startswith("refused:")
    assert runs.list_open_runs(job.output) == []
    assert list(backend.client().batches.list()) == [], "nothing was sent"
    # `status` says it was refused and why, not only "cancelled"
    listed = overnight("status", "-o", job.output)
    assert "cancelled (refused: nothing sent)" in listed.stdout, listed.stdout
    one = overnight("status", "-o", job.output, "--run", manifest.run_id)
    assert "refused: " in one.stdout and "exceeds budget_usd" in one.stdout, one.stdout
