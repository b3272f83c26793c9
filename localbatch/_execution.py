"""What executors share: one request line in, one outcome out, and the output-file line format."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from localbatch._faults import LineFault

_BASE62 = string.digits + string.ascii_letters


def short_id(key: str, length: int = 24) -> str:
    """A base62 id derived from `key` (stable, so a resumed batch writes the same ids)."""
    digest = hashlib.blake2b(key.encode(), digest_size=min(64, length)).digest()
    return "".join([_BASE62[b % 62] for b in digest[:length]])


def hex_id(key: str, length: int = 32) -> str:
    return hashlib.blake2b(key.encode(), digest_size=length // 2).hexdigest()


@dataclass(slots=True)
class WorkItem:
    """One request line, parsed and ready to run."""

    line: int
    custom_id: str
    url: str
    body: dict[str, Any]
    model: str
    key: str
    """Unique per batch and line (batch id + custom_id): seeds the ids written for it."""
    created: int
    """Virtual Unix time at execution."""
    fault: LineFault | None = None
    raw: bytes = b""
    """The request line as read (a simulator pool sends it to its workers as is)."""


@dataclass(slots=True)
class Outcome:
    """What became of one request line."""

    status_code: int | None
    """HTTP status of the request, or None for non-HTTP failures (`request_timeout`...)."""
    body: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    encoded_body: bytes | None = None
    """The body already serialized (by a simulator pool's worker): written as is, never parsed."""

    @property
    def ok(self) -> bool:
        return self.status_code == 200


class Executor(Protocol):
    """Runs request lines; must be safe to call from one engine thread per batch."""

    def execute(self, items: Sequence[WorkItem]) -> list[Outcome]: ...

    def close(self) -> None: ...


Pending = Callable[[], list[Outcome]]
"""Lines begun: called, it waits for their outcomes and returns them in order."""


def begin(executor: Executor, items: Sequence[WorkItem]) -> Pending:
    """Start running `items` if the executor can work in the background, else when called.

    An executor with a `start(items) -> Pending` method (the simulator pool) starts at once, so
    the engine reads the next lines and writes the last answers meanwhile; any other runs the
    lines in the engine's thread when their outcomes are asked for.
    """
    start = getattr(executor, "start", None)
    if start is not None:
        pending: Pending = start(items)
        return pending
    return lambda: executor.execute(items)


def output_line(item_key: str, custom_id: str, outcome: Outcome) -> dict[str, Any]:
    """One line of an output or error file, exactly as OpenAI writes it."""
    response: dict[str, Any] | None = None
    if outcome.status_code is not None:
        response = {
            "status_code": outcome.status_code,
            "request_id": "req_" + hex_id("req:" + item_key),
            "body": (
                orjson.Fragment(outcome.encoded_body)
                if outcome.encoded_body is not None
                else outcome.body
                if outcome.body is not None
                else {}
            ),
        }
    return {
        "id": "batch_req_" + hex_id("line:" + item_key),
        "custom_id": custom_id,
        "response": response,
        "error": outcome.error,
    }


def http_error(
    status_code: int, message: str, *, type: str, code: str | None, param: str | None = None
) -> Outcome:
    return Outcome(
        status_code=status_code,
        body={"error": {"message": message, "type": type, "param": param, "code": code}},
    )


def server_error() -> Outcome:
    return http_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        code=None,
    )


def rate_limited(model: str) -> Outcome:
    return http_error(
        429,
        f"Rate limit reached for {model} in organization org-local on requests per min "
        "(RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.",
        type="requests",
        code="rate_limit_exceeded",
    )


def timed_out() -> Outcome:
    return Outcome(
        status_code=None,
        error={"code": "request_timeout", "message": "The request timed out."},
    )


def not_run(code: str) -> Outcome:
    messages = {
        "batch_expired": "This request could not be executed before the completion window expired.",
        "batch_cancelled": "This request was not executed because the batch was cancelled.",
    }
    return Outcome(status_code=None, error={"code": code, "message": messages[code]})


def injected(item: WorkItem) -> Outcome | None:
    """The outcome of an HTTP-level or timeout fault, or None if the line runs normally."""
    if item.fault == "http_500":
        return server_error()
    if item.fault == "http_429":
        return rate_limited(item.model)
    if item.fault == "timeout":
        return timed_out()
    return None
