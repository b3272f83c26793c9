"""Request lines, sample documents and polling for the local Batch API tests."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from typing import Any

from openai import OpenAI
from openai.types import Batch, FileObject

TERMINAL = ("completed", "failed", "expired", "cancelled")

# A strict schema OpenAI accepts: only keywords its Structured Outputs guide lists (so no
# minLength / maxLength); the local API refuses the others as OpenAI does.
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "keywords": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 6},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "word_count": {"type": "integer", "minimum": 0},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "language": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "entities": {
            "type": "array",
            "items": {"$ref": "#/$defs/Entity"},
            "maxItems": 4,
        },
        "is_actionable": {"type": "boolean"},
    },
    "required": [
        "title",
        "summary",
        "keywords",
        "sentiment",
        "word_count",
        "confidence",
        "language",
        "entities",
        "is_actionable",
    ],
    "additionalProperties": False,
    "$defs": {
        "Entity": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "kind": {"type": "string", "enum": ["person", "organization", "place"]},
                "mentions": {"type": "integer", "minimum": 1},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["name", "kind", "mentions", "note"],
            "additionalProperties": False,
        }
    },
}

_TOPICS = (
    ("Quarterly results", "revenue margin growth customers forecast pricing market analysts"),
    ("Server outage report", "database latency failover incident engineers monitoring alerts"),
    ("Garden notes", "tomatoes compost watering seedlings harvest soil weather beds"),
    ("Hiring update", "candidates interviews offers recruiters onboarding salaries teams"),
    ("Travel diary", "train mountains village museum coffee hostel river bridges"),
    ("Invoice dispute", "invoice payment amount vendor contract penalty delivery refund"),
)


def document(i: int, *, sentences: int = 6) -> str:
    """A small, distinct document: a heading line, then sentences about one topic."""
    title, words = _TOPICS[i % len(_TOPICS)]
    rnd = random.Random(i)
    vocab = words.split()
    body = []
    for s in range(sentences):
        picked = [rnd.choice(vocab) for _ in range(8 + s % 4)]
        body.append(f"The {picked[0]} of Acme {i} " + " ".join(picked[1:]) + f" in {2020 + s}.")
    return f"{title} #{i}\n" + " ".join(body)


def chat_line(
    custom_id: str,
    text: str,
    *,
    model: str = "gpt-4o-mini",
    schema: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "Summarize the document as JSON."},
            {"role": "user", "content": text},
        ],
        **body,
    }
    if schema is not None:
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "summary_v1", "schema": schema, "strict": True},
        }
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": payload,
    }


def responses_line(
    custom_id: str,
    text: str,
    *,
    model: str = "gpt-4o-mini",
    schema: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "instructions": "Summarize the document as JSON.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}],
        **body,
    }
    if schema is not None:
        payload["text"] = {
            "format": {
                "type": "json_schema",
                "name": "summary_v1",
                "schema": schema,
                "strict": True,
            }
        }
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/responses", "body": payload}


def jsonl(lines: list[Any]) -> bytes:
    return "".join(
        (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines
    ).encode()


def upload(client: OpenAI, data: bytes, name: str = "input.jsonl") -> FileObject:
    return client.files.create(file=(name, data), purpose="batch")


def wait_for(
    client: OpenAI, batch_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 60.0
) -> Batch:
    # Generous: a batch done early returns at once, and a loaded machine (CI beside other
    # work) can take several times as long as a quiet one.
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout}s")
        time.sleep(0.02)


def submit(
    client: OpenAI,
    lines: list[Any],
    *,
    endpoint: str = "/v1/chat/completions",
    metadata: dict[str, str] | None = None,
) -> Batch:
    file = upload(client, jsonl(lines))
    return client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        metadata=metadata,
    )


def run_batch(client: OpenAI, lines: list[Any], *, endpoint: str = "/v1/chat/completions") -> Batch:
    """Upload, create and wait until the batch ends."""
    return wait_for(client, submit(client, lines, endpoint=endpoint).id)


def read_lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def results(client: OpenAI, batch: Batch) -> tuple[dict[str, Any], dict[str, Any]]:
    """(output lines, error lines), each keyed by custom_id."""
    out = {line["custom_id"]: line for line in read_lines(client, batch.output_file_id)}
    err = {line["custom_id"]: line for line in read_lines(client, batch.error_file_id)}
    return out, err


def message_content(line: dict[str, Any]) -> str:
    return str(line["response"]["body"]["choices"][0]["message"]["content"])


def stop_server(process: subprocess.Popen[str], output: list[str]) -> None:
    """Stop a `python -m localbatch` child with Ctrl-C and keep the rest of what it printed
    (read through the pipe's text buffer: `communicate` would skip what `readline` had
    already buffered)."""
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    assert process.stdout is not None
    output.append(process.stdout.read())


def printed_base_url(process: subprocess.Popen[str], output: list[str] | None = None) -> str:
    """The base URL a `python -m localbatch` child prints, read from its stdout (each line read
    is kept in `output`); fails if the child ends first."""
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if output is not None:
            output.append(line)
        assert line, "the server ended before printing its address:\n" + "".join(output or [])
        match = re.search(r"export OPENAI_BASE_URL=(\S+)", line)
        if match:
            return match.group(1)
