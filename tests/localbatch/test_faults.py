"""Fault injection, end to end through the official client: every kind, seeded and repeatable."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import openai
import pytest
from openai import OpenAI

from localbatch import FaultConfig, LocalBatchServer
from tests.localbatch._helpers import (
    SUMMARY_SCHEMA,
    chat_line,
    document,
    message_content,
    responses_line,
    results,
    run_batch,
)
from tests.localbatch.conftest import MakeClient, MakeServer

N = 12


def _lines(schema: dict[str, Any] | None = SUMMARY_SCHEMA) -> list[dict[str, Any]]:
    return [chat_line(f"f{i}", document(i), schema=schema) for i in range(N)]


def _run_with(server: LocalBatchServer, client: OpenAI, **faults: Any) -> tuple[Any, Any, Any]:
    server.set_faults(FaultConfig(**faults))
    batch = run_batch(client, _lines())
    out, err = results(client, batch)
    return batch, out, err


def test_line_http_500(server: LocalBatchServer, client: OpenAI) -> None:
    batch, out, err = _run_with(server, client, line_500_rate=1.0)
    # OpenAI's "completed with 0 succeeded": no output file, only an error file.
    assert batch.status == "completed"
    assert batch.output_file_id is None and out == {}
    assert batch.request_counts.completed == 0 and batch.request_counts.failed == N
    for line in err.values():
        assert line["error"] is None
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
    assert batch.usage.total_tokens == 0


def test_line_http_429(server: LocalBatchServer, client: OpenAI) -> None:
    _, out, err = _run_with(server, client, line_429_rate=1.0)
    assert out == {}
    codes = {line["response"]["body"]["error"]["code"] for line in err.values()}
    assert codes == {"rate_limit_exceeded"}
    assert {line["response"]["status_code"] for line in err.values()} == {429}


def test_line_request_timeout(server: LocalBatchServer, client: OpenAI) -> None:
    _, out, err = _run_with(server, client, line_timeout_rate=1.0)
    assert out == {}
    for line in err.values():
        assert line["response"] is None
        assert line["error"]["code"] == "request_timeout"
        assert line["error"]["message"]


def test_output_that_is_not_json(server: LocalBatchServer, client: OpenAI) -> None:
    batch, out, err = _run_with(server, client, line_invalid_json_rate=1.0)
    assert err == {} and len(out) == N
    assert batch.request_counts.completed == N
    for line in out.values():
        with pytest.raises(json.JSONDecodeError):
            json.loads(message_content(line))


def test_output_that_violates_the_schema(server: LocalBatchServer, client: OpenAI) -> None:
    _, out, _ = _run_with(server, client, line_schema_violation_rate=1.0)
    for line in out.values():
        value = json.loads(message_content(line))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, SUMMARY_SCHEMA)


def test_refusal_chat_and_responses(server: LocalBatchServer, client: OpenAI) -> None:
    _, out, _ = _run_with(server, client, line_refusal_rate=1.0)
    for line in out.values():
        message = line["response"]["body"]["choices"][0]["message"]
        assert message["content"] is None
        assert message["refusal"]
    batch = run_batch(
        client, [responses_line("r", document(1), schema=SUMMARY_SCHEMA)], endpoint="/v1/responses"
    )
    body = results(client, batch)[0]["r"]["response"]["body"]
    assert body["output"][-1]["content"][0]["type"] == "refusal"


def test_finish_reason_length(server: LocalBatchServer, client: OpenAI) -> None:
    _, out, _ = _run_with(server, client, line_length_rate=1.0)
    for line in out.values():
        choice = line["response"]["body"]["choices"][0]
        assert choice["finish_reason"] == "length"
        with pytest.raises(json.JSONDecodeError):
            json.loads(choice["message"]["content"])
    batch = run_batch(
        client, [responses_line("r", document(1), schema=SUMMARY_SCHEMA)], endpoint="/v1/responses"
    )
    body = results(client, batch)[0]["r"]["response"]["body"]
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_batch_all_lines_fail(server: LocalBatchServer, client: OpenAI) -> None:
    batch, out, err = _run_with(server, client, batch_all_lines_fail=True)
    assert batch.status == "completed"
    assert batch.output_file_id is None and batch.error_file_id is not None
    assert len(err) == N and out == {}


def test_batch_expires_after_a_fraction(server: LocalBatchServer, client: OpenAI) -> None:
    batch, out, err = _run_with(server, client, batch_expire_after_fraction=0.5)
    assert batch.status == "expired"
    assert batch.expired_at is not None and batch.completed_at is None
    assert len(out) == N // 2 and len(err) == N - N // 2
    assert {line["error"]["code"] for line in err.values()} == {"batch_expired"}
    assert all(line["response"] is None for line in err.values())
    assert batch.request_counts.completed == N // 2


def _fates(server: LocalBatchServer, client: OpenAI, lines: list[dict[str, Any]]) -> dict[str, str]:
    batch = run_batch(client, lines)
    out, err = results(client, batch)
    fates = {cid: "ok" for cid in out}
    for cid, line in err.items():
        fates[cid] = (
            line["error"]["code"]
            if line["response"] is None
            else str(line["response"]["status_code"])
        )
    return fates


MIXED = {"line_500_rate": 0.2, "line_429_rate": 0.2, "line_timeout_rate": 0.2}


def test_faults_are_deterministic_per_seed(
    make_server: MakeServer, make_client: MakeClient, tmp_path: Path
) -> None:
    lines = [chat_line(f"m{i}", document(i)) for i in range(40)]
    fates = []
    for n, seed in enumerate((7, 7, 8)):
        server = make_server(data_dir=tmp_path / f"s{n}", seed=seed, faults=FaultConfig(**MIXED))
        fates.append(_fates(server, make_client(server), lines))
    assert fates[0] == fates[1]
    assert fates[0] != fates[2]
    assert set(fates[0].values()) == {"ok", "500", "429", "request_timeout"}


def test_a_retried_line_gets_a_fresh_draw(server: LocalBatchServer, client: OpenAI) -> None:
    server.set_faults(FaultConfig(line_500_rate=0.5))
    lines = [chat_line(f"m{i}", document(i)) for i in range(40)]
    first = _fates(server, client, lines)
    failed = [line for line in lines if first[line["custom_id"]] != "ok"]
    assert failed
    second = _fates(server, client, failed)
    assert "ok" in second.values()  # the same custom_ids do not fail forever


def test_api_429_with_retry_after(server: LocalBatchServer, make_client: MakeClient) -> None:
    client = make_client(server)
    server.set_faults(FaultConfig(api_429_rate=1.0, api_retry_after_seconds=1.5))
    with pytest.raises(openai.RateLimitError) as caught:
        client.batches.list()
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1500"
    # Admin routes are never faulted.
    server.set_faults(FaultConfig(api_429_rate=1.0, api_500_rate=0.0))
    with httpx2.Client(base_url=server.url, headers={"authorization": "Bearer test-key"}) as http:
        assert http.get("/_local/faults").status_code == 200


def test_api_500_then_the_client_retries_through(
    server: LocalBatchServer, make_client: MakeClient
) -> None:
    server.set_faults(FaultConfig(api_500_rate=1.0, api_retry_after_seconds=0.01))
    with pytest.raises(openai.InternalServerError):
        make_client(server).files.list()
    server.set_faults(FaultConfig(api_429_rate=0.3, api_500_rate=0.3, api_retry_after_seconds=0.01))
    patient = make_client(server, max_retries=8)
    batch = run_batch(patient, [chat_line("a", document(1))])
    assert batch.status == "completed"


def test_api_delay(server: LocalBatchServer, client: OpenAI) -> None:
    server.set_faults(FaultConfig(api_delay_seconds=0.3))
    started = time.monotonic()
    client.batches.list()
    assert time.monotonic() - started >= 0.3


def test_faults_admin_route(server: LocalBatchServer, raw: httpx2.Client) -> None:
    assert raw.get("/_local/faults").json() == FaultConfig().model_dump(mode="json")
    put = raw.put("/_local/faults", json={"line_500_rate": 0.25, "line_delay_seconds": 0.01})
    assert put.status_code == 200
    assert server.faults == FaultConfig(line_500_rate=0.25, line_delay_seconds=0.01)
    patch = raw.patch("/_local/faults", json={"line_429_rate": 0.5})
    assert patch.json()["line_500_rate"] == 0.25 and patch.json()["line_429_rate"] == 0.5
    for bad in ({"line_500_rate": 2}, {"line_500_rate": 0.6, "line_429_rate": 0.6}, {"nope": 1}):
        response = raw.put("/_local/faults", json=bad)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert server.faults.line_429_rate == 0.5  # unchanged by the refused updates


def test_set_faults_method_merges_changes(server: LocalBatchServer) -> None:
    server.set_faults(line_500_rate=0.1)
    server.set_faults(line_429_rate=0.2)
    assert (server.faults.line_500_rate, server.faults.line_429_rate) == (0.1, 0.2)
    server.set_faults(FaultConfig())
    assert server.faults == FaultConfig()


def test_fault_config_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "faults.toml"
    toml.write_text("[faults]\nline_500_rate = 0.1\nbatch_enqueued_token_limit = 9000\n")
    flat = tmp_path / "faults.json"
    flat.write_text(json.dumps({"api_429_rate": 0.5}))
    assert FaultConfig.from_file(toml) == FaultConfig(
        line_500_rate=0.1, batch_enqueued_token_limit=9000
    )
    assert FaultConfig.from_file(flat) == FaultConfig(api_429_rate=0.5)
    with pytest.raises(ValueError):
        FaultConfig(line_500_rate=0.7, line_timeout_rate=0.7)
