"""The lifecycle as the CLI drives it without Prefect: polling by the rule, runs kept apart."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localbatch import LocalBatchServer, ServerConfig
from overnight.settings import get_settings
from schemas.job import JobSpec
from tasks import runs
from tasks.gateway import reset_gateways
from tasks.lifecycle import DirectRuntime, collect_output, run_job
from tests.flows.conftest import overnight, write_corpus


@pytest.fixture
def slow_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBatchServer]:
    """A local Batch API whose batches stay in progress for 4 s, pointed to like OpenAI."""
    config = ServerConfig(
        data_dir=tmp_path / "slow-api", api_key="slow-key", min_in_progress_seconds=4.0
    )
    with LocalBatchServer(config) as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        get_settings.cache_clear()
        reset_gateways()
        yield server
    get_settings.cache_clear()
    reset_gateways()


def _finished(server: LocalBatchServer, manifest: runs.RunManifest) -> tuple[float, int]:
    """Seconds from the batch's completion (server clock) to the run's end, and polls made."""
    (shard,) = manifest.shards
    assert shard.batch_id is not None and manifest.finished_at is not None
    batch = server.client().batches.retrieve(shard.batch_id)
    assert batch.completed_at is not None
    return manifest.finished_at.timestamp() - batch.completed_at, shard.polls


def test_a_batch_on_a_local_api_is_picked_up_within_seconds(
    slow_backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 5)
    summary = run_job(make_job(), full=False, retry_failed=False, runtime=DirectRuntime())
    manifest = runs.load_manifest(summary["run_dir"])
    assert manifest.status == "done"
    late, polls = _finished(slow_backend, manifest)
    # A poll within a second of the batch's end, then the download, parse and tables: ~1 s
    # on a quiet machine, 2.01 s once on 2 cores shared with the rest of the suite and
    # another busy process. A remote backend's schedule would wait minutes.
    assert late < 3.0
    assert polls >= 4  # at least once a second while the batch worked


def test_a_remote_backend_is_polled_sparsely(
    slow_backend: LocalBatchServer,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OVERNIGHT_POLL_POLICY", "remote")
    get_settings.cache_clear()
    write_corpus(tmp_path / "docs", 5)
    summary = run_job(make_job(), full=False, retry_failed=False, runtime=DirectRuntime())
    manifest = runs.load_manifest(summary["run_dir"])
    late, polls = _finished(slow_backend, manifest)
    # first look 3 s after creating, then every 2 s (the floor) while the batch is young
    assert 2 <= polls <= 4
    assert late < 3.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_one_broken_run_does_not_stop_the_others(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 3)
    write_corpus(tmp_path / "other", 2)
    healthy = runs.prepare_run(make_job(name="healthy"))
    broken = runs.prepare_run(
        make_job(str(tmp_path / "other"), name="broken"),
        backend=f"http://127.0.0.1:{_closed_port()}/v1",
    )
    for _ in range(40):  # a scheduled collect, every half second
        found = collect_output(str(tmp_path / "out"), runtime=DirectRuntime())
        outcomes = {o.run_id: o for o in found}
        if outcomes[healthy.run_id].status == "done":
            break
        time.sleep(0.5)
    assert outcomes[healthy.run_id].status == "done"
    assert outcomes[healthy.run_id].problem is None
    problem = outcomes[broken.run_id].problem
    assert problem is not None and problem.startswith("cannot reach the Batch API at")
    stuck = runs.load_manifest(broken.run_dir)
    assert stuck.is_open and stuck.problem == problem

    status = overnight("status", "-o", str(tmp_path / "out"))
    assert status.returncode == 0, status.stderr
    assert f"{broken.run_id} could not move forward" in status.stdout
    assert "cannot reach the Batch API" in status.stdout
    assert f"overnight cancel {broken.run_id}" in status.stdout


def test_a_lone_broken_run_is_reported_once(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 2)
    broken = runs.prepare_run(make_job(), backend=f"http://127.0.0.1:{_closed_port()}/v1")
    collected = overnight("collect", "-o", str(tmp_path / "out"))
    assert collected.returncode == 2, collected.stderr
    said = [line for line in collected.stderr.splitlines() if broken.run_id in line]
    assert len(said) == 1 and said[0].startswith(f"error: run {broken.run_id}: cannot reach")


def _table_text(manifest: runs.RunManifest) -> str:
    from rich.console import Console

    from tasks.reporting import progress_table

    console = Console(record=True, width=200)
    console.print(progress_table(manifest))
    return console.export_text()


def test_an_open_run_is_queryable_as_its_batches_land(
    slow_backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from tasks.analytics import query

    write_corpus(tmp_path / "docs", 6)
    # three requests a shard, and room for one batch at a time: the second waits for the first
    job = make_job(limits={"max_requests_per_shard": 3, "max_in_flight_tokens": 1})
    manifest = runs.prepare_run(job)
    assert runs.submit_run(manifest.run_dir) == 1
    shown = _table_text(runs.load_manifest(manifest.run_dir))
    assert "running" in shown and "waiting for room" in shown

    output = str(tmp_path / "out")
    assert query(output, "select count(*) as n from results")["n"].to_list() == [0]
    deadline = time.monotonic() + 60
    while runs.load_manifest(manifest.run_dir).shards[0].state != "parsed":
        assert time.monotonic() < deadline
        runs.advance_run(manifest.run_dir)
        time.sleep(0.3)
    landed = query(output, "select count(*) as n, bool_and(partial) as p from results")
    assert landed.rows() == [(3, True)]
    latest = query(output, "select count(*) as n from latest where partial")
    assert latest["n"].to_list() == [3]
    assert "3 ok, 0 err" in _table_text(runs.load_manifest(manifest.run_dir))

    while runs.load_manifest(manifest.run_dir).is_open:
        assert time.monotonic() < deadline
        runs.advance_run(manifest.run_dir)
        time.sleep(0.3)
    final = query(output, "select count(*) as n, bool_or(partial) as p from results")
    assert final.rows() == [(6, False)]


def test_an_open_per_document_run_shows_documents_not_chunks(
    slow_backend: LocalBatchServer, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from tasks.analytics import query

    docs = tmp_path / "docs"
    write_corpus(docs, 1)
    long_text = " ".join(f"Paragraph {i} says the harbour ledger rose again." for i in range(900))
    (docs / "long.txt").write_text(long_text, encoding="utf-8")
    job = make_job(chunking={"max_input_tokens": 2_000, "output": "document"})
    manifest = runs.prepare_run(job)
    runs.submit_run(manifest.run_dir)
    output = str(tmp_path / "out")
    deadline = time.monotonic() + 90
    while not any(s.key.startswith("r") for s in runs.load_manifest(manifest.run_dir).shards):
        assert time.monotonic() < deadline
        runs.advance_run(manifest.run_dir)
        time.sleep(0.3)
    # the map stage has landed, the reduce batch is in flight: only the one-request document
    # is a result so far; the long document's chunk answers are not results
    landed = query(output, "select document_id, partial from results")
    assert landed.rows() == [("doc-0000.txt", True)]
    while runs.load_manifest(manifest.run_dir).is_open:
        assert time.monotonic() < deadline
        runs.advance_run(manifest.run_dir)
        time.sleep(0.3)
    final = query(output, "select document_id, partial from results order by 1")
    assert final.rows() == [("doc-0000.txt", False), ("long.txt", False)]


def test_an_open_run_on_s3_is_queryable_as_its_batches_land(
    slow_backend: LocalBatchServer,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks.analytics import query

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the query's S3 mirror
    write_corpus(tmp_path / "docs", 4)
    output = f"s3://{s3_bucket}/overnight"
    job = make_job(output=output, limits={"max_requests_per_shard": 2, "max_in_flight_tokens": 1})
    manifest = runs.prepare_run(job)
    runs.submit_run(manifest.run_dir)
    deadline = time.monotonic() + 60
    while runs.load_manifest(manifest.run_dir).shards[0].state != "parsed":
        assert time.monotonic() < deadline
        runs.advance_run(manifest.run_dir)
        time.sleep(0.3)
    landed = query(output, "select count(*) as n, bool_and(partial) as p from results")
    assert landed.rows() == [(2, True)]
    while runs.load_manifest(manifest.run_dir).is_open:
        assert time.monotonic() < deadline
        runs.advance_run(manifest.run_dir)
        time.sleep(0.3)
    final = query(output, "select count(*) as n, bool_or(partial) as p from results")
    assert final.rows() == [(4, False)]


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (PermissionError(13, "Permission denied", "/srv/out"), "permission denied on /srv/out: "),
        (OSError(30, "Read-only file system", "/mnt/ro/out"), "/mnt/ro/out is on a read-only"),
        (OSError(28, "No space left on device", "/d/x.parquet"), "no space left on the disk of"),
    ],
)
def test_a_folder_overnight_cannot_write_says_what_to_do(error: OSError, said: str) -> None:
    """An output folder without write access ended `run` with "[Errno 13] Permission denied:
    '/srv/out'", not saying what the folder was for or what to do."""
    from tasks.lifecycle import describe_failure

    message = describe_failure(error)
    assert message.startswith(said) and "[Errno" not in message
    assert "choose another folder" in message and "job's `output`" in message
