"""Preflight: refuse, when a job loads, what OpenAI would refuse on every line hours later.

`job_problems` runs the request rules of `tasks.capabilities` (the very ones the local Batch
API applies to each line) on the request a job would send, and adds what only the job knows:
its chunk budget plus its output cap must fit the model's context window. Each problem names
the job field, the model and what to use instead. `check_job` raises them all at once as a
`JobSpecError`; `schemas.job.parse_job` (and so `load_job`, `overnight estimate` and every
command) calls it after the fields themselves are valid.

What a single document can still get wrong (images for a model without vision, a request that
does not fit the window) is rejected per document by the build, before submit.
"""

from __future__ import annotations

from pathlib import Path

from schemas.job import JobSpec, JobSpecError
from tasks.capabilities import (
    RESPONSES_MIN_OUTPUT_TOKENS,
    CapabilitiesError,
    ModelCapabilities,
    RequestProblem,
    load_capabilities,
    request_problems,
)

REASONING_MODELS_HINT = "a reasoning model (gpt-5, gpt-5-mini, o3, o4-mini...)"
SAMPLING_MODELS_HINT = "a non-reasoning model (gpt-4.1, gpt-4.1-mini, gpt-4o-mini...)"


def _field(problem: RequestProblem) -> str:
    param = problem.param or ""
    if problem.code == "model_not_supported":
        return "endpoint"
    if param in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        return "params.max_output_tokens"
    if param in ("reasoning_effort", "reasoning.effort"):
        return "params.reasoning_effort"
    if param.startswith(("response_format", "text.format")) or param == "model":
        return "model"
    return f"params.{param}"


def _advice(job: JobSpec, caps: ModelCapabilities, problem: RequestProblem) -> str:
    model, field, param = job.model, _field(problem), problem.param or ""
    if problem.code == "integer_below_min_value":
        return (
            "the Responses API takes max_output_tokens of at least "
            f"{RESPONSES_MIN_OUTPUT_TOKENS}; set {field} to {RESPONSES_MIN_OUTPUT_TOKENS} or more"
        )
    if field == "params.max_output_tokens":
        return (
            f"{model} writes at most {caps.max_output_tokens} output tokens; set "
            f"{field} to {caps.max_output_tokens} or less"
        )
    if field == "params.reasoning_effort" and not caps.reasoning:
        return (
            f"{model} is not a reasoning model and refuses {param}; remove {field}, or use "
            f"{REASONING_MODELS_HINT}"
        )
    if field == "params.reasoning_effort":
        allowed = ", ".join(caps.reasoning_efforts)
        return f"{model} accepts reasoning_effort {allowed}; use one of them"
    if field == "endpoint":
        endpoints = " or ".join(caps.endpoints)
        return f"{model} does not serve {job.endpoint}; set endpoint to {endpoints}"
    if field == "model":
        return (
            f"{model} has no structured outputs (json_schema response format); use a model "
            "that has, e.g. gpt-4.1-mini"
        )
    if param == "temperature" and job.endpoint == "/v1/chat/completions":
        return (
            f"{model} is a reasoning model and accepts only the default temperature (1); "
            f"remove {field}, or use {SAMPLING_MODELS_HINT}"
        )
    return (
        f"{model} is a reasoning model and refuses {param} on {job.endpoint}; remove {field}, "
        f"or use {SAMPLING_MODELS_HINT}"
    )


def job_problems(job: JobSpec) -> list[tuple[str, str]]:
    """What OpenAI would refuse in every request of this job, as (job field, message) pairs."""
    from tasks.render import request_body

    try:
        caps = load_capabilities().lookup(job.model)
    except CapabilitiesError as exc:
        return [("model", str(exc))]
    problems: list[tuple[str, str]] = []
    body = request_body(job, "")
    for problem in request_problems(caps, job.endpoint, body):
        if problem.code == "invalid_json_schema":
            continue  # check_strict reported it with every path when the fields were read
        problems.append(
            (_field(problem), f'{_advice(job, caps, problem)} (OpenAI: "{problem.message}")')
        )
    budget, cap = job.chunking.max_input_tokens, job.params.max_output_tokens
    if budget + cap > caps.context_window and cap <= caps.max_output_tokens:
        problems.append(
            (
                "chunking.max_input_tokens",
                f"{budget} input tokens per request plus params.max_output_tokens {cap} exceed "
                f"{job.model}'s context window of {caps.context_window} tokens, so requests "
                f"could not fit; set chunking.max_input_tokens to {caps.context_window - cap} "
                "or less",
            )
        )
    return problems


def check_job(job: JobSpec, *, path: str | Path = "<job>") -> None:
    """Raise `JobSpecError` naming every preflight problem of a job, in one line."""
    problems = job_problems(job)
    if not problems:
        return
    listed = "; ".join(f"{field}: {' '.join(message.split())}" for field, message in problems)
    raise JobSpecError(f"{path}: refused before anything is built or sent: {listed}")
