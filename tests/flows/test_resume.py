"""Kill the process at every step, run again: no second batch, no lost line, no duplicate row."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.job import JobSpec
from schemas.manifest import META_RUN
from tasks import runs
from tasks.failpoints import EXIT_CODE
from tests.flows.conftest import assert_every_input_has_one_row, write_corpus

REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import sys, time
from schemas.job import JobSpec
from tasks import runs

job = JobSpec.model_validate_json(open(sys.argv[1]).read())
if sys.argv[2] == "run":  # what `overnight run` does: start or resume this job's run
    run_dirs = [runs.prepare_run(job).run_dir]
else:  # what `overnight collect` does: move every open run forward
    run_dirs = runs.list_open_runs(job.output)
for run_dir in run_dirs:
    for _ in range(600):
        if not runs.advance_run(run_dir).is_open:
            break
        time.sleep(0.05)
"""

FAILPOINTS = [
    "after-run-created",
    "after-build",
    "after-upload",
    "before-create",
    "after-create",
    "after-download",
    "after-parse",
    "before-close",
]


def _drive(
    job_file: Path, server: Any, failpoint: str | None, mode: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENAI_API_KEY": server.api_key,
        "OPENAI_BASE_URL": server.base_url,
        "PYTHONPATH": str(REPO),
    }
    env.pop("OVERNIGHT_FAILPOINT", None)
    if failpoint:
        env["OVERNIGHT_FAILPOINT"] = failpoint
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(job_file), mode],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_killed_at_each_step_and_run_again(
    failpoint: str, batch_server: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 7)
    (tmp_path / "docs" / "empty.txt").write_text("")
    job = make_job(limits={"max_requests_per_shard": 3})
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())

    killed = _drive(job_file, batch_server, failpoint, "run")
    assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    # Half the time the user runs the job again, half the time `collect`: both must finish it.
    mode = "run" if FAILPOINTS.index(failpoint) % 2 and failpoint != "before-close" else "collect"
    again = _drive(job_file, batch_server, None, mode)
    assert again.returncode == 0, again.stderr[-3000:]

    run_dirs = runs.list_runs(job.output)
    assert len(run_dirs) == 1, "the second process resumed the run instead of starting another"
    manifest = runs.load_manifest(run_dirs[0])
    assert manifest.status == "done"
    assert runs.list_open_runs(job.output) == []
    assert_every_input_has_one_row(manifest)

    client = batch_server.client()
    batches = [
        b
        for b in client.batches.list(limit=100)
        if (b.metadata or {}).get(META_RUN) == manifest.run_id
    ]
    assert len(batches) == len(manifest.shards) == 3, (
        "exactly one batch per shard: nobody paid twice"
    )


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
