"""Three nights over a changing folder: only new and changed documents are processed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import analytics, runs
from tests.flows.conftest import assert_every_input_has_one_row, write_corpus


def _night(job: JobSpec, when: datetime, **kwargs: Any) -> RunManifest:
    manifest = runs.prepare_run(job, now=when, **kwargs)
    for _ in range(400):
        manifest = runs.advance_run(manifest.run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.02)
    raise AssertionError("run did not finish")


def test_three_nights_over_a_changing_folder(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    job = make_job()
    day1 = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)

    write_corpus(docs, 10)
    (docs / "empty.txt").write_text("")
    first = _night(job, day1)
    assert (first.counts.documents_seen, first.counts.requests) == (11, 10)
    assert first.counts.documents_rejected == 1

    # Night 2: 3 new, 2 changed, 1 deleted → 5 processed, 4 unchanged skipped.
    write_corpus(docs, 3, start=10)
    (docs / "doc-0000.txt").write_text("Changed overnight.\n\nThe first document was rewritten.")
    (docs / "doc-0001.txt").write_text("Also changed.\n\nA second rewrite with new figures: 42.")
    (docs / "doc-0009.txt").unlink()
    second = _night(job, day1 + timedelta(days=1))
    assert second.counts.documents_seen == 13
    assert second.counts.documents_skipped == 8, "7 unchanged and the known-bad empty file"
    assert second.counts.documents_rejected == 0
    assert second.counts.requests == 5
    assert_every_input_has_one_row(second)

    # Night 3: nothing changed → nothing sent; --full → everything again.
    third = _night(job, day1 + timedelta(days=2))
    assert (third.counts.documents_skipped, third.counts.requests) == (13, 0)
    assert third.status == "done"
    full = _night(job, day1 + timedelta(days=2, hours=1), full=True)
    assert full.counts.requests == 12

    # A new prompt is a new job version: everything is processed again under it.
    reworded = make_job(system_prompt="Summarize in one short paragraph.")
    assert reworded.fingerprint() != job.fingerprint()
    fourth = _night(reworded, day1 + timedelta(days=3))
    assert fourth.counts.requests == 12

    # The analyst's side: `latest` holds one row per document, from its newest run.
    latest = analytics.query(
        job.output, "select document_id, run_id from latest order by document_id"
    )
    assert latest.height == 13, "every document ever seen, once (the deleted one included)"
    assert latest.filter(pl.col("document_id") == "doc-0009.txt")["run_id"].item() == first.run_id
    newest = latest.filter(pl.col("document_id") != "doc-0009.txt")["run_id"].unique().to_list()
    assert newest == [fourth.run_id]
    runs_per_day = analytics.query(
        job.output, "select run_date, count(*) as n from results group by all order by run_date"
    )
    assert runs_per_day["n"].to_list() == [10, 5, 12, 12]


def test_retryable_failures_are_picked_up_by_the_next_night(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from localbatch import FaultConfig

    write_corpus(tmp_path / "docs", 4)
    job = make_job(limits={"max_attempts": 1})
    backend.set_faults(FaultConfig(line_500_rate=1.0))
    first = _night(job, datetime(2026, 3, 1, tzinfo=UTC))
    assert first.counts.errors == 4
    backend.set_faults(FaultConfig(line_refusal_rate=1.0))
    second = _night(job, datetime(2026, 3, 2, tzinfo=UTC))
    assert second.counts.requests == 4, "retryable errors are retried the next night"
    backend.set_faults(FaultConfig())
    third = _night(job, datetime(2026, 3, 3, tzinfo=UTC))
    assert third.counts.requests == 0, "terminal errors (refusals) are not retried..."
    fourth = _night(job, datetime(2026, 3, 4, tzinfo=UTC), retry_failed=True)
    assert (fourth.counts.requests, fourth.counts.results) == (4, 4), "...unless asked"


def test_report_figures_match_the_costs_table(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 5)
    job = make_job()
    a = _night(job, datetime(2026, 4, 1, tzinfo=UTC))
    write_corpus(tmp_path / "docs", 2, start=5)
    b = _night(job, datetime(2026, 4, 2, tzinfo=UTC))
    parts = analytics.report(job.output)
    daily = parts["daily"]
    assert daily["requests"].to_list() == [5, 2]
    assert daily["documents"].to_list() == [5, 2]
    costs = pl.concat([pl.read_parquet(m.tables["costs"]) for m in (a, b)])
    assert daily["batch_cost_usd"].sum() == pytest.approx(costs["batch_cost_usd"].sum())
    assert daily["standard_cost_usd"].to_list() == pytest.approx(
        [2 * x for x in daily["batch_cost_usd"].to_list()]
    )
    only_second = analytics.report(job.output, since=datetime(2026, 4, 2).date())
    assert only_second["daily"]["requests"].to_list() == [2]
    md = analytics.report_markdown(parts, title="t")
    assert "Per day, job and model" in md and "2026-04-02" in md
    html = analytics.report_html(parts, title="t")
    assert html.count("</title></rect>") == 6, "three bars (estimate, standard, batch) per day"
