"""The `overnight` commands as a user types them, against the test's local Batch API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from typer.testing import CliRunner

from overnight.cli import app
from schemas.job import JobSpec
from tests.flows.conftest import overnight, write_corpus

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _job_file(tmp_path: Path, job: JobSpec) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_defaults=True)))
    return path


def test_run_status_query_report(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 4)
    job_file = _job_file(tmp_path, make_job())

    ran = overnight("run", str(job_file))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "done" in ran.stdout and "4 results" in ran.stdout
    assert "results" in ran.stdout and ".parquet" in ran.stdout

    status = runner.invoke(app, ["status", str(job_file)])
    assert status.exit_code == 0 and "done" in status.output

    again = runner.invoke(app, ["estimate", str(job_file)])
    assert again.exit_code == 0 and "skipped" in again.output

    out = str(tmp_path / "out")
    csv = tmp_path / "latest.csv"
    q = runner.invoke(
        app,
        [
            "query",
            "-o",
            out,
            "select document_id, title from latest order by 1",
            "--format",
            "csv",
            "--to",
            str(csv),
        ],
    )
    assert q.exit_code == 0, q.output
    frame = pl.read_csv(csv)
    assert frame["document_id"].to_list() == [f"doc-{i:04d}.txt" for i in range(4)]
    js = runner.invoke(
        app, ["query", "-o", out, "select count(*) as n from results", "--format", "json"]
    )
    assert json.loads(js.stdout) == [{"n": 4}]
    bad = runner.invoke(app, ["query", "-o", out, "select nope from results"])
    assert bad.exit_code == 2 and "query failed" in bad.output

    html = tmp_path / "report.html"
    rep = runner.invoke(app, ["report", "-o", out, "--to", str(html)])
    assert rep.exit_code == 0, rep.output
    assert "<svg" in html.read_text()


def test_bad_job_file_is_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "job.toml"
    broken.write_text('name = "x"\nmodel = "gpt-4o-mini"\n')
    result = overnight("run", str(broken))
    assert result.returncode == 2
    assert "error" in result.stderr and "Traceback" not in result.stderr


def test_submit_then_collect_then_cancel_a_finished_run(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 2)
    job_file = _job_file(tmp_path, make_job())
    sub = overnight("submit", str(job_file))
    assert sub.returncode == 0, sub.stderr[-3000:]
    run_id = sub.stdout.strip().rsplit("/", 1)[-1]
    # An open run's status says what moves it on (it showed 0% and nothing else to do).
    listed = runner.invoke(app, ["status", str(job_file)])
    assert listed.exit_code == 0
    assert f"1 open run(s): progress as last seen; `overnight collect {job_file}`" in " ".join(
        listed.output.split()
    )
    for _ in range(5):
        col = overnight("collect", str(job_file))
        assert col.returncode == 0, col.stderr[-3000:]
        if "done" in col.stdout:
            break
    assert "done" in col.stdout
    cancel = runner.invoke(app, ["cancel", run_id, str(job_file)])
    assert cancel.exit_code == 2 and "nothing to cancel" in cancel.output


def test_with_a_prefect_api_the_commands_run_as_flows_and_fail_in_one_line(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    write_corpus(tmp_path / "docs", 3)
    job_file = _job_file(tmp_path, make_job())
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    ran = subprocess.run(
        [sys.executable, "-m", "overnight.cli", "run", str(job_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Beginning flow run" in ran.stderr and "3 results" in ran.stdout
    with get_client(sync_client=True) as client:
        flows = {client.read_flow(r.flow_id).name for r in client.read_flow_runs()}
    assert "run" in flows

    refused = subprocess.run(
        [sys.executable, "-m", "overnight.cli", "submit", "--full", str(job_file)],
        env={**env, "OPENAI_API_KEY": "not-the-key"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["error: the Batch API refused the key (401): check OPENAI_API_KEY"]

    # the refused run stays open; the next submit resumes it, and says so on the terminal
    # and in the Prefect API's logs
    resumed = subprocess.run(
        [sys.executable, "-m", "overnight.cli", "submit", "--full", str(job_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming open run" in resumed.stderr
    with get_client(sync_client=True) as client:
        messages = [log.message for log in client.read_logs()]
    assert any(m.startswith("resuming open run") for m in messages)


def test_estimate_retry_failed_prices_what_run_retry_failed_would_send(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 2)
    (tmp_path / "docs" / "empty.txt").write_text("")  # a terminal failure of its own
    job_file = _job_file(tmp_path, make_job())
    ran = overnight("run", str(job_file))
    assert ran.returncode == 0, ran.stderr[-3000:]

    def skipped(*options: str) -> int:
        shown = runner.invoke(app, ["estimate", *options, str(job_file)])
        assert shown.exit_code == 0, shown.output
        line = next(line for line in shown.output.splitlines() if "skipped" in line)
        return int(line.split("│")[2])

    assert skipped() == 3
    assert skipped("--retry-failed") == 2


def test_the_run_line_counts_the_requests_the_cost_table_counts(
    backend: Any, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    """A split document's combining request is billed and in the cost table's requests; the
    run line left it out (93 requests beside the table's 94)."""
    write_corpus(tmp_path / "docs", 2)
    sentences = [f"Paragraph {n} of the annual plan sets out goal number {n} in detail." for n in
                 range(400)]  # fmt: skip
    (tmp_path / "docs" / "long.txt").write_text("\n\n".join(sentences))
    job = make_job(chunking={"max_input_tokens": 2000, "output": "document"})
    ran = overnight("run", str(_job_file(tmp_path, job)))
    assert ran.returncode == 0, ran.stderr[-3000:]
    costs = pl.read_parquet(next((tmp_path / "out" / "costs").rglob("*.parquet")))
    billed = costs.get_column("requests").sum()
    assert billed > 4, "the long document was split"
    assert f"· {billed} requests (1 combining split documents) → 3 results" in ran.stdout
