from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.job import JobSpec, parse_job
from tasks.estimate import (
    DEFAULT_EXPECTED_OUTPUT_FRACTION,
    BudgetExceededError,
    check_budget,
    estimate_job,
)
from tasks.pricing import load_pricing
from tasks.render import RequestRenderer

PRICES = """
as_of = 2026-02-01
source = "round numbers for tests"
[models.gpt-4o-mini]
input = 2.0
cached_input = 1.0
output = 10.0
batch_input = 1.0
batch_cached_input = 0.5
batch_output = 5.0
"""


def make_job(folder: Path, **changes: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "estimate-test",
        "source": {"uri": str(folder / "in")},
        "output": str(folder / "out"),
        "model": "gpt-4o-mini",
        "system_prompt": "Summarize.",
        "user_template": "{text}",
        "output_schema": "schemas.summary:DocumentSummary",
        "params": {"max_output_tokens": 1000},
        **changes,
    }
    return parse_job(data)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("First document.")
    (tmp_path / "in" / "b.txt").write_text("Second document, a little longer.")
    (tmp_path / "in" / "c.jsonl").write_text('{"text": "third"}\n{"nope": 1}\n')
    (tmp_path / "in" / "d.bin").write_bytes(b"\x00")
    (tmp_path / "prices.toml").write_text(PRICES)
    return tmp_path


def test_estimate_arithmetic_by_hand(corpus: Path) -> None:
    job = make_job(corpus)
    pricing = load_pricing(corpus / "prices.toml")
    estimate = estimate_job(job, pricing=pricing)

    renderer = RequestRenderer(job)
    texts = ["First document.", "Second document, a little longer.", "third"]
    input_tokens = sum(renderer.static_tokens + renderer.count(t) for t in texts)
    assert (estimate.documents, estimate.documents_built, estimate.documents_rejected) == (5, 3, 2)
    assert estimate.rejected_by_code == {"missing_text_field": 1, "unsupported_type": 1}
    assert (estimate.requests, estimate.shards) == (3, 1)
    assert estimate.input_tokens == input_tokens
    assert estimate.max_output_tokens == 3 * 1000
    assert estimate.expected_output_tokens_per_request == 1000 * DEFAULT_EXPECTED_OUTPUT_FRACTION
    assert estimate.expected_output_tokens == 3 * 500
    # Batch: $1 per 1M input, $5 per 1M output; standard: $2 and $10.
    assert estimate.batch_cost_max_usd == pytest.approx((input_tokens * 1 + 3000 * 5) / 1e6)
    assert estimate.standard_cost_max_usd == pytest.approx((input_tokens * 2 + 3000 * 10) / 1e6)
    assert estimate.batch_cost_expected_usd == pytest.approx((input_tokens * 1 + 1500 * 5) / 1e6)
    assert estimate.standard_cost_expected_usd == pytest.approx(
        (input_tokens * 2 + 1500 * 10) / 1e6
    )
    assert str(estimate.pricing_as_of) == "2026-02-01"
    assert any("no prompt caching" in a for a in estimate.assumptions)


def test_expected_output_tokens_from_the_job(corpus: Path) -> None:
    job = make_job(corpus, expected_output_tokens=120)
    estimate = estimate_job(job, pricing=load_pricing(corpus / "prices.toml"))
    assert estimate.expected_output_tokens == 3 * 120
    assert "expected_output_tokens = 120" in estimate.expected_basis
    capped = estimate_job(
        make_job(corpus, expected_output_tokens=5000), pricing=load_pricing(corpus / "prices.toml")
    )
    assert capped.expected_output_tokens == capped.max_output_tokens


def test_estimate_is_a_dry_run(corpus: Path) -> None:
    before = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    estimate_job(make_job(corpus))
    assert sorted(p.relative_to(corpus) for p in corpus.rglob("*")) == before
    assert not (corpus / "out").exists()


def test_the_estimate_reports_documents_read_as_it_goes(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from overnight._commands import reading_progress

    seen: list[int] = []
    estimate = estimate_job(make_job(corpus), progress=seen.append)
    assert seen and sum(seen) == estimate.documents
    # Off a terminal (a cron job's log): a line every `every` documents, with the rate.
    with reading_progress(every=2) as report:
        for n in (1, 1, 1, 5, 1):
            report(n)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["read 2 documents", "read 8 documents"]
    assert lines[0].endswith("/s)")


def test_should_process_applies_to_estimates(corpus: Path) -> None:
    estimate = estimate_job(make_job(corpus), should_process=lambda d: d.document_id != "a.txt")
    assert (estimate.documents_skipped, estimate.requests) == (1, 2)


def test_budget_is_checked_against_the_maximum(corpus: Path) -> None:
    pricing = load_pricing(corpus / "prices.toml")
    estimate = estimate_job(make_job(corpus), pricing=pricing)
    between = (estimate.batch_cost_expected_usd + estimate.batch_cost_max_usd) / 2
    check_budget(make_job(corpus, budget_usd=estimate.batch_cost_max_usd), estimate)
    check_budget(make_job(corpus), estimate)  # no budget, no check
    with pytest.raises(BudgetExceededError, match="exceeds budget_usd") as err:
        check_budget(make_job(corpus, budget_usd=between), estimate)
    assert "estimate-test" in str(err.value)


# -- the command -----------------------------------------------------------------------------

runner = CliRunner()


def write_job_file(folder: Path, extra: str = "", model: str = "gpt-4o-mini") -> Path:
    path = folder / "job.toml"
    path.write_text(
        f'name = "cli-job"\nmodel = "{model}"\noutput = "out"\nsystem_prompt = "Summarize."\n'
        f'output_schema = "schemas.summary:DocumentSummary"\n{extra}\n'
        '[source]\nuri = "in"\n[params]\nmax_output_tokens = 100\n'
    )
    return path


def test_cli_estimate_prints_the_figures(corpus: Path) -> None:
    from overnight.cli import app

    result = runner.invoke(app, ["estimate", str(write_job_file(corpus))])
    assert result.exit_code == 0, result.output
    for words in ("gpt-4o-mini", "documents found", "requests", "input tokens", "Batch API",
                  "standard API", "maximum output", "expected output", "2025-09-01"):  # fmt: skip
        assert words in result.output
    assert not (corpus / "out").exists()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("bad-field", "colour"),
        ("unknown-model", "pricing.toml"),
        ("missing-source", "no such folder"),
    ],
)
def test_cli_estimate_errors_are_one_red_line(corpus: Path, setup: str, expected: str) -> None:
    from overnight.cli import app

    if setup == "bad-field":
        path = write_job_file(corpus, extra='colour = "red"')
    elif setup == "unknown-model":
        path = write_job_file(corpus, model="gpt-9-ultra")
    else:
        path = write_job_file(corpus)
        (corpus / "in").rename(corpus / "elsewhere")
    result = runner.invoke(app, ["estimate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert expected in result.output


def test_cli_estimate_over_budget_exits_1(corpus: Path) -> None:
    from overnight.cli import app

    result = runner.invoke(
        app, ["estimate", str(write_job_file(corpus, extra="budget_usd = 0.000001"))]
    )
    assert result.exit_code == 1
    assert "over budget" in result.output


def test_the_estimate_prices_the_reduce_stage_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "long.txt").write_text(
        "\n\n".join(f"Paragraph {i}. " + "The harbor ledger lists copper. " * 40 for i in range(30))
    )
    (tmp_path / "in" / "short.txt").write_text("A short memo.")
    (tmp_path / "prices.toml").write_text(PRICES)
    pricing = load_pricing(tmp_path / "prices.toml")
    chunking = {"max_input_tokens": 2000, "overlap_tokens": 0}
    per_chunk = estimate_job(make_job(tmp_path, chunking=chunking), pricing=pricing)
    job = make_job(tmp_path, chunking={**chunking, "output": "document"})
    reduced = estimate_job(job, pricing=pricing)

    chunks = per_chunk.requests - 1
    assert chunks > 1 and reduced.requests == per_chunk.requests
    assert reduced.reduce_requests == 1 and per_chunk.reduce_requests == 0
    # At most: the prompts and schema, plus max_output_tokens per chunk's answer.
    renderer = RequestRenderer(job)
    assert reduced.reduce_input_tokens_max > renderer.static_tokens + chunks * 1000
    assert reduced.reduce_input_tokens_expected > renderer.static_tokens + chunks * 500
    assert reduced.reduce_input_tokens_expected < reduced.reduce_input_tokens_max
    assert reduced.max_output_tokens == per_chunk.max_output_tokens + 1000
    extra = (reduced.reduce_input_tokens_max * 1 + 1000 * 5) / 1e6
    assert reduced.batch_cost_max_usd == pytest.approx(per_chunk.batch_cost_max_usd + extra)
    assert any(a.startswith("reduce stage: 1 split document") for a in reduced.assumptions)
    assert any(a.startswith("no reduce stage") for a in per_chunk.assumptions)
