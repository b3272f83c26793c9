"""Parsing writes the same rows, columns and types for every kind of output line, pinned.

A run of small shards holds every kind of line collect meets (answers, bad JSON, schema
violations, refusals, truncation, content filters, HTTP errors, expired and cancelled lines,
lines missing from a failed batch, Responses objects, simulated and real answers, duplicates
and strangers); every part, retry list and counter parsing writes is compared with
`parse_tables.golden.json`, so a changed value, column or type fails here. Refresh the file only
for an intended change: `OVERNIGHT_REGENERATE_GOLDEN=1 pytest tests/tasks/test_parse_tables.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import runs
from tasks.outputs import SIMULATED_FINGERPRINT
from tests.tasks._runs import downloaded_shard, new_run, summary_job

GOLDEN = Path(__file__).with_name("parse_tables.golden.json")

ANSWER = {
    "title": "Quarterly report",
    "summary": "Revenue grew by four percent while costs stayed flat.",
    "key_points": ["Revenue +4%", "Costs flat"],
    "topics": ["finance"],
    "language": "en",
    "sentiment": "positive",
    "document_type": "report",
    "action_items": ["Draft the hiring plan"],
}
GOOD = orjson.dumps(ANSWER).decode()
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 80,
    "total_tokens": 1280,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 16},
}


def _chat(
    content: Any = GOOD,
    *,
    finish: Any = "stop",
    refusal: Any = None,
    model: Any = "gpt-4.1-mini-2025-04-14",
    usage: Any = USAGE,
    fingerprint: Any = "fp_real",
    choices: Any = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1760000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                "logprobs": None,
            }
        ]
        if choices is None
        else choices,
        "usage": usage,
        "system_fingerprint": fingerprint,
    }
    return {k: v for k, v in body.items() if v is not _ABSENT}


def _responses(
    output: Any, *, status: str = "completed", reason: str | None = None, simulate: bool = False
) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-4.1-mini-2025-04-14",
        "status": status,
        "incomplete_details": {"reason": reason} if reason else None,
        "output": output,
        "usage": {
            "input_tokens": 500,
            "input_tokens_details": {"cached_tokens": 100},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 8},
            "total_tokens": 540,
        },
        "metadata": {"overnight_executor": "simulate"} if simulate else {},
    }


def _text(*texts: str, kind: str = "output_text") -> list[dict[str, Any]]:
    return [
        {"type": "reasoning", "summary": []},
        {"type": "message", "content": [{"type": kind, "text": t, "refusal": t} for t in texts]},
    ]


_ABSENT = object()
"""A body field left out altogether (not null)."""

CHAT_BODIES: list[tuple[int, Any]] = [
    (200, _chat()),
    (200, _chat(fingerprint=SIMULATED_FINGERPRINT)),
    (200, _chat(fingerprint=SIMULATED_FINGERPRINT + "_no_vision")),
    (200, _chat(orjson.dumps({**ANSWER, "title": 'Caf\u00e9 \u2603 "q"\n\\ \U0001f600'}).decode())),
    (200, _chat(json.dumps({**ANSWER, "title": "Caf\u00e9 \U0001f600"}, ensure_ascii=True))),
    (200, _chat(orjson.dumps(ANSWER, option=orjson.OPT_INDENT_2).decode())),
    (200, _chat(orjson.dumps({**ANSWER, "key_points": [], "action_items": []}).decode())),
    (200, _chat(GOOD[:40])),  # bad JSON
    (200, _chat("not json at all")),
    (200, _chat("")),
    (200, _chat(orjson.dumps({**ANSWER, "sentiment": "angry"}).decode())),
    (200, _chat("{}")),  # eight missing fields: "and 3 more"
    (200, _chat(orjson.dumps({**ANSWER, "extra": 1}).decode())),
    (200, _chat(orjson.dumps({**ANSWER, "topics": "finance"}).decode())),
    (200, _chat('["a list"]')),
    (200, _chat(None, refusal="I can't help with that.")),
    (200, _chat(GOOD[:30], finish="length")),
    (200, _chat(GOOD, finish="content_filter")),
    (200, _chat(None)),
    (200, _chat(12)),
    (200, _chat(choices=[])),
    (200, _chat(model="gpt-4o-2024-08-06")),
    (200, _chat(model="some-unknown-model")),
    (200, _chat(model=_ABSENT)),
    (200, _chat(model=None)),
    (200, _chat(usage=_ABSENT)),
    (200, _chat(usage={"prompt_tokens": 10, "completion_tokens": 2})),
    (
        200,
        _chat(
            usage={
                "prompt_tokens": None,
                "completion_tokens": 3,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            }
        ),
    ),
    (200, _chat(usage={"input_tokens": 9, "output_tokens": 4})),
    (200, _chat(finish=None)),
    (200, _responses(_text(GOOD))),
    (200, _responses(_text(GOOD[:20], GOOD[20:]), simulate=True)),
    (200, _responses(_text(GOOD[:20]))),
    (200, _responses(_text("no", kind="refusal"))),
    (200, _responses([], status="incomplete", reason="max_output_tokens")),
    (200, _responses([], status="incomplete", reason="content_filter")),
    (200, _responses([], status="incomplete", reason="something_else")),
    (200, _responses([], status="incomplete")),
    (200, _responses([])),
    (200, _responses([{"type": "message", "content": [{"type": "output_text"}]}])),
    (500, {"error": {"message": "overloaded", "type": "server_error", "code": None}}),
    (502, {"error": {"message": "upstream", "type": "server_error", "param": None, "code": None}}),
    (429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}),
    (408, {"error": {"message": "timeout"}}),
    (400, {"error": {"message": "bad request", "code": "invalid_request"}}),
    (404, {"error": {"message": "no such model", "type": "invalid_request_error"}}),
    (400, {"error": {"message": "x" * 5000, "code": "context_length_exceeded"}}),
    (400, {"error": {"code": "token_limit_exceeded"}}),
    (401, {}),
    (403, "forbidden"),
    (409, {"error": "conflict", "model": "gpt-4.1-mini-2025-04-14", "usage": USAGE}),
    (0, {}),
]
"""(status, body) of output-file lines; each becomes one request."""

ERROR_LINES: list[dict[str, Any] | None] = [
    {"code": "batch_expired", "message": "This request could not be executed before expiry."},
    {"code": "request_timeout", "message": "timed out"},
    {"code": "batch_cancelled", "message": "The batch was cancelled."},
    {"code": "token_limit_exceeded"},
    {"message": "no code"},
    None,
]
"""The `error` of error-file lines (no response)."""


def _output_line(custom_id: str, n: int, status: int, body: Any) -> bytes:
    response: dict[str, Any] = {"status_code": status, "request_id": f"req_{n}", "body": body}
    if status == 0:
        del response["status_code"]
    return orjson.dumps(
        {"id": f"batch_req_{n}", "custom_id": custom_id, "response": response, "error": None}
    )


def _error_line(custom_id: str, n: int, error: dict[str, Any] | None) -> bytes:
    return orjson.dumps(
        {"id": f"batch_req_{n}", "custom_id": custom_id, "response": None, "error": error}
    )


def make_run(
    root: Path, *, backend: str, max_attempts: int, retry_invalid_outputs: bool
) -> tuple[RunManifest, JobSpec]:
    """Four downloaded shards: every kind of line (output and error files, duplicates,
    strangers, missing lines); a batch that failed; one that expired; one cancelled."""
    job = summary_job(root, "golden", limits={"retry_invalid_outputs": retry_invalid_outputs})
    data = root / "data"
    data.mkdir(parents=True)
    manifest = new_run(job, "golden-run", backend=backend, max_attempts=max_attempts)
    missing = 3
    shards: list[dict[str, Any]] = [
        {"status": "completed", "size": len(CHAT_BODIES) + len(ERROR_LINES) + missing},
        {"status": "failed", "size": 4, "errors": [{"code": "server_error", "message": "boom"}]},
        {"status": "expired", "size": 3},
        {"status": "cancelled", "size": 2},
    ]
    for s, spec in enumerate(shards):
        size = spec["size"]
        ids = [f"{s:04d}{i:028x}-0" for i in range(size)]
        pl.DataFrame(
            {
                "custom_id": ids,
                "document_id": [f"docs/{s}-{i}.txt" for i in range(size)],
                "source_uri": [f"/data/docs/{s}-{i}.txt" for i in range(size)],
                "content_sha256": [f"sha-{s}-{i}" for i in range(size)],
                "chunk_index": [i % 2 for i in range(size)],
                "chunk_count": [2] * size,
                "input_tokens": [700] * size,
            }
        ).write_parquet(data / f"shard-{s}.index.parquet")
        output_uri = error_uri = None
        if s == 0:
            out = [_output_line(ids[n], n, st, body) for n, (st, body) in enumerate(CHAT_BODIES)]
            out.insert(5, _output_line(ids[0], 999, 200, _chat()))  # a duplicate: ignored
            out.insert(9, _output_line("stranger-0", 998, 200, _chat()))  # not ours: ignored
            first = len(CHAT_BODIES)
            err = [_error_line(ids[first + n], n, e) for n, e in enumerate(ERROR_LINES)]
            (data / "shard-0.output.jsonl").write_bytes(b"\n".join(out) + b"\n")
            (data / "shard-0.error.jsonl").write_bytes(b"\n".join(err) + b"\n")
            output_uri = str(data / "shard-0.output.jsonl")
            error_uri = str(data / "shard-0.error.jsonl")
        elif s == 2:  # expired: one answer came back before
            (data / "shard-2.output.jsonl").write_bytes(_output_line(ids[1], 1, 200, _chat()))
            output_uri = str(data / "shard-2.output.jsonl")
        manifest.shards.append(
            downloaded_shard(
                data,
                s,
                job,
                size,
                attempt=1 + s % 2,
                batch_status=spec["status"],
                batch_errors=spec.get("errors"),
                output_uri=output_uri,
                error_uri=error_uri,
            )
        )
    manifest.counts.requests = sum(s.requests for s in manifest.shards)
    runs.save_manifest(manifest)
    return manifest, job


def _table(frame: pl.DataFrame) -> dict[str, Any]:
    """A frame as JSON values; the job's fingerprint (a hash of the job spec) by name."""
    frame = frame.drop("written_at")
    if "job_fingerprint" in frame.columns:
        frame = frame.with_columns(job_fingerprint=pl.lit("<job_fingerprint>"))
    return {
        "schema": {name: str(dtype) for name, dtype in frame.schema.items()},
        "rows": [list(row) for row in frame.rows()],
    }


def _dump(golden: dict[str, Any]) -> bytes:
    """The golden file: one line per row, so that a diff shows which rows changed."""
    out = ["{"]
    for n, (case, found) in enumerate(sorted(golden.items())):
        out.append(f"  {orjson.dumps(case).decode()}: {{")
        for m, (name, value) in enumerate(sorted(found.items())):
            end = "," if m < len(found) - 1 else ""
            if isinstance(value, dict) and "rows" in value:
                out.append(f"    {orjson.dumps(name).decode()}: {{")
                out.append(f'      "schema": {orjson.dumps(value["schema"]).decode()},')
                rows = [f"        {orjson.dumps(row).decode()}" for row in value["rows"]]
                out.append(
                    '      "rows": [' + ("\n" + ",\n".join(rows) + "\n      " if rows else "") + "]"
                )
                out.append(f"    }}{end}")
            else:
                out.append(
                    f"    {orjson.dumps(name).decode()}: {orjson.dumps(value).decode()}{end}"
                )
        out.append("  }" + ("," if n < len(golden) - 1 else ""))
    out.append("}")
    return "\n".join(out).encode() + b"\n"


def parsed(manifest: RunManifest) -> dict[str, Any]:
    """Every part, retry list and counter parsing wrote (without `written_at`), as JSON values."""
    found: dict[str, Any] = {}
    for shard in manifest.shards:
        found[f"counters/{shard.key}"] = [
            shard.state,
            shard.parts,
            shard.results,
            shard.errors,
            shard.retryable,
        ]
        for kind in ("results", "errors", "superseded"):
            for n, uri in enumerate(runs.part_uris(manifest, kind, shard)):
                found[f"{kind}/{shard.key}/{n}"] = _table(pl.read_parquet(uri))
        retry = Path(manifest.run_dir, "retry", f"{shard.key.replace('/', '-')}.json")
        found[f"retry/{shard.key}"] = orjson.loads(retry.read_bytes())
    return found


CASES = {
    "local-1-attempt": ("local-test", 1, False),
    "local-3-attempts-retry-invalid": ("local-test", 3, True),
    "embedded-1-attempt": ("embedded", 1, False),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("part_rows", [7, 10_000])
def test_parsed_parts_match_the_golden_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, part_rows: int
) -> None:
    backend, max_attempts, retry_invalid = CASES[case]
    manifest, job = make_run(
        tmp_path, backend=backend, max_attempts=max_attempts, retry_invalid_outputs=retry_invalid
    )
    monkeypatch.setattr("tasks.runs.parse.PART_ROWS", part_rows)
    assert runs.parse_outputs(manifest, job, workers=1) == len(manifest.shards)
    found = parsed(manifest)
    if max_attempts == 1:  # the run is finished: its tables hold the parts' rows
        assert runs.finalize_run(manifest, job)
        for name in ("results", "errors"):
            parts = [v for k, v in found.items() if k.startswith(f"{name}/")]
            table = _table(pl.read_parquet(manifest.tables[name]))
            assert [table["schema"]] == [p["schema"] for p in parts[:1]]
            assert sorted(map(repr, table["rows"])) == sorted(
                repr(row) for p in parts for row in p["rows"]
            )
    # A JSON round trip, so that what is compared is what the file can hold.
    found = orjson.loads(orjson.dumps(found))

    key = f"{case}/part-rows-{part_rows}"
    golden = orjson.loads(GOLDEN.read_bytes()) if GOLDEN.exists() else {}
    if os.environ.get("OVERNIGHT_REGENERATE_GOLDEN"):
        golden[key] = found
        GOLDEN.write_bytes(_dump(golden))
    expected = golden[key]
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, dict) and "schema" in value:
            assert found[name]["schema"] == value["schema"], name
            assert len(found[name]["rows"]) == len(value["rows"]), name
            for mine, theirs in zip(found[name]["rows"], value["rows"], strict=True):
                assert dict(zip(value["schema"], mine, strict=True)) == dict(
                    zip(value["schema"], theirs, strict=True)
                ), name
        else:
            assert found[name] == value, name


def test_the_golden_run_meets_every_kind_of_line() -> None:
    """The pinned runs are worth pinning: they hold every code and kind of row."""
    golden = orjson.loads(GOLDEN.read_bytes())
    codes: set[str] = set()
    kinds: set[str] = set()
    for name, value in golden["local-3-attempts-retry-invalid/part-rows-7"].items():
        if isinstance(value, dict) and "rows" in value:
            kinds.add(name.split("/")[0])
    for name, value in golden["local-1-attempt/part-rows-7"].items():
        if name.startswith("errors/"):
            at = list(value["schema"]).index("code")
            codes.update(str(row[at]) for row in value["rows"])
    assert kinds == {"results", "errors", "superseded"}
    assert {
        "invalid_json",
        "schema_mismatch",
        "refusal",
        "truncated",
        "content_filter",
        "no_content",
        "no_choices",
        "incomplete",
        "server_error",
        "rate_limit_exceeded",
        "batch_expired",
        "batch_cancelled",
        "request_timeout",
        "missing_output",
        "unknown_error",
        "http_401",
    } <= codes


def test_a_broken_output_line_costs_its_request_a_retry_not_the_collect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer cut inside a character (half a surrogate pair, which orjson refuses) is read
    with U+FFFD in its place; a line that is not a JSON object is skipped with a warning, and
    its request ends as missing_output, to be sent again, while the other lines are kept."""
    job = summary_job(tmp_path, "broken")
    data = tmp_path / "data"
    data.mkdir()
    manifest = new_run(job, "broken-run", backend="local-test", max_attempts=2)
    ids = [f"{i:032x}-0" for i in range(4)]
    pl.DataFrame(
        {
            "custom_id": ids,
            "document_id": [f"docs/{i}.txt" for i in range(4)],
            "source_uri": [f"/data/docs/{i}.txt" for i in range(4)],
            "content_sha256": [f"sha-{i}" for i in range(4)],
            "chunk_index": [0] * 4,
            "chunk_count": [1] * 4,
            "input_tokens": [700] * 4,
        }
    ).write_parquet(data / "shard-0.index.parquet")
    cut = _output_line(ids[1], 1, 200, _chat(orjson.dumps({**ANSWER, "title": "Smile X"}).decode()))
    cut = cut.replace(b"Smile X", b"Smile \\ud83d")  # the line's escape of half an emoji
    lines = [
        _output_line(ids[0], 0, 200, _chat()),
        cut,
        _output_line(ids[2], 2, 200, _chat())[:90],  # the file was cut in this line
        b"[1, 2]",
        _output_line(ids[3], 3, 200, _chat()),
    ]
    output = data / "shard-0.output.jsonl"
    output.write_bytes(b"\n".join(lines) + b"\n")
    manifest.shards.append(
        downloaded_shard(data, 0, job, 4, batch_status="completed", output_uri=str(output))
    )
    manifest.counts.requests = 4
    runs.save_manifest(manifest)

    assert runs.parse_outputs(manifest, job, workers=1) == 1
    shard = manifest.shards[0]
    assert (shard.results, shard.errors, shard.retryable) == (3, 0, 1)
    results = pl.concat(pl.read_parquet(uri) for uri in runs.part_uris(manifest, "results", shard))
    titles = dict(zip(results["custom_id"], results["title"], strict=True))
    assert titles[ids[1]] == "Smile \ufffd"
    assert set(titles) == {ids[0], ids[1], ids[3]}
    retry = Path(manifest.run_dir, "retry", f"{shard.key.replace('/', '-')}.json")
    assert orjson.loads(retry.read_bytes()) == [ids[2]]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("line 3 of" in w and "not a JSON object" in w for w in warnings)
    assert any("line 4 of" in w for w in warnings)
