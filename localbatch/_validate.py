"""The validating stage: one streaming pass over an input file, as OpenAI checks it.

Failures end the batch `failed` with `errors.data[]` items `{code, message, param, line}`
(line numbers are 1-based physical lines; blank lines are skipped, not counted as requests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from localbatch._prompts import TokenCounter, chat_messages, responses_messages
from localbatch._shapes import embedding_inputs

MAX_REPORTED_ERRORS = 20


@dataclass(slots=True)
class Validation:
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    model: str | None = None
    custom_ids: list[str] = field(default_factory=list)
    embedding_inputs: int = 0
    estimated_input_tokens: int = 0

    def fail(
        self, code: str, message: str, *, param: str | None = None, line: int | None = None
    ) -> None:
        self.errors.append({"code": code, "message": message, "param": param, "line": line})


def estimate_input_tokens(counter: TokenCounter, url: str, body: dict[str, Any]) -> int:
    """The input tokens a request line will cost, counted as the simulator counts them."""
    if url == "/v1/moderations":
        return 0  # moderations are free and bill no tokens
    if url == "/v1/embeddings":
        raw = body.get("input")
        items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        return sum(
            counter.count(x) if isinstance(x, str) else len(x) if isinstance(x, list) else 1
            for x in items
        )
    messages = chat_messages(body) if url == "/v1/chat/completions" else responses_messages(body)
    return counter.prompt_count(messages) if messages else 0


def validate_input(
    path: Path,
    *,
    endpoint: str,
    max_lines: int,
    max_embedding_inputs: int,
    max_bytes: int,
    count_tokens: bool,
) -> Validation:
    """Check every line of an input file; never holds more than one line in memory."""
    result = Validation()
    size = path.stat().st_size
    if size > max_bytes:
        result.fail(
            "file_too_large",
            f"The input file is {size} bytes; the maximum is {max_bytes} bytes.",
        )
        return result
    seen: set[str] = set()
    counters: dict[str, TokenCounter] = {}
    line_no = 0
    with path.open("rb") as fh:
        for raw in fh:
            line_no += 1
            if not raw.strip():
                continue
            result.total += 1
            if result.total > max_lines:
                result.fail(
                    "too_many_tasks",
                    f"The batch input file contains more than the maximum of {max_lines} requests.",
                )
                break
            _check_line(result, raw, line_no, endpoint, seen)
            if result.embedding_inputs > max_embedding_inputs:
                # The code OpenAI gives this is unconfirmed; the limit is in its spec.
                result.fail(
                    "too_many_tasks",
                    "The batch input file contains more than the maximum of "
                    f"{max_embedding_inputs} embedding inputs across all requests.",
                )
                break
            if len(result.errors) >= MAX_REPORTED_ERRORS:
                break
            if count_tokens and not result.errors and result.model is not None:
                counter = counters.get(result.model)
                if counter is None:
                    counter = counters[result.model] = TokenCounter(result.model)
                body = orjson.loads(raw)["body"]
                result.estimated_input_tokens += estimate_input_tokens(counter, endpoint, body)
    if result.total == 0 and not result.errors:
        result.fail("empty_file", "The batch input file is empty.")
    result.custom_ids = list(seen) if not result.errors else []
    return result


def _check_line(result: Validation, raw: bytes, line: int, endpoint: str, seen: set[str]) -> None:
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        result.fail("invalid_json_line", "This line is not parseable as valid JSON.", line=line)
        return
    if not isinstance(request, dict):
        result.fail("invalid_json_line", "This line is not a JSON object.", line=line)
        return
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        result.fail(
            "missing_required_parameter",
            "Missing required parameter: 'custom_id'.",
            param="custom_id",
            line=line,
        )
    elif custom_id in seen:
        result.fail(
            "duplicate_custom_id",
            f"The custom_id '{custom_id[:100]}' is used more than once in this batch; "
            "custom_id values must be unique.",
            param="custom_id",
            line=line,
        )
    else:
        seen.add(custom_id)
    method = request.get("method")
    if method != "POST":
        result.fail(
            "invalid_method",
            f"Invalid value for 'method': {method!r}. Only 'POST' is supported.",
            param="method",
            line=line,
        )
    url = request.get("url")
    if not isinstance(url, str):
        result.fail(
            "missing_required_parameter",
            "Missing required parameter: 'url'.",
            param="url",
            line=line,
        )
    elif url != endpoint:
        result.fail(
            "url_mismatch",
            f"The url '{url[:200]}' does not match the batch endpoint '{endpoint}'.",
            param="url",
            line=line,
        )
    body = request.get("body")
    if not isinstance(body, dict):
        result.fail(
            "missing_required_parameter",
            "Missing required parameter: 'body'.",
            param="body",
            line=line,
        )
        return
    if endpoint == "/v1/embeddings":
        result.embedding_inputs += _embedding_input_count(body.get("input"))
    model = body.get("model")
    if not isinstance(model, str) or not model:
        result.fail(
            "missing_required_parameter",
            "Missing required parameter: 'body.model'.",
            param="body.model",
            line=line,
        )
    elif result.model is None:
        result.model = model
    elif model != result.model:
        result.fail(
            "model_mismatch",
            f"The model '{model[:100]}' differs from the model '{result.model}' of the first "
            "request; a batch may use only one model.",
            param="body.model",
            line=line,
        )


def _embedding_input_count(value: Any) -> int:
    """The inputs an embeddings body embeds (`embedding_inputs`); a shape the spec refuses
    counts as given (each item one) and fails per line."""
    inputs = embedding_inputs(value)
    if inputs is not None:
        return len(inputs)
    return len(value) if isinstance(value, list) else int(isinstance(value, str))
