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


def test_collect_finishes_a_run_on_the_embedded_api_in_one_call(
    make_job: Callable[..., JobSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No OPENAI_API_KEY: submit in one process, collect in another, like the deployments."""
    from overnight.settings import get_settings
    from tasks.gateway import EMBEDDED, get_gateway, reset_gateways
    from tests.flows.conftest import write_corpus

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OVERNIGHT_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    reset_gateways()
    try:
        write_corpus(tmp_path / "docs", 30)
        # One batch at a time, so the run needs several rounds of polling and submitting.
        job = make_job(limits={"max_requests_per_shard": 10, "max_in_flight_tokens": 1})
        manifest = runs.prepare_run(job)
        assert manifest.backend == EMBEDDED
        runs.submit_ready(manifest, get_gateway(EMBEDDED), max_in_flight_tokens=1)
        reset_gateways()  # the submitting process is gone, and its embedded server with it

        outcomes = collect(job.output)
        assert [o["status"] for o in outcomes] == ["done"]
        assert_every_input_has_one_row(runs.load_manifest(manifest.run_dir))
    finally:
        reset_gateways()
        get_settings.cache_clear()
