"""The report's figures as a finance reader gets them: money, kinds kept apart, 100 columns."""

from __future__ import annotations

import io

import polars as pl
import pytest
from rich.console import Console
from rich.markdown import Markdown

from tasks import costreport


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0.0, "$0.00"),
        (1234.5649, "$1,234.56"),
        (1.0, "$1.00"),
        (0.99996, "$1.00"),
        (0.0713779, "$0.0714"),
        (0.00012, "$0.0001"),
        (0.00001, "<$0.0001"),
        (-2.5, "-$2.50"),
        (None, "-"),
    ],
)
def test_money_is_cents_from_a_dollar_and_four_decimals_below(
    amount: float | None, shown: str
) -> None:
    assert costreport.money(amount) == shown


def _daily(*, simulated: bool, job: str, model: str, batch: float) -> dict[str, object]:
    return {
        "run_date": "2026-11-02",
        "job": job,
        "model": model,
        "simulated": simulated,
        "documents": 1200,
        "requests": 12_345,
        "succeeded": 12_300,
        "failed": 45,
        "input_tokens": 98_765_432,
        "cached_tokens": 1_000,
        "output_tokens": 12_345_678,
        "reasoning_tokens": 0,
        "batch_cost_usd": batch,
        "standard_cost_usd": 2 * batch,
        "savings_usd": batch,
        "estimated_cost_usd": 3 * batch,
        "pricing_as_of": "2025-09-01",
    }


def _parts() -> dict[str, pl.DataFrame]:
    long_job = "invoice-extraction-emea-accounts-payable"
    daily = pl.DataFrame(
        [
            _daily(simulated=False, job=long_job, model="gpt-4o-mini-2024-07-18", batch=12_345.67),
            _daily(simulated=True, job=long_job, model="gpt-4o-mini-2024-07-18", batch=3.5),
        ]
    )
    failures = pl.DataFrame(
        [
            {
                "run_date": "2026-11-02",
                "job": long_job,
                "stage": "load",
                "code": "unsupported_type",
                "retryable": False,
                "documents": 3,
                "requests": 0,
            },
            {
                "run_date": "2026-11-02",
                "job": long_job,
                "stage": "api",
                "code": "rate_limit_exceeded",
                "retryable": True,
                "documents": 40,
                "requests": 45,
            },
        ]
    )
    return {"daily": daily, "failures": failures}


def test_simulated_costs_are_never_added_to_billed_ones() -> None:
    report = costreport.build(_parts(), title="t")
    assert [(t.kind, t.batch) for t in report.totals] == [("real", 12_345.67), ("simulated", 3.5)]
    text = costreport.markdown(report)
    assert "| OpenAI (billed) | 12,345 | 45 | $12,345.67 | $24,691.34 |" in text
    assert "| SIMULATED (not billed) | 12,345 | 45 | $3.50 | $7.00 |" in text
    assert "$12,349.17" not in text, "no total mixes billed and simulated money"
    assert "· SIMULATED" in text and "**SIMULATED**" in text
    page = costreport.page(report)
    assert page.count('<span class="sim-tag">SIMULATED</span>') >= 3
    assert "$12,349.17" not in page


def test_rejected_documents_and_failed_requests_are_counted_apart() -> None:
    text = costreport.markdown(costreport.build(_parts(), title="t"))
    assert "| Day | Stage | Reason | Rejected documents | Failed requests | Retried |" in text
    assert "| 2026-11-02 | load | unsupported_type | 3 | - | no |" in text
    assert "| 2026-11-02 | api | rate_limit_exceeded | - | 45 | next run |" in text
    assert "3 documents rejected before any request" in text


def test_long_names_and_large_amounts_fit_a_100_column_terminal() -> None:
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(Markdown(costreport.markdown(costreport.build(_parts(), title="t"))))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" not in text, "a cell was cut short"
    for whole in ("invoice-extraction-emea-accounts-payable", "gpt-4o-mini-2024-07-18"):
        assert whole in text
    assert "$12,345.67" in text and "$37,037.01" in text


def test_a_period_without_runs_says_so() -> None:
    empty = costreport.build({"daily": pl.DataFrame(), "failures": pl.DataFrame()}, title="t")
    text = costreport.markdown(empty)
    assert "No runs in this period." in text and "## Totals" not in text
    assert "No rejected documents and no failed requests" in text
    assert "<svg" not in costreport.page(empty)
