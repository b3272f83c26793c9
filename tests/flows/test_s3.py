"""A job whose documents and outputs are both on S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.collect import collect
from flows.submit import submit
from schemas.job import JobSpec
from tasks import analytics, runs, storage
from tests.flows.conftest import assert_every_input_has_one_row


def test_s3_source_and_output_through_submit_and_collect(
    backend: Any,
    s3_bucket: str,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for i in range(5):
        storage.write_bytes(
            f"s3://{s3_bucket}/incoming/2026-03-01/note-{i}.md",
            f"# Note {i}\n\nThe warehouse in sector {i} reported {i * 3} late parcels.".encode(),
        )
    storage.write_bytes(f"s3://{s3_bucket}/incoming/2026-03-01/blank.txt", b"   \n")
    job = make_job(source=f"s3://{s3_bucket}/incoming/", output=f"s3://{s3_bucket}/overnight")
    run_dir = submit(job)
    assert run_dir.startswith(f"s3://{s3_bucket}/overnight/runs/")
    for _ in range(100):
        outcomes = collect(job.output)
        if outcomes and outcomes[0]["status"] == "done":
            break
    manifest = runs.load_manifest(run_dir)
    assert manifest.status == "done"
    results, errors = assert_every_input_has_one_row(manifest)
    assert results.height == 5 and errors["code"].to_list() == ["empty"]
    assert all(uri.startswith("s3://") for uri in manifest.tables.values())
    assert collect(job.output) == [], "nothing left open; collect again is harmless"

    latest = analytics.query(job.output, "select count(*) as n, min(job) as job from latest")
    assert latest.row(0) == (5, "nightly-test")
