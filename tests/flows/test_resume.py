"""Kill the process at every step, run again: no second batch, no lost line, no duplicate row."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.job import JobSpec
from schemas.manifest import META_RUN
from tasks import runs
from tasks.failpoints import EXIT_CODE
from tasks.runs.prepare import new_run_id
from tests.flows.conftest import assert_every_input_has_one_row, drive, write_corpus

FAILPOINTS = [
    "after-run-created",
    "after-build",
    "after-upload",
    "before-create",
    "after-create",
    "after-download",
    "after-parse",
    "before-close",
    "during-parse",
    "file-staged",
    "table-staged",
]
"""Steps, the last two inside a write: a file whole but not yet renamed over its target (the
first written through a temporary file), and the results table staged beside its own."""


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_killed_at_each_step_and_run_again(
    failpoint: str, batch_server: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 7)
    (tmp_path / "docs" / "empty.txt").write_text("")
    job = make_job(limits={"max_requests_per_shard": 3})
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())

    killed = drive(job_file, batch_server, "run", failpoint)
    assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    for stale in Path(job.output).rglob("*.tmp"):  # the next collect comes some time later
        os.utime(stale, (time.time() - 3600,) * 2)
    # Half the time the user runs the job again, half the time `collect`: both must finish it.
    mode = "run" if FAILPOINTS.index(failpoint) % 2 and failpoint != "before-close" else "collect"
    again = drive(job_file, batch_server, mode, None)
    assert again.returncode == 0, again.stderr[-3000:]

    run_dirs = runs.list_runs(job.output)
    assert len(run_dirs) == 1, "the second process resumed the run instead of starting another"
    manifest = runs.load_manifest(run_dirs[0])
    assert manifest.status == "done"
    assert runs.list_open_runs(job.output) == []
    assert_every_input_has_one_row(manifest)
    left = sorted(str(p.relative_to(job.output)) for p in Path(job.output).rglob("*.tmp"))
    assert left == [], "a temporary file the killed process was writing is still there"

    client = batch_server.client()
    batches = [
        b
        for b in client.batches.list(limit=100)
        if (b.metadata or {}).get(META_RUN) == manifest.run_id
    ]
    assert len(batches) == len(manifest.shards) == 3, (
        "exactly one batch per shard: nobody paid twice"
    )


@pytest.mark.parametrize("failpoint", ["during-parse", "after-parse"])
def test_a_collect_parsing_on_worker_processes_killed_midway_is_finished_by_the_next(
    failpoint: str,
    batch_server: Any,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_corpus(tmp_path / "docs", 9)
    monkeypatch.setenv("OVERNIGHT_COLLECT_WORKERS", "2")
    job = make_job(limits={"max_requests_per_shard": 3})
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())

    killed = drive(job_file, batch_server, "run", failpoint)
    if failpoint == "after-parse":  # the collecting process, once it recorded a shard
        assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    elif killed.returncode != EXIT_CODE:  # a worker (when one shard is left, this process)
        assert "a parse worker process died" in killed.stderr, killed.stderr[-3000:]
    again = drive(job_file, batch_server, "collect", None)
    assert again.returncode == 0, again.stderr[-3000:]

    [run_dir] = runs.list_runs(job.output)
    manifest = runs.load_manifest(run_dir)
    assert manifest.status == "done" and runs.list_open_runs(job.output) == []
    assert_every_input_has_one_row(manifest)
    assert len(manifest.shards) == 3


def test_two_collectors_at_once_create_each_batch_once(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    write_corpus(tmp_path / "docs", 9)
    job = make_job(limits={"max_requests_per_shard": 3})
    manifest = runs.prepare_run(job)

    def collect_until_done(_: int) -> str:
        for _ in range(400):
            if not runs.advance_run(manifest.run_dir).is_open:
                break
            time.sleep(0.02)
        return runs.load_manifest(manifest.run_dir).status

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(collect_until_done, range(4)))
    assert statuses == ["done"] * 4
    final = runs.load_manifest(manifest.run_dir)
    assert_every_input_has_one_row(final)
    client = backend.client()
    mine = [
        b
        for b in client.batches.list(limit=100)
        if (b.metadata or {}).get(META_RUN) == final.run_id
    ]
    assert len(mine) == 3


def test_a_run_killed_before_its_first_manifest_leaves_no_folder_behind(
    make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    """Killed while writing a new run's first manifest, a process leaves a folder with only
    that file's temporary copy; the job's next run removes it, and no other job's."""
    write_corpus(tmp_path / "docs", 2)
    job = make_job()
    runs_dir = Path(job.output) / "runs"
    unborn = runs_dir / new_run_id(job, datetime(2026, 3, 1, 2, tzinfo=UTC))
    others = runs_dir / "nightly-test-b-20260301T020000Z-0123abcd"  # job "nightly-test-b"
    for folder in (unborn, others):
        folder.mkdir(parents=True)
        (folder / ".manifest.json.k2j3x.tmp").write_text('{"run_id": ')

    manifest = runs.prepare_run(job, now=datetime(2026, 3, 2, 2, tzinfo=UTC))
    assert not unborn.exists()
    assert (others / ".manifest.json.k2j3x.tmp").exists()
    assert runs.list_runs(job.output) == [manifest.run_dir]
