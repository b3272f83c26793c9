from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.job import JobSpec, JobSpecError, load_job, parse_job
from schemas.summary import DocumentSummary

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "data" / "jobs"

BASE: dict[str, Any] = {
    "name": "unit-job",
    "source": {"uri": "/data/in"},
    "output": "/data/out",
    "model": "gpt-4o-mini",
    "system_prompt": "Summarize the document.",
    "user_template": "Document {id}:\n\n{text}",
    "output_schema": "schemas.summary:DocumentSummary",
    "params": {"max_output_tokens": 400},
}


def job(**changes: Any) -> JobSpec:
    data = {**BASE, **changes}
    return parse_job(data)


def test_example_jobs_load_with_paths_relative_to_the_job_file() -> None:
    for name in ("nightly_summary", "invoices", "contacts"):
        spec = load_job(JOBS / f"{name}.toml")
        assert spec.source.uri == str(REPO / "data" / "samples")
        assert spec.output == str(REPO / "out")
        assert issubclass(spec.output_model(), BaseModel)
    assert load_job(JOBS / "nightly_summary.toml").output_model() is DocumentSummary


def test_yaml_job_file(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "name: y-job\nsource: {uri: docs}\noutput: s3://bucket/out\nmodel: gpt-4o-mini\n"
        "system_prompt: Hi\noutput_schema: schemas.invoice:InvoiceV1\n"
        "endpoint: /v1/responses\nparams: {max_output_tokens: 100}\n"
    )
    spec = load_job(tmp_path / "job.yaml")
    assert spec.source.uri == str(tmp_path / "docs")
    assert spec.output == "s3://bucket/out"  # S3 URIs are left alone
    assert spec.user_template == "{text}"
    assert spec.limits.max_requests_per_shard == 50_000
    assert spec.limits.max_shard_bytes < 200 * 1024 * 1024


def test_bad_job_file_names_the_file_and_every_bad_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "Bad Name!"\nmodel = "gpt-4o-mini"\nsystem_prompt = "x"\noutput = "out"\n'
        'output_schema = "schemas.summary:Nope"\n[source]\nuri = "in"\ncolour = "red"\n'
        "[params]\nmax_output_tokens = 0\n"
    )
    with pytest.raises(JobSpecError) as err:
        load_job(path)
    message = str(err.value)
    assert message.startswith(f"{path}: invalid job file: ") and "\n" not in message
    for field in ("name", "source.colour", "output_schema", "params.max_output_tokens"):
        assert f" {field}: " in message


def test_unreadable_and_malformed_job_files(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match="cannot read job file"):
        load_job(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [unclosed")
    with pytest.raises(JobSpecError, match=r"broken\.toml: not valid TOML"):
        load_job(broken)
    other = tmp_path / "job.json"
    other.write_text("{}")
    with pytest.raises(JobSpecError, match=r"\.toml, \.yaml or \.yml"):
        load_job(other)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Summarize {txt}", "unknown field {txt}"),
        ("Summarize {}", "positional"),
        ("Summarize {0}", "positional"),
        ("No document here", "must contain {text}"),
        ("Broken {text", "not a valid format template"),
    ],
)
def test_user_template_is_checked_at_load(template: str, problem: str) -> None:
    with pytest.raises(JobSpecError, match="user_template") as err:
        job(user_template=template)
    assert problem in str(err.value)


def test_user_template_accepts_known_fields() -> None:
    spec = job(
        user_template="{metadata[author]} {source_uri} {chunk_number}/{chunk_count} "
        "{chunk_index} {id}\n{text}"
    )
    assert "{text}" in spec.user_template


def test_output_schema_must_be_an_importable_pydantic_model() -> None:
    with pytest.raises(JobSpecError, match="cannot import module"):
        job(output_schema="schemas.nothing_here:Model")
    with pytest.raises(JobSpecError, match="not a Pydantic model"):
        job(output_schema="schemas.job:RENDER_VERSION")
    with pytest.raises(JobSpecError, match="import path"):
        job(output_schema="schemas.summary.DocumentSummary")


def test_seed_is_refused_for_the_responses_endpoint() -> None:
    with pytest.raises(JobSpecError, match="seed"):
        job(endpoint="/v1/responses", params={"max_output_tokens": 5, "seed": 1})


def test_spec_is_frozen_and_round_trips_as_json() -> None:
    spec = job()
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec


# -- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_is_pinned() -> None:
    # Regression pin: changing the canonical form re-runs every document of every nightly job.
    # If the change is intended (and RENDER_VERSION bumped or the schema changed), update it.
    assert job().fingerprint() == PINNED_FINGERPRINT


PINNED_FINGERPRINT = "9537a25ba1c72f34c0a7199685423d0bd2800f9e01b9d073c0d6027d77587439"


def test_fingerprint_is_the_same_in_a_new_process() -> None:
    code = (
        "from schemas.job import load_job;"
        f"print(load_job({str(JOBS / 'nightly_summary.toml')!r}).fingerprint())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == load_job(JOBS / "nightly_summary.toml").fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4.1-mini"},
        {"endpoint": "/v1/responses"},
        {"system_prompt": "Summarize the document briefly."},
        {"user_template": "Doc {id}:\n{text}"},
        {"output_schema": "schemas.invoice:InvoiceV1"},
        {"params": {"max_output_tokens": 401}},
        {"params": {"max_output_tokens": 400, "temperature": 0.0}},
        {"chunking": {"max_input_tokens": 5000}},
        {"chunking": {"overlap_tokens": 0}},
        {"chunking": {"output": "document"}},  # adds the reduce requests
    ],
)
def test_fingerprint_changes_with_what_changes_a_request(change: dict[str, Any]) -> None:
    assert job(**change).fingerprint() != job().fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"source": {"uri": "s3://elsewhere/in", "include": ["*.txt"]}},
        {"output": "s3://bucket/out"},
        {"limits": {"max_requests_per_shard": 10, "max_attempts": 5}},
        {"budget_usd": 3.0},
        {"expected_output_tokens": 100},
        {"name": "renamed-job", "description": "same requests"},
        {"chunking": {"output": "chunk"}},  # the default, spelled out: jobs keep their ledger
    ],
)
def test_fingerprint_ignores_where_and_how_much(change: dict[str, Any]) -> None:
    assert job(**change).fingerprint() == job().fingerprint()
