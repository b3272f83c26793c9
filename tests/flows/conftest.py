"""End-to-end fixtures: a Prefect test server, the local Batch API as the backend, a corpus."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from overnight.settings import get_settings
from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import storage
from tasks.gateway import reset_gateways

REPO = Path(__file__).resolve().parents[2]


REPO = Path(__file__).resolve().parents[2]


def overnight(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `overnight` command in its own process (wide, so lines are not wrapped)."""
    return subprocess.run(
        [sys.executable, "-m", "overnight.cli", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    from prefect.logging.configuration import setup_logging
    from prefect.testing.utilities import prefect_test_harness

    # Bind Prefect's console log handler to the real stderr now, not to the stream of the
    # first CliRunner invocation (which is closed by the next one).
    setup_logging()
    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def backend(batch_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point overnight at the test's local Batch API exactly as a user points it at OpenAI."""
    monkeypatch.setenv("OPENAI_API_KEY", batch_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", batch_server.base_url)
    get_settings.cache_clear()
    reset_gateways()
    yield batch_server
    get_settings.cache_clear()
    reset_gateways()


WORDS = [
    "river",
    "harbor",
    "ledger",
    "invoice",
    "orchard",
    "lantern",
    "meadow",
    "copper",
    "signal",
    "granite",
    "tide",
    "compass",
    "ember",
    "valley",
    "quartz",
    "beacon",
    "willow",
    "falcon",
    "summit",
    "canyon",
]


def write_corpus(folder: Path, n: int, *, start: int = 0) -> list[Path]:
    """n small, distinct plain-text documents."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(60)]
        text = (
            f"Report {i}\n\n" + " ".join(words).capitalize() + f". Document number {i} ends here."
        )
        path = folder / f"doc-{i:04d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture
def make_job(tmp_path: Path) -> Callable[..., JobSpec]:
    def make(source: str | None = None, output: str | None = None, **overrides: Any) -> JobSpec:
        spec: dict[str, Any] = {
            "name": "nightly-test",
            "source": {"uri": source or str(tmp_path / "docs")},
            "output": output or str(tmp_path / "out"),
            "model": "gpt-4o-mini",
            "system_prompt": "Summarize the document for an analyst.",
            "output_schema": "schemas.summary:DocumentSummary",
            "params": {"max_output_tokens": 600},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(spec.get(key), dict):
                spec[key] = {**spec[key], **value}
            else:
                spec[key] = value
        return JobSpec.model_validate(spec)

    return make


def read_table(manifest: RunManifest, name: str) -> pl.DataFrame:
    return pl.read_parquet(storage.read_bytes(manifest.tables[name]))


def assert_every_input_has_one_row(manifest: RunManifest) -> tuple[pl.DataFrame, pl.DataFrame]:
    results = read_table(manifest, "results")
    errors = read_table(manifest, "errors")
    inputs = manifest.counts.requests + manifest.counts.documents_rejected
    assert results.height + errors.height == inputs
    ids = pl.concat(
        [results.select("document_id", "chunk_index"), errors.select("document_id", "chunk_index")]
    )
    assert ids.is_duplicated().sum() == 0, "a request has more than one row"
    return results, errors


_DRIVER = """
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


def drive(
    job_file: Path, server: Any, mode: str, failpoint: str | None
) -> subprocess.CompletedProcess[str]:
    """`run` or `collect` a job in a process of its own, killed at `failpoint` if given."""
    env = {
        **os.environ,
        "OPENAI_API_KEY": server.api_key,
        "OPENAI_BASE_URL": server.base_url,
        "PYTHONPATH": str(REPO),
    }
    env.pop("OVERNIGHT_FAILPOINT", None)
    if failpoint:
        env["OVERNIGHT_FAILPOINT"] = failpoint
    # A process killed inside a scratch folder's block leaves that folder (the next command
    # sweeps it an hour later): in the test's own folder, not the machine's temporary one.
    scratch = job_file.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    env["TMPDIR"] = str(scratch)
    return subprocess.run(
        [sys.executable, "-c", _DRIVER, str(job_file), mode],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
