"""Cancel: every batch that can be cancelled is, finished ones are collected and billed, and
the run's final status says what really happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from localbatch import FaultConfig, LocalBatchServer, ServerConfig
from overnight.cli import app
from schemas.job import JobSpec
from tasks import runs
from tasks.gateway import get_gateway
from tests.flows.conftest import assert_every_input_has_one_row, read_table, write_corpus


@pytest.fixture
def batch_server(tmp_path: Path) -> Iterator[LocalBatchServer]:
    """The local Batch API running one batch at a time: the next ones wait in `validating`."""
    config = ServerConfig(
        data_dir=tmp_path / "localbatch", api_key="test-key", max_concurrent_batches=1
    )
    with LocalBatchServer(config) as server:
        yield server


def _wait_for(
    client: openai.OpenAI, batch_id: str, statuses: tuple[str, ...], timeout: float = 60.0
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.batches.retrieve(batch_id).status
        if status in statuses:
            return status
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} never reached {statuses}")


def _finish(run_dir: str) -> runs.RunManifest:
    for _ in range(600):
        manifest = runs.advance_run(run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def test_cancel_while_batches_are_completed_running_validating_and_unsent(
    backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 8)
    job = make_job(limits={"max_requests_per_shard": 2})
    manifest = runs.prepare_run(job)
    assert len(manifest.shards) == 4
    gateway = get_gateway(manifest.backend)
    client = backend.client()

    # Shard 1 runs to completion (the run has not polled it: it still looks in flight).
    assert runs.submit_ready(manifest, gateway, max_in_flight_tokens=1) == 1
    done_id = manifest.shards[0].batch_id
    assert done_id is not None
    _wait_for(client, done_id, ("completed",))
    # Shards 2 and 3 are sent slow: one runs, the other waits its turn; shard 4 is held back.
    backend.set_faults(FaultConfig(line_delay_seconds=3.0))
    three = sum(s.input_tokens for s in manifest.shards[:3])
    assert runs.submit_ready(manifest, gateway, max_in_flight_tokens=three) == 2
    running_id, waiting_id = manifest.shards[1].batch_id, manifest.shards[2].batch_id
    assert running_id is not None and waiting_id is not None
    _wait_for(client, running_id, ("in_progress",))
    assert client.batches.retrieve(waiting_id).status == "validating"
    assert manifest.shards[3].state in ("built", "uploaded")

    cancelled = runs.cancel_run(manifest.run_dir)
    outcomes = [(c.batch_id, c.outcome, c.batch_status) for c in cancelled.cancels]
    assert outcomes == [
        (done_id, "already_finished", "completed"),
        (running_id, "cancelled", "cancelling"),
        (waiting_id, "cancelled", "cancelling"),
        (None, "not_submitted", None),
    ]
    assert "Cannot cancel a batch with status 'completed'" in cancelled.cancels[0].message

    backend.set_faults(FaultConfig())
    final = _finish(manifest.run_dir)
    assert final.status == "cancelled"
    results, errors = assert_every_input_has_one_row(final)
    first = set(results.filter(pl.col("batch_id") == done_id)["document_id"].to_list())
    assert first == {"doc-0000.txt", "doc-0001.txt"}, "the finished batch's results are kept"
    assert (results["cost_usd"] > 0).all()
    assert set(errors["code"].to_list()) == {"batch_cancelled"}
    assert errors.height == 8 - results.height >= 4  # shards 3 and 4 never ran a line
    costs = read_table(final, "costs")
    assert costs["succeeded"].sum() == results.height
    assert costs["batch_cost_usd"].sum() == pytest.approx(results["cost_usd"].sum())
    assert any("never ran" in note for note in final.notes)

    # The next night takes the cancelled documents again (a cancel is no verdict on them)
    # and skips the ones the finished batch did.
    again = runs.prepare_run(job)
    assert again.counts.requests == errors.height
    assert again.counts.documents_skipped == results.height


def test_cancel_after_every_batch_finished_keeps_and_bills_everything(
    backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 6)
    manifest = runs.prepare_run(make_job(limits={"max_requests_per_shard": 2}))
    gateway = get_gateway(manifest.backend)
    runs.submit_ready(manifest, gateway, max_in_flight_tokens=None)
    client = backend.client()
    for shard in manifest.shards:
        assert shard.batch_id is not None
        _wait_for(client, shard.batch_id, ("completed",))

    cancelled = runs.cancel_run(manifest.run_dir)
    assert [c.outcome for c in cancelled.cancels] == ["already_finished"] * 3
    final = _finish(manifest.run_dir)
    assert final.status == "done", "nothing was cancelled, so the run is not 'cancelled'"
    assert any("nothing was cancelled" in note for note in final.notes)
    results, errors = assert_every_input_has_one_row(final)
    assert (results.height, errors.height) == (6, 0)
    assert read_table(final, "costs")["batch_cost_usd"].sum() > 0


def test_the_cancel_command_reports_each_batch(
    backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 4)
    job = make_job(limits={"max_requests_per_shard": 2})
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_defaults=True)))
    manifest = runs.prepare_run(job)
    gateway = get_gateway(manifest.backend)
    runs.submit_ready(manifest, gateway, max_in_flight_tokens=1)
    first = manifest.shards[0].batch_id
    assert first is not None
    _wait_for(backend.client(), first, ("completed",))

    result = CliRunner().invoke(app, ["cancel", manifest.run_id, str(job_file)])
    assert result.exit_code == 0, result.output
    assert f"a1/shard-00000  {first}  already finished" in result.output
    assert "a1/shard-00001  -  not submitted" in result.output
    assert "0 cancelled, 1 already finished, 1 not submitted, 0 failed" in result.output


def test_a_cancel_the_api_refuses_is_reported_and_can_be_tried_again(
    backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 4)
    job = make_job(limits={"max_requests_per_shard": 2})
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_defaults=True)))
    backend.set_faults(FaultConfig(line_delay_seconds=3.0))
    manifest = runs.prepare_run(job)
    runs.submit_ready(manifest, get_gateway(manifest.backend), max_in_flight_tokens=None)

    backend.set_faults(line_delay_seconds=3.0, api_500_rate=1.0)
    refused = CliRunner().invoke(app, ["cancel", manifest.run_id, str(job_file)])
    assert refused.exit_code == 1
    assert refused.output.count("failed to cancel") == 2
    assert "0 cancelled, 0 already finished, 0 not submitted, 2 failed" in refused.output

    backend.set_faults(FaultConfig(line_delay_seconds=3.0))
    again = runs.cancel_run(manifest.run_dir)
    assert [c.outcome for c in again.cancels] == ["cancelled", "cancelled"]
    backend.set_faults(FaultConfig())
    final = _finish(manifest.run_dir)
    assert final.status == "cancelled"
    assert_every_input_has_one_row(final)


def test_run_after_a_cancel_finishes_it_and_runs_the_job(
    backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    """`run` after `cancel` only closed the cancelled run (exit 0, nothing run): its documents
    waited for a second `run`."""
    from tasks.lifecycle import DirectRuntime, run_job

    write_corpus(tmp_path / "docs", 6)
    job = make_job()
    backend.set_faults(FaultConfig(line_delay_seconds=3.0))
    manifest = runs.prepare_run(job)
    assert runs.submit_ready(manifest, get_gateway(manifest.backend), max_in_flight_tokens=10**9)
    batch_id = manifest.shards[0].batch_id
    assert batch_id is not None
    _wait_for(backend.client(), batch_id, ("in_progress",))
    runs.cancel_run(manifest.run_dir)
    listed = CliRunner().invoke(app, ["status", "-o", job.output])
    assert f"{manifest.run_id} │ cancelling" in listed.output  # it said in_progress
    backend.set_faults(FaultConfig())

    summary = run_job(job, full=False, retry_failed=False, runtime=DirectRuntime())
    cancelled = runs.load_manifest(manifest.run_dir)
    assert cancelled.status == "cancelled" and not cancelled.is_open
    assert summary["run_id"] != manifest.run_id and summary["status"] == "done"
    done = runs.load_manifest(summary["run_dir"])
    results, _ = assert_every_input_has_one_row(done)
    kept = read_table(cancelled, "results").height
    assert results.height + kept == 6, "every document has its result after one run"


def test_submit_after_a_cancel_waits_for_its_batches_then_sends_the_rest(
    backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    """`submit` after `cancel` resumed the cancelled run: it said "0 batch(es) created" and
    sent nothing. It now sends nothing while the cancelled batches may still answer (that
    could pay twice), says so, and once they have stopped closes the run and sends the rest."""
    write_corpus(tmp_path / "docs", 6)
    job = make_job()
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_defaults=True)))
    backend.set_faults(FaultConfig(line_delay_seconds=5.0))
    manifest = runs.prepare_run(job)
    assert runs.submit_ready(manifest, get_gateway(manifest.backend), max_in_flight_tokens=10**9)
    batch_id = manifest.shards[0].batch_id
    assert batch_id is not None
    client = backend.client()
    _wait_for(client, batch_id, ("in_progress",))
    runs.cancel_run(manifest.run_dir)

    early = CliRunner().invoke(app, ["submit", str(job_file)])
    assert early.exit_code == 2, early.output
    said = " ".join(early.output.split())
    assert f"run {manifest.run_id} of job {job.name} was asked to cancel" in said
    assert "1 of its batch(es) are still stopping" in said
    assert "nothing was submitted" in said
    assert len(client.batches.list().data) == 1
    assert runs.load_manifest(manifest.run_dir).is_open

    _wait_for(client, batch_id, ("cancelled",))
    backend.set_faults(FaultConfig())
    later = CliRunner().invoke(app, ["submit", str(job_file)])
    assert later.exit_code == 0, later.output
    cancelled = runs.load_manifest(manifest.run_dir)
    assert cancelled.status == "cancelled" and not cancelled.is_open
    new_dir = later.output.split("submitted:", 1)[1].split()[0]
    assert new_dir != manifest.run_dir
    done = _finish(new_dir)
    results, _ = assert_every_input_has_one_row(done)
    kept = read_table(cancelled, "results").height
    assert results.height + kept == 6, "every document has its result, none twice"
