"""Every kind of batch output line ends in the right outcome, with its reason."""

from __future__ import annotations

from typing import Any, Literal

import orjson
import pytest
from pydantic import BaseModel, Field

from tasks.outputs import answer_of, classify_line


class Summary(BaseModel):
    title: str
    points: list[str] = Field(max_length=3)
    sentiment: Literal["positive", "neutral", "negative"]


GOOD = {"title": "T", "points": ["a", "b"], "sentiment": "neutral"}


def chat_line(
    content: str | None = None,
    *,
    status: int = 200,
    finish: str = "stop",
    refusal: str | None = None,
    body: dict[str, Any] | None = None,
) -> bytes:
    if body is None:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 80,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 16},
            },
        }
    line = {
        "id": "batch_req_1",
        "custom_id": "doc-1",
        "response": {"status_code": status, "request_id": "req_1", "body": body},
        "error": None,
    }
    return orjson.dumps(line)


def responses_line(
    output: list[dict[str, Any]], *, status: str = "completed", reason: str | None = None
) -> bytes:
    body = {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-4.1-mini",
        "status": status,
        "incomplete_details": {"reason": reason} if reason else None,
        "output": output,
        "usage": {
            "input_tokens": 500,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 540,
        },
    }
    return orjson.dumps(
        {
            "id": "b",
            "custom_id": "doc-2",
            "response": {"status_code": 200, "body": body},
            "error": None,
        }
    )


def test_valid_chat_output_is_a_result_with_usage() -> None:
    c = classify_line(chat_line(orjson.dumps(GOOD).decode()), Summary)
    assert c.outcome == "ok"
    assert c.raw_output is not None and orjson.loads(c.raw_output) == GOOD
    assert c.model == "gpt-4o-mini-2024-07-18"
    assert c.usage is not None
    assert (c.usage.input_tokens, c.usage.cached_tokens) == (1200, 1024)
    assert (c.usage.output_tokens, c.usage.reasoning_tokens) == (80, 16)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (chat_line(None, refusal="I can't help with that."), "refusal"),
        (chat_line('{"title": "T", "poi', finish="length"), "truncated"),
        (chat_line(orjson.dumps(GOOD).decode(), finish="content_filter"), "content_filter"),
        (chat_line("not json at all"), "invalid_json"),
        (chat_line('{"title": "T", "points": [], "sentiment": "angry"}'), "schema_mismatch"),
        (
            chat_line('{"title": "T", "points": ["1","2","3","4"], "sentiment": "neutral"}'),
            "schema_mismatch",
        ),
    ],
)
def test_unusable_outputs_are_terminal_validation_errors(line: bytes, code: str) -> None:
    c = classify_line(line, Summary)
    assert (c.outcome, c.stage, c.code) == ("terminal", "validation", code)
    assert c.message
    assert c.usage is not None and c.usage.input_tokens == 1200, "billed tokens are kept"


def test_schema_error_message_names_the_field() -> None:
    c = classify_line(chat_line('{"title": "T", "points": [], "sentiment": "angry"}'), Summary)
    assert "sentiment" in c.message


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (500, "server_error", "retryable"),
        (429, "rate_limit_exceeded", "retryable"),
        (503, "overloaded", "retryable"),
        (400, "invalid_request_error", "terminal"),
        (404, "model_not_found", "terminal"),
    ],
)
def test_http_failures_are_classified_by_status(status: int, code: str, outcome: str) -> None:
    body = {"error": {"message": "boom", "type": "x", "param": None, "code": code}}
    c = classify_line(chat_line(status=status, body=body), Summary)
    assert (c.outcome, c.stage, c.code) == (outcome, "api", code)
    assert str(status) in c.message


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("batch_expired", "retryable"),
        ("request_timeout", "retryable"),
        ("batch_cancelled", "terminal"),
    ],
)
def test_non_http_failures(code: str, outcome: str) -> None:
    line = orjson.dumps(
        {"id": "b", "custom_id": "doc-9", "response": None, "error": {"code": code, "message": "m"}}
    )
    c = classify_line(line, Summary)
    assert (c.custom_id, c.outcome, c.code) == ("doc-9", outcome, code)


def test_success_is_judged_by_status_code_not_by_missing_error() -> None:
    body = {"error": {"message": "upstream", "type": "server_error", "param": None, "code": None}}
    c = classify_line(chat_line(status=502, body=body), Summary)
    assert c.outcome == "retryable"


def test_responses_api_output_text_and_refusal_and_truncation() -> None:
    text = orjson.dumps(GOOD).decode()
    ok = classify_line(
        responses_line([{"type": "message", "content": [{"type": "output_text", "text": text}]}]),
        Summary,
    )
    assert (
        ok.outcome == "ok" and ok.raw_output == text and ok.usage and ok.usage.input_tokens == 500
    )
    refused = classify_line(
        responses_line([{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}]),
        Summary,
    )
    assert refused.code == "refusal"
    cut = classify_line(
        responses_line([], status="incomplete", reason="max_output_tokens"), Summary
    )
    assert cut.code == "truncated"


def _body(**changes: Any) -> dict[str, Any]:
    body = orjson.loads(chat_line(orjson.dumps(GOOD).decode()))["response"]["body"]
    body.update(changes)
    return body


def _message(**changes: Any) -> dict[str, Any]:
    return _body(choices=[{"index": 0, "message": {"role": "assistant", **changes}}])


def _record(**changes: Any) -> bytes:
    return orjson.dumps({**orjson.loads(chat_line(orjson.dumps(GOOD).decode())), **changes})


_GOOD_TEXT = orjson.dumps(GOOD).decode()

# Lines the fast path must take (collect's common line), and lines of every other shape.
FAST_LINES = {
    "plain": chat_line(_GOOD_TEXT),
    "simulated": chat_line(body=_body(system_fingerprint="fp_overnight_simulated_no_vision")),
    "no usage": chat_line(body=_body(usage=None)),
    "usage without details": chat_line(body=_body(usage={"prompt_tokens": 9})),
    "details null or empty": chat_line(
        body=_body(
            usage={
                "prompt_tokens": 9,
                "completion_tokens": 4,
                "prompt_tokens_details": None,
                "completion_tokens_details": {},
            }
        )
    ),
    "details with counts": chat_line(
        body=_body(
            usage={
                "prompt_tokens": 900,
                "completion_tokens": 40,
                "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 16, "audio_tokens": 0},
            }
        )
    ),
    "status as a float": chat_line(_GOOD_TEXT, status=200.0),  # type: ignore[arg-type]
    "custom_id a number": _record(custom_id=7),
    "no model": chat_line(body={k: v for k, v in _body().items() if k != "model"}),
}
OTHER_LINES = {
    "refusal": chat_line(_GOOD_TEXT, refusal="I can't"),
    "truncated": chat_line(_GOOD_TEXT, finish="length"),
    "filtered": chat_line(_GOOD_TEXT, finish="content_filter"),
    "invalid JSON answer": chat_line('{"title": "T"'),
    "schema mismatch": chat_line('{"title": "T", "points": [], "sentiment": "angry"}'),
    "no content": chat_line(None),
    "content a list": chat_line(body=_message(content=[{"type": "text", "text": _GOOD_TEXT}])),
    "content an object": chat_line(body=_message(content=GOOD)),
    "message null": chat_line(body=_body(choices=[{"index": 0, "message": None}])),
    "no choices": chat_line(body=_body(choices=[])),
    "http 429": chat_line(_GOOD_TEXT, status=429),
    "status as a string": chat_line(_GOOD_TEXT, status="200"),  # type: ignore[arg-type]
    "body a string": _record(response={"status_code": 200, "body": "oops"}),
    "no response": _record(response=None, error={"code": "batch_expired", "message": "x"}),
    "responses usage in a chat body": chat_line(
        body=_body(usage={"input_tokens": 5, "output_tokens": 3})
    ),
    "responses object": responses_line(
        [{"type": "message", "content": [{"type": "output_text", "text": _GOOD_TEXT}]}]
    ),
    "output key on a chat body": chat_line(body=_body(output=None)),
    "usage a number": chat_line(body=_body(usage=5)),
    "details a list": chat_line(
        body=_body(usage={"prompt_tokens": 9, "prompt_tokens_details": [512]})
    ),
    "not JSON": b'{"custom_id": "doc-1", "response": {"status_code": 200, ',
}


@pytest.mark.parametrize("name", [*FAST_LINES, *OTHER_LINES])
def test_the_fast_path_judges_a_line_as_classify_does(name: str) -> None:
    """collect judges its common line by `answer_of` (a partial decode) and every other line
    by `classify_line`: whenever the first answers, the second would give the same row."""
    line = {**FAST_LINES, **OTHER_LINES}[name]
    answer = answer_of(line, Summary.__pydantic_validator__.validate_json)
    if name in OTHER_LINES:
        assert answer is None
        return
    assert answer is not None
    judged = classify_line(line, Summary)
    assert judged.outcome == "ok"
    custom_id, content, model, tokens, simulated = answer
    usage = judged.usage
    assert (custom_id, content, model, simulated) == (
        judged.custom_id,
        judged.raw_output,
        judged.model,
        judged.simulated,
    )
    assert tokens == (
        None
        if usage is None
        else (usage.input_tokens, usage.cached_tokens, usage.output_tokens, usage.reasoning_tokens)
    )
