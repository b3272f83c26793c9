"""A run belongs to one backend: never adopted by a submit to another, moved only while no
batch exists, collected only from its own backend; simulated rows are marked as simulated."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import polars as pl
import pytest

from overnight.settings import get_settings
from schemas.job import JobSpec
from tasks import analytics, runs
from tasks.gateway import EMBEDDED, GatewayError, get_gateway, reset_gateways
from tests.flows.conftest import assert_every_input_has_one_row, read_table, write_corpus


def _use(monkeypatch: pytest.MonkeyPatch, server: Any | None) -> None:
    """Point overnight at a Batch API as a user would: a key and a URL, or nothing (embedded)."""
    if server is None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    get_settings.cache_clear()
    reset_gateways()


def _finish(run_dir: str) -> runs.RunManifest:
    """Advance a run as a collect would, polling its batches when they are due."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        manifest = runs.advance_run(run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(runs.seconds_until_due(manifest))
    raise AssertionError(f"{run_dir} still open")


def test_an_open_run_without_batches_moves_to_the_new_backend(
    batch_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_corpus(tmp_path / "docs", 3)
    job = make_job()
    _use(monkeypatch, None)
    first = runs.prepare_run(job)  # built, nothing sent: e.g. the process stopped here
    assert first.backend == EMBEDDED
    _use(monkeypatch, batch_server)
    with caplog.at_level(logging.WARNING):
        moved = runs.prepare_run(job)
    assert moved.run_id == first.run_id
    assert moved.backend == batch_server.base_url
    said = f"moving run {first.run_id} from embedded to {batch_server.base_url}: no batch had been created yet"
    assert said in caplog.text and said in moved.notes
    done = _finish(moved.run_dir)
    results, _ = assert_every_input_has_one_row(done)
    assert results.height == 3
    assert {b.metadata["overnight_run_id"] for b in get_gateway().client.batches.list()} == {  # type: ignore[index]
        first.run_id
    }
    # A local Batch API reached through OPENAI_BASE_URL: its answers still say they are simulated.
    assert results.get_column("simulated").to_list() == [True] * 3
    reset_gateways()


def test_a_submit_never_adopts_a_run_with_batches_on_another_backend(
    batch_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_corpus(tmp_path / "docs", 4)
    job = make_job()
    _use(monkeypatch, batch_server)
    old = runs.prepare_run(job)
    assert runs.submit_ready(old, get_gateway(), max_in_flight_tokens=None) == 1  # in flight

    # The key is gone (another shell, a cron without the secret) and two documents landed.
    _use(monkeypatch, None)
    write_corpus(tmp_path / "docs", 2, start=4)
    with caplog.at_level(logging.WARNING):
        new = runs.prepare_run(job)
    assert new.run_id != old.run_id and new.backend == EMBEDDED
    assert new.counts.requests == 2, "the old run's 4 documents are not sent a second time"
    [note] = new.notes
    assert f"run {old.run_id} of this job stays open on {batch_server.base_url}" in note
    assert "leaves out its 4 document(s)" in note and f"overnight cancel {old.run_id}" in note
    assert f"set OPENAI_API_KEY and OPENAI_BASE_URL={batch_server.base_url} again" in note
    assert note in caplog.text
    assert runs.load_manifest(old.run_dir).backend == batch_server.base_url

    # Collecting the old run without its key names its backend and what to do.
    with pytest.raises(GatewayError) as caught:
        runs.advance_run(old.run_dir)
    message = str(caught.value)
    assert batch_server.base_url in message and "OPENAI_API_KEY" in message
    assert f"OPENAI_BASE_URL={batch_server.base_url}" in message

    new_done = _finish(new.run_dir)
    _use(monkeypatch, batch_server)  # the key is back: the old run is collected where it lives
    old_done = _finish(old.run_dir)
    new_results, _ = assert_every_input_has_one_row(new_done)
    old_results, _ = assert_every_input_has_one_row(old_done)
    ids = pl.concat([new_results, old_results]).get_column("document_id")
    assert ids.n_unique() == ids.len() == 6, "every document once, in one of the two runs"
    assert new_results.get_column("simulated").all()
    costs = read_table(new_done, "costs")
    assert costs.get_column("simulated").to_list() == [True]

    parts = analytics.report(str(tmp_path / "out"))
    assert parts["daily"].get_column("simulated").all()
    markdown = analytics.report_markdown(parts, title="nightly")
    assert "**SIMULATED**" in markdown and "6 of 6 requests" in markdown
    html = analytics.report_html(parts, title="nightly")
    assert "<strong>SIMULATED</strong>" in html
    reset_gateways()


def test_real_rows_are_not_marked_and_the_report_says_nothing() -> None:
    daily = pl.DataFrame(
        {"run_date": ["2026-01-01"], "simulated": [False], "requests": [5], "failed": [0]}
    ).with_columns(
        batch_cost_usd=pl.lit(1.0),
        standard_cost_usd=pl.lit(2.0),
        savings_usd=pl.lit(1.0),
        estimated_cost_usd=pl.lit(3.0),
    )
    parts = {"daily": daily, "failures": pl.DataFrame()}
    assert "SIMULATED" not in analytics.report_markdown(parts, title="t")
    assert "SIMULATED" not in analytics.report_html(parts, title="t")


def test_fixing_a_wrong_base_url_moves_the_stuck_run(
    batch_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
) -> None:
    write_corpus(tmp_path / "docs", 2)
    job = make_job()
    monkeypatch.setenv("OPENAI_API_KEY", batch_server.api_key)
    wrong = batch_server.base_url.removesuffix("/v1") + "/not-the-api/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", wrong)
    get_settings.cache_clear()
    reset_gateways()
    stuck = runs.prepare_run(job)
    with pytest.raises(openai.NotFoundError):
        runs.submit_ready(stuck, get_gateway(), max_in_flight_tokens=None)
    assert runs.load_manifest(stuck.run_dir).shards[0].state == "uploading"

    _use(monkeypatch, batch_server)  # the address is fixed
    moved = runs.prepare_run(job)
    assert (moved.run_id, moved.backend) == (stuck.run_id, batch_server.base_url)
    assert f"from {wrong} to {batch_server.base_url}" in moved.notes[-1]
    results, _ = assert_every_input_has_one_row(_finish(moved.run_dir))
    assert results.height == 2
    reset_gateways()
