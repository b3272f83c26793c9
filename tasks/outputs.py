"""Classify batch output lines and validate their structured content.

Every line becomes exactly one of: a result (valid JSON for the job's schema), a terminal error
(refusal, truncation, content filter, bad JSON, schema violation, a 4xx, a cancelled request),
or a retryable error (429, 5xx, timeouts, expiry; bad outputs too when the job asks for it).
A success is recognised by `response.status_code == 200`, never by `error is None`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

Outcome = Literal["ok", "retryable", "terminal"]

RETRYABLE_STATUS = frozenset({408, 409, 429})
RETRYABLE_ERROR_CODES = frozenset(
    {
        "batch_expired",
        "request_timeout",
        "token_limit_exceeded",
        "rate_limit_exceeded",
        "server_error",
        "missing_output",
    }
)
INVALID_OUTPUT_CODES = frozenset({"invalid_json", "schema_mismatch"})


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Classified:
    """One output line, judged."""

    custom_id: str
    outcome: Outcome
    stage: Literal["api", "validation"] | None = None
    code: str = ""
    message: str = ""
    model: str | None = None
    usage: Usage | None = None
    raw_output: str | None = None
    """The model's answer as returned; for results, valid JSON for the job's schema."""
    simulated: bool | None = None
    """Whether a 200 body says overnight's simulator wrote it (see `is_simulated`); None for
    lines that carry no answer (HTTP errors, expired or missing lines): they cannot tell."""


SIMULATED_FINGERPRINT = "fp_overnight_simulated"
"""The `system_fingerprint` of the local Batch API's simulated chat completions."""


def is_simulated(body: dict[str, Any]) -> bool:
    """True when a response body says overnight's simulator wrote it, not a model.

    Chat completions carry `system_fingerprint = "fp_overnight_simulated"` (with `_no_vision`
    appended when the request had images it could not see); Responses objects carry
    `metadata.overnight_executor = "simulate"`.
    """
    fingerprint = body.get("system_fingerprint")
    if isinstance(fingerprint, str) and fingerprint.startswith(SIMULATED_FINGERPRINT):
        return True
    metadata = body.get("metadata")
    return isinstance(metadata, dict) and metadata.get("overnight_executor") == "simulate"


Tokens = tuple[int, int, int, int]
"""Input, cached, output and reasoning tokens of one response, in that order."""


def tokens_of(body: dict[str, Any]) -> Tokens | None:
    """`usage_of` as a plain tuple, for the columns of many lines."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    chat = "prompt_tokens" in usage
    inputs, input_details, outputs, output_details = _CHAT_USAGE if chat else _RESPONSES_USAGE
    return (
        int(usage.get(inputs) or 0),
        int((usage.get(input_details) or {}).get("cached_tokens") or 0),
        int(usage.get(outputs) or 0),
        int((usage.get(output_details) or {}).get("reasoning_tokens") or 0),
    )


_CHAT_USAGE = (
    "prompt_tokens",
    "prompt_tokens_details",
    "completion_tokens",
    "completion_tokens_details",
)
_RESPONSES_USAGE = (
    "input_tokens",
    "input_tokens_details",
    "output_tokens",
    "output_tokens_details",
)


def usage_of(body: dict[str, Any]) -> Usage | None:
    """Token usage of a chat completion or a Responses object (cached ⊂ input, reasoning ⊂ output)."""
    tokens = tokens_of(body)
    return None if tokens is None else Usage(*tokens)


def _chat_content(body: dict[str, Any]) -> tuple[str | None, str, str]:
    """(content, code, message) of a chat completion; code is empty when content is usable."""
    choices = body.get("choices") or []
    if not choices:
        return None, "no_choices", "the completion has no choices"
    choice = choices[0]
    message = choice.get("message") or {}
    if message.get("refusal"):
        return None, "refusal", str(message["refusal"])
    finish = choice.get("finish_reason")
    if finish == "length":
        return None, "truncated", "finish_reason=length: the output hit max tokens"
    if finish == "content_filter":
        return None, "content_filter", "finish_reason=content_filter"
    content = message.get("content")
    if not isinstance(content, str):
        return None, "no_content", "the message has no content"
    return content, "", ""


def _responses_content(body: dict[str, Any]) -> tuple[str | None, str, str]:
    """(content, code, message) of a Responses object."""
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason") or "incomplete"
        if reason == "max_output_tokens":
            return None, "truncated", "status=incomplete: the output hit max_output_tokens"
        if reason == "content_filter":
            return None, "content_filter", "status=incomplete: content_filter"
        return None, "incomplete", f"status=incomplete: {reason}"
    texts: list[str] = []
    for item in body.get("output") or []:
        if item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            kind = part.get("type")
            if kind == "refusal":
                return None, "refusal", str(part.get("refusal") or "")
            if kind == "output_text":
                texts.append(str(part.get("text") or ""))
    if not texts:
        return None, "no_content", "the response has no output_text"
    return "".join(texts), "", ""


def _validation_message(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate_body(
    custom_id: str, body: dict[str, Any], output_model: type[BaseModel]
) -> Classified:
    """Judge a 200 response body: a result, or a validation error with its reason."""
    judged = _judge_body(custom_id, body, output_model)
    judged.simulated = is_simulated(body)
    return judged


def _content_of(body: dict[str, Any]) -> tuple[str | None, str, str]:
    """(content, code, message) of a chat completion or a Responses object."""
    if body.get("object") == "response" or "output" in body:
        return _responses_content(body)
    return _chat_content(body)


def _judge_body(custom_id: str, body: dict[str, Any], output_model: type[BaseModel]) -> Classified:
    usage = usage_of(body)
    model = body.get("model")
    content, code, message = _content_of(body)
    if content is None:
        return Classified(custom_id, "terminal", "validation", code, message, model, usage)
    try:
        output_model.__pydantic_validator__.validate_json(content)
    except ValidationError as exc:
        kind = "invalid_json" if exc.errors()[0]["type"] == "json_invalid" else "schema_mismatch"
        return Classified(
            custom_id,
            "terminal",
            "validation",
            kind,
            _validation_message(exc),
            model,
            usage,
            raw_output=content,
        )
    return Classified(custom_id, "ok", model=model, usage=usage, raw_output=content)


def answer_of(
    record: dict[str, Any], validate: Callable[[str], object]
) -> tuple[str, str, dict[str, Any]] | None:
    """The custom_id, content and body of a parsed output line whose answer is valid (most
    lines), else None.

    The common line judged with no more work than it needs: a line `classify_record` would
    judge a result, whose model, usage (`tokens_of`) and simulated mark (`is_simulated`) its
    body gives. `validate` is the output model's `__pydantic_validator__.validate_json`.
    For None, `classify_record` says what the line is.
    """
    response = record.get("response")
    if not isinstance(response, dict) or response.get("status_code") != 200:
        return None
    body = response.get("body")
    if not isinstance(body, dict):
        return None
    content = _content_of(body)[0]
    if content is None:
        return None
    try:
        validate(content)
    except ValidationError:
        return None
    return str(record.get("custom_id")), content, body


def classify_line(line: bytes, output_model: type[BaseModel]) -> Classified:
    """Judge one line of a batch output or error file."""
    return classify_record(orjson.loads(line), output_model)


def classify_record(record: dict[str, Any], output_model: type[BaseModel]) -> Classified:
    """Judge one parsed line of a batch output or error file."""
    custom_id = str(record.get("custom_id"))
    response = record.get("response")
    if isinstance(response, dict):
        status = int(response.get("status_code") or 0)
        body = response.get("body") or {}
        if status == 200:
            return validate_body(custom_id, body, output_model)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or error.get("type") or f"http_{status}")
        message = str(error.get("message") or f"HTTP {status}")
        retryable = status in RETRYABLE_STATUS or status >= 500 or code in RETRYABLE_ERROR_CODES
        return Classified(
            custom_id,
            "retryable" if retryable else "terminal",
            "api",
            code,
            f"HTTP {status}: {message}",
            body.get("model") if isinstance(body, dict) else None,
            usage_of(body) if isinstance(body, dict) else None,
        )
    error = record.get("error") or {}
    code = str(error.get("code") or "unknown_error")
    message = str(error.get("message") or code)
    outcome: Outcome = "retryable" if code in RETRYABLE_ERROR_CODES else "terminal"
    return Classified(custom_id, outcome, "api", code, message)
