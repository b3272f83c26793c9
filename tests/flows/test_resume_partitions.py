"""A partitioned build killed midway is built again by the next run: once, nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.job import JobSpec
from schemas.manifest import META_RUN
from tasks import runs
from tasks.failpoints import EXIT_CODE
from tests.flows.conftest import assert_every_input_has_one_row, drive, write_corpus


def test_a_build_killed_between_partitions_is_redone_by_collect(
    batch_server: Any,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_corpus(tmp_path / "docs", 9)
    monkeypatch.setenv("OVERNIGHT_BUILD_PARTITION_FILES", "3")  # 4 partitions
    monkeypatch.setenv("OVERNIGHT_BUILD_WORKERS", "2")
    job = make_job()
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())

    killed = drive(job_file, batch_server, "run", "during-partitioned-build")
    assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    [run_dir] = runs.list_open_runs(job.output)
    assert runs.load_manifest(run_dir).shards == []  # killed before the build was recorded
    again = drive(job_file, batch_server, "collect", None)
    assert again.returncode == 0, again.stderr[-3000:]

    manifest = runs.load_manifest(run_dir)
    assert manifest.status == "done" and runs.list_open_runs(job.output) == []
    assert_every_input_has_one_row(manifest)
    assert {s.shard_id.rsplit("-", 1)[0] for s in manifest.shards} == {
        f"shard-p{p:02d}" for p in range(4)
    }
    batches = [
        b
        for b in batch_server.client().batches.list(limit=100)
        if (b.metadata or {}).get(META_RUN) == manifest.run_id
    ]
    assert len(batches) == len(manifest.shards) == 4
