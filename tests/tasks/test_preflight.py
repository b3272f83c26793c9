"""Preflight: what OpenAI would refuse on every line is refused when the job loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from schemas.job import JobSpec, JobSpecError, load_job, parse_job
from tasks.build import build_shards

JOBS = Path(__file__).resolve().parents[2] / "data" / "jobs"


class StrictTitle(BaseModel):
    title: str = Field(min_length=3, max_length=80, description="The title.")
    pages: int = Field(default=1, description="Page count.")


def job_data(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "preflight",
        "source": {"uri": str(tmp_path / "in")},
        "output": str(tmp_path / "out"),
        "model": "gpt-4o-mini",
        "system_prompt": "Summarize the document.",
        "output_schema": "schemas.summary:DocumentSummary",
        "params": {"max_output_tokens": 800},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(JobSpecError) as err:
        parse_job(data, path="job.toml")
    return str(err.value)


def test_temperature_on_a_reasoning_model_is_refused_with_field_model_and_remedy(
    tmp_path: Path,
) -> None:
    message = refusal(
        job_data(tmp_path, model="gpt-5-mini", params={"temperature": 0.2, "top_p": 0.9})
    )
    assert message == (
        "job.toml: refused before anything is built or sent: "
        "params.temperature: gpt-5-mini is a reasoning model and accepts only the default "
        "temperature (1); remove params.temperature, or use a non-reasoning model (gpt-4.1, "
        "gpt-4.1-mini, gpt-4o-mini...) (OpenAI: \"Unsupported value: 'temperature' does not "
        'support 0.2 with this model. Only the default (1) value is supported."); '
        "params.top_p: gpt-5-mini is a reasoning model and refuses top_p on "
        "/v1/chat/completions; remove params.top_p, or use a non-reasoning model (gpt-4.1, "
        "gpt-4.1-mini, gpt-4o-mini...) (OpenAI: \"Unsupported parameter: 'top_p' is not "
        'supported with this model.")'
    )


def test_the_default_temperature_is_fine_on_a_reasoning_model(tmp_path: Path) -> None:
    parse_job(job_data(tmp_path, model="o4-mini", params={"temperature": 1.0}))


def test_reasoning_effort_needs_a_reasoning_model_and_a_value_it_takes(tmp_path: Path) -> None:
    message = refusal(job_data(tmp_path, params={"reasoning_effort": "low"}))
    assert ": params.reasoning_effort: gpt-4o-mini is not a reasoning model" in message
    assert "Unsupported parameter: 'reasoning_effort' is not supported" in message
    message = refusal(job_data(tmp_path, model="o3", params={"reasoning_effort": "minimal"}))
    assert ": params.reasoning_effort: o3 accepts reasoning_effort low, medium, high" in message
    message = refusal(
        job_data(
            tmp_path, model="gpt-4.1", endpoint="/v1/responses", params={"reasoning_effort": "low"}
        )
    )
    assert "Unsupported parameter: 'reasoning.effort' is not supported" in message
    parse_job(job_data(tmp_path, model="gpt-5-nano", params={"reasoning_effort": "minimal"}))


def test_temperature_is_refused_on_responses_for_reasoning_models(tmp_path: Path) -> None:
    data = job_data(tmp_path, model="o4-mini", endpoint="/v1/responses")
    data["params"] = {"max_output_tokens": 800, "temperature": 1.0}
    assert "params.temperature: o4-mini is a reasoning model and refuses temperature" in (
        refusal(data)
    )


def test_an_output_cap_above_the_model_limit_is_refused(tmp_path: Path) -> None:
    message = refusal(job_data(tmp_path, params={"max_output_tokens": 20_000}))
    assert (
        ": params.max_output_tokens: gpt-4o-mini writes at most 16384 output tokens; set "
        "params.max_output_tokens to 16384 or less" in message
    )


def test_an_output_cap_under_16_is_refused_on_responses_only(tmp_path: Path) -> None:
    data = job_data(tmp_path, endpoint="/v1/responses", params={"max_output_tokens": 10})
    assert refusal(data) == (
        "job.toml: refused before anything is built or sent: params.max_output_tokens: the "
        "Responses API takes max_output_tokens of at least 16; set params.max_output_tokens to "
        "16 or more (OpenAI: \"Invalid 'max_output_tokens': integer below minimum value. "
        'Expected a value >= 16, but got 10 instead.")'
    )
    parse_job(job_data(tmp_path, endpoint="/v1/responses", params={"max_output_tokens": 16}))
    parse_job(job_data(tmp_path, params={"max_output_tokens": 10}))  # chat takes it


def test_a_chunk_budget_plus_output_over_the_window_is_refused(tmp_path: Path) -> None:
    message = refusal(
        job_data(
            tmp_path,
            params={"max_output_tokens": 16_000},
            chunking={"max_input_tokens": 120_000, "overlap_tokens": 200},
        )
    )
    assert message.endswith(
        ": chunking.max_input_tokens: 120000 input tokens per request plus "
        "params.max_output_tokens 16000 exceed gpt-4o-mini's context window of 128000 tokens, "
        "so requests could not fit; set chunking.max_input_tokens to 112000 or less"
    )


def test_a_model_that_does_not_serve_the_endpoint_is_refused(tmp_path: Path) -> None:
    message = refusal(job_data(tmp_path, model="text-embedding-3-small"))
    assert ": endpoint: text-embedding-3-small does not serve /v1/chat/completions" in message


def test_an_unknown_model_names_both_files_to_edit(tmp_path: Path) -> None:
    message = refusal(job_data(tmp_path, model="gpt-9-ultra"))
    assert ": model: model 'gpt-9-ultra' is not in the capabilities file" in message
    assert "models.toml" in message and "pricing.toml" in message


def test_a_misspelt_model_is_answered_with_the_model_it_looks_like(tmp_path: Path) -> None:
    # The answer to "gpt-4.1-mni" was only how to add it to a models file of one's own.
    message = refusal(job_data(tmp_path, model="gpt-4.1-mni"))
    assert "did you mean 'gpt-4.1-mini'? If not, copy" in message
    assert "did you mean" not in refusal(job_data(tmp_path, model="gpt-9-ultra"))


def test_strict_schema_keywords_are_refused_with_their_json_paths(tmp_path: Path) -> None:
    message = refusal(job_data(tmp_path, output_schema=f"{__name__}:StrictTitle"))
    assert "strict structured outputs reject this schema" in message
    for path in (
        "$.properties.title.maxLength: 'maxLength' is not permitted",
        "$.properties.title.minLength: 'minLength' is not permitted",
        "$.properties.pages.default: 'default' is not permitted",
    ):
        assert path in message


def test_the_shipped_jobs_still_load() -> None:
    for name in ("nightly_summary", "invoices", "contacts"):
        assert isinstance(load_job(JOBS / f"{name}.toml"), JobSpec)


def test_estimate_refuses_before_counting_anything(tmp_path: Path) -> None:
    from overnight.cli import app

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("hello")
    job = tmp_path / "job.toml"
    job.write_text(
        'name = "reasoning"\nmodel = "gpt-5-mini"\noutput = "out"\nsystem_prompt = "Sum."\n'
        'output_schema = "schemas.summary:DocumentSummary"\n[source]\nuri = "in"\n'
        "[params]\nmax_output_tokens = 100\ntemperature = 0.2\n"
    )
    result = CliRunner().invoke(app, ["estimate", str(job)])
    assert result.exit_code == 2
    assert "params.temperature: gpt-5-mini is a reasoning model" in result.output
    assert "documents found" not in result.output


# -- what a single document can still get wrong: rejected at build, never sent ---------------


def test_a_document_over_the_context_window_is_rejected_and_never_sent(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "small.txt").write_text("A short note about the harbour budget.")
    (tmp_path / "in" / "huge.txt").write_text("harbour budget report " * 45_000)  # ~135k tokens
    job = parse_job(
        job_data(
            tmp_path,
            chunking={"max_input_tokens": 100_000, "max_chunks": 1, "overlap_tokens": 0},
        )
    )
    summary = build_shards(job, str(tmp_path / "run"))
    rejected = [orjson.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").open("rb")]
    assert [(r["document_id"], r["stage"], r["code"]) for r in rejected] == [
        ("huge.txt", "build", "context_length_exceeded")
    ]
    assert "exceeds gpt-4o-mini's context window of 128000 tokens" in rejected[0]["message"]
    sent = [
        orjson.loads(line)
        for shard in summary.shards
        for line in Path(shard.uri).read_bytes().splitlines()
    ]
    assert len(sent) == summary.requests == 1
    assert "harbour budget report" not in sent[0]["body"]["messages"][1]["content"]


@pytest.fixture
def no_vision_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's models file in which gpt-4o-mini (renamed text-only) has no vision."""
    from overnight.settings import get_settings

    shipped = (Path(__file__).resolve().parents[2] / "data" / "models.toml").read_text()
    own = tmp_path / "models.toml"
    own.write_text(
        shipped + '\n[models."gpt-4o-mini-2024-07-18"]\ncontext_window = 128000\n'
        "max_output_tokens = 16384\nreasoning = false\nvision = false\n"
        'structured_outputs = true\nendpoints = ["/v1/chat/completions"]\n'
    )
    monkeypatch.setenv("OVERNIGHT_MODELS_FILE", str(own))
    get_settings.cache_clear()
    yield "gpt-4o-mini-2024-07-18"
    monkeypatch.delenv("OVERNIGHT_MODELS_FILE")
    get_settings.cache_clear()


def test_image_documents_for_a_model_without_vision_are_rejected(
    tmp_path: Path, no_vision_model: str
) -> None:
    cases = Path(__file__).resolve().parents[1] / "cases"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pixel.png").write_bytes((cases / "pixel.png").read_bytes())
    (tmp_path / "in" / "note.txt").write_text("Plain text is fine.")
    job = parse_job(job_data(tmp_path, model=no_vision_model))
    summary = build_shards(job, str(tmp_path / "run"))
    rejected = [orjson.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").open("rb")]
    assert [(r["document_id"], r["code"]) for r in rejected] == [
        ("pixel.png", "vision_unsupported")
    ]
    assert "does not accept image input" in rejected[0]["message"]
    assert summary.requests == 1
