"""The report as its readers get it: the HTML page in a real browser, the terminal at 100 columns.

The page is rendered by headless Chromium (Debian's `chromium` package; `make test` installs it
where apt-get can): the figures read from the DOM after layout must equal the sums of the
`costs` table, nothing may be cut off at 1,280 px, and the printed PDF starts with the totals.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from PIL import Image
from pypdf import PdfReader
from rich.console import Console
from rich.markdown import Markdown
from selectolax.lexbor import LexborHTMLParser, LexborNode
from typer.testing import CliRunner

from overnight.cli import app
from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import analytics, runs
from tasks.costreport import money
from tests.flows.conftest import write_corpus

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (`apt-get install chromium`; `make test` does it "
    "where apt-get works): the report page cannot be rendered the way a reader sees it",
)
MONEY = re.compile(r"^(?:\$\d{1,3}(?:,\d{3})*\.\d{2}|\$0\.\d{4}|<\$0\.0001)$")


def _night(job: JobSpec, when: datetime) -> RunManifest:
    manifest = runs.prepare_run(job, now=when)
    for _ in range(400):
        manifest = runs.advance_run(manifest.run_dir)
        if not manifest.is_open:
            return manifest
        time.sleep(0.02)
    raise AssertionError("run did not finish")


@pytest.fixture
def two_nights(backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path) -> Path:
    """Two nights on the local API: one rejected document, then two failed requests."""
    from localbatch import FaultConfig

    docs = tmp_path / "docs"
    job = make_job(limits={"max_attempts": 1})
    write_corpus(docs, 5)
    (docs / "empty.txt").write_text("")
    _night(job, datetime(2026, 5, 4, 1, 30, tzinfo=UTC))
    write_corpus(docs, 2, start=5)
    backend.set_faults(FaultConfig(line_500_rate=1.0))
    _night(job, datetime(2026, 5, 5, 1, 30, tzinfo=UTC))
    backend.set_faults(FaultConfig())
    return tmp_path / "out"


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="overnight-chromium-")
    try:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _dollars(text: str) -> tuple[float, float]:
    """The amount a money figure shows, and half a unit of its last digit (its rounding)."""
    assert MONEY.match(text), f"{text!r} is not money as the report promises it"
    if text == "<$0.0001":
        return 0.0, 0.0001
    digits = text.removeprefix("$").replace(",", "")
    return float(digits), 0.5 * 10 ** -len(digits.split(".")[1])


def _assert_shows(text: str, amount: float) -> None:
    shown, rounding = _dollars(text)
    assert abs(shown - amount) <= rounding + 1e-12, f"{text} shown for {amount}"


def _text(node: LexborNode | None) -> str:
    assert node is not None
    return " ".join(node.text(separator=" ").split())


@needs_chromium
def test_the_page_a_browser_shows_has_the_costs_tables_figures(
    two_nights: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    made = CliRunner().invoke(app, ["report", "-o", str(two_nights), "--to", str(page)])
    assert made.exit_code == 0, made.output
    source = page.read_text()
    assert "<script" not in source and "http://" not in source.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    ), "the page is self-contained: no script, nothing fetched"

    dom = LexborHTMLParser(_chromium("--dump-dom", page.as_uri()).stdout)
    con = duckdb.connect()
    con.execute(
        "create view costs as select * from "
        f"read_parquet('{two_nights}/costs/*/*/*.parquet', hive_partitioning = true)"
    )
    kinds = con.execute(
        "select simulated, sum(batch_cost_usd), sum(standard_cost_usd), sum(savings_usd), "
        "sum(estimated_cost_usd), sum(requests), sum(succeeded), sum(failed) "
        "from costs group by all order by simulated"
    ).fetchall()
    # Night 1's answers came from the simulator; night 2's requests all failed, so no answer
    # said so and its (zero) cost stands as real. Each kind has its own totals, never summed.
    assert [(k[0], k[5], k[7]) for k in kinds] == [(False, 2, 2), (True, 5, 0)]
    assert "SIMULATED" in _text(dom.css_first("p.banner"))
    assert "5 of 7 requests were answered by overnight's simulator" in _text(
        dom.css_first("p.banner")
    )
    for simulated, batch, standard, saved, estimate, requests, succeeded, failed in kinds:
        totals = dom.css_first(f'section[data-kind="{"simulated" if simulated else "real"}"]')
        assert totals is not None
        assert ("not a bill" in _text(totals)) is simulated
        figure = {
            str(card.attributes["data-figure"]): _text(card.css_first(".value"))
            for card in totals.css(".card")
        }
        _assert_shows(figure["batch"], batch)
        _assert_shows(figure["standard"], standard)
        _assert_shows(figure["saved"], saved)
        _assert_shows(figure["estimate"], estimate)
        assert figure["requests"] == f"{requests:,}"
        assert f"{succeeded} succeeded, {failed} failed" in _text(totals)
        assert f"actual is {100 * batch / estimate:.0f}% of the estimate" in _text(totals)

    # Cost per day: the table under the chart, and an amount on every bar of the chart.
    per_day = con.execute(
        "select strftime(run_date, '%Y-%m-%d'), simulated, sum(requests), sum(batch_cost_usd), "
        "sum(standard_cost_usd), sum(estimated_cost_usd) from costs group by all order by 1, 2"
    ).fetchall()
    day_table = next(
        t for t in dom.css("table") if _text(t.css_first("thead")).startswith("Day Answered by")
    )
    shown_days = [[_text(td) for td in tr.css("td")] for tr in day_table.css("tbody tr")]
    assert [row[:2] for row in shown_days] == [
        [day, "SIMULATED not billed" if simulated else "OpenAI (billed)"]
        for day, simulated, *_ in per_day
    ]
    for shown_day, (_, _, n, day_batch, day_standard, day_estimate) in zip(
        shown_days, per_day, strict=True
    ):
        assert shown_day[2] == str(n)
        _assert_shows(shown_day[4], day_batch)
        _assert_shows(shown_day[5], day_standard)
        _assert_shows(shown_day[7], day_estimate)
    chart = dom.css_first("figure svg")
    assert chart is not None
    chart_text = _text(chart)
    assert "US dollars" in chart_text and "Run date (UTC)" in chart_text
    charted = [row for row in per_day if not row[1]]  # simulated costs stay out of the chart
    for day, _, _, day_batch, _, day_estimate in charted:
        assert day in chart_text
        for amount in (day_batch, day_estimate):
            assert any(
                abs(_dollars(t)[0] - amount) <= _dollars(money(amount))[1]
                for t in chart_text.split()
                if t.startswith("$")
            )
    assert "2026-05-04" not in chart_text
    ticks = [_dollars(t)[0] for t in chart_text.split() if t.startswith("$")]
    assert 0.0 in ticks and len(set(ticks)) >= 3, "a dollar axis with ticks"

    # Failures: the empty file is a rejected document, the two 500s are failed requests.
    failures = dom.css_first("section:last-of-type table")
    assert failures is not None
    assert _text(failures.css_first("thead")) == (
        "Day Stage Reason Rejected documents Failed requests Retried"
    )
    rows = sorted(tuple(_text(td) for td in tr.css("td")) for tr in failures.css("tbody tr"))
    assert rows == [
        ("2026-05-04", "load", "empty", "1", "-", "no"),
        ("2026-05-05", "api", "server_error", "-", "2", "next run"),
    ]


@needs_chromium
def test_the_page_is_not_cut_off_on_screen_or_paper(two_nights: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(analytics.report_html(analytics.report(str(two_nights)), title="nightly"))
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400)
    right_edge = image.crop((1280 - 24, 0, 1280, image.height))
    assert right_edge.getextrema() == (255, 255), "something runs off the right edge at 1,280 px"

    pdf = tmp_path / "report.pdf"
    _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    printed = PdfReader(io.BytesIO(pdf.read_bytes()))
    first = " ".join(printed.pages[0].extract_text().split())
    assert "Totals" in first and "Batch cost" in first and "Estimate at submit" in first
    batch = float(analytics.report(str(two_nights))["daily"]["batch_cost_usd"].sum())
    assert money(batch) in first, "the totals are on the first page"
    everything = " ".join(" ".join(p.extract_text().split()) for p in printed.pages)
    assert "Rejected documents" in everything and "server_error" in everything


def test_the_terminal_report_fits_100_columns(two_nights: Path) -> None:
    shown = CliRunner().invoke(app, ["report", "-o", str(two_nights)])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in shown.stdout, "a cell was cut short"
    assert "SIMULATED" in shown.stdout and "nightly-test · gpt-4o-mini" in shown.stdout
    # Rendered at exactly 100 columns (a terminal that width), nothing is cut either.
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(Markdown(analytics.report_markdown(analytics.report(str(two_nights)), title="t")))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 100
    assert "2026-05-04" in text and "Rejected documents" in text
