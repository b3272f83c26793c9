"""A run's build options live in its manifest: a killed `submit --full` finished by `collect`
is still a full run, not a normal incremental one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import runs
from tasks.failpoints import EXIT_CODE
from tests.flows.conftest import assert_every_input_has_one_row, write_corpus

REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import sys, time
from datetime import datetime
from schemas.job import JobSpec
from tasks import runs

job = JobSpec.model_validate_json(open(sys.argv[1]).read())
mode, now = sys.argv[2], datetime.fromisoformat(sys.argv[3])
if mode == "collect":  # what `overnight collect` does: move every open run forward
    run_dirs = runs.list_open_runs(job.output)
else:  # what `overnight submit [--full | --retry-failed]` does, then waits
    options = {"full": mode == "full", "retry_failed": mode == "retry-failed"}
    run_dirs = [runs.prepare_run(job, now=now, **options).run_dir]
for run_dir in run_dirs:
    for _ in range(600):
        if not runs.advance_run(run_dir).is_open:
            break
        time.sleep(0.05)
"""


def _drive(
    job_file: Path, server: Any, mode: str, now: str, failpoint: str | None = None
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
        [sys.executable, "-c", DRIVER, str(job_file), mode, now],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _newest(job: JobSpec) -> RunManifest:
    return runs.load_manifest(runs.list_runs(job.output)[-1])


@pytest.mark.parametrize(
    ("mode", "failpoint", "skipped", "requests"),
    [
        ("full", "after-run-created", 0, 5),
        ("retry-failed", "after-run-created", 5, 0),
        ("full", "after-build", 0, 5),
    ],
)
def test_a_killed_submit_keeps_its_options_when_collect_finishes_it(
    mode: str,
    failpoint: str,
    skipped: int,
    requests: int,
    batch_server: Any,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
) -> None:
    write_corpus(tmp_path / "docs", 5)
    (tmp_path / "docs" / "empty.txt").write_text("")  # a terminal failure in the ledger
    job = make_job()
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())
    first = _drive(job_file, batch_server, "incremental", "2026-03-01T02:00:00+00:00")
    assert first.returncode == 0, first.stderr[-3000:]
    assert _newest(job).status == "done"

    killed = _drive(job_file, batch_server, mode, "2026-03-02T02:00:00+00:00", failpoint)
    assert killed.returncode == EXIT_CODE, killed.stderr[-3000:]
    assert _newest(job).options.full == (mode == "full")
    again = _drive(job_file, batch_server, "collect", "2026-03-02T02:10:00+00:00")
    assert again.returncode == 0, again.stderr[-3000:]

    resumed = _newest(job)
    assert len(runs.list_runs(job.output)) == 2
    assert resumed.status == "done" and runs.list_open_runs(job.output) == []
    assert resumed.options.full == (mode == "full")
    assert resumed.options.retry_failed == (mode == "retry-failed")
    counts = resumed.counts
    assert (counts.documents_seen, counts.documents_skipped) == (6, skipped)
    assert counts.requests == requests
    assert counts.documents_rejected == 6 - skipped - requests == 1
    assert_every_input_has_one_row(resumed)


def test_manifests_written_before_options_were_recorded_still_load(tmp_path: Path) -> None:
    old = {
        "run_id": "r",
        "job_name": "j",
        "job_fingerprint": "f",
        "job": {},
        "run_dir": str(tmp_path),
        "output": str(tmp_path),
    }
    manifest = RunManifest.model_validate(old)
    assert (manifest.options.full, manifest.options.retry_failed) == (False, False)
    assert manifest.cancels == []
