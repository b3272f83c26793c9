"""The validating stage: each way an input file fails, with OpenAI's error codes and lines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import OpenAI
from openai.types import Batch

from localbatch import FaultConfig
from tests.localbatch._helpers import chat_line, document, jsonl, upload, wait_for
from tests.localbatch.conftest import MakeClient, MakeServer


def _fail(client: OpenAI, data: bytes, endpoint: str = "/v1/chat/completions") -> Batch:
    file = upload(client, data)
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )
    done = wait_for(client, batch.id)
    assert done.status == "failed", done
    assert done.failed_at is not None
    assert done.in_progress_at is None
    assert done.output_file_id is None and done.error_file_id is None
    assert done.errors is not None and done.errors.object == "list"
    assert done.errors.data
    return done


def _codes(batch: Batch) -> list[tuple[str | None, int | None, str | None]]:
    assert batch.errors is not None and batch.errors.data is not None
    return [(e.code, e.line, e.param) for e in batch.errors.data]


def _good(i: int) -> dict[str, Any]:
    return chat_line(f"id-{i}", document(i))


def test_invalid_json_line(client: OpenAI) -> None:
    data = jsonl([_good(1), "{this is not json", _good(3)])
    assert _codes(_fail(client, data)) == [("invalid_json_line", 2, None)]


def test_a_line_that_is_not_an_object(client: OpenAI) -> None:
    data = jsonl([_good(1), "[1, 2, 3]"])
    assert _codes(_fail(client, data)) == [("invalid_json_line", 2, None)]


def test_missing_custom_id(client: OpenAI) -> None:
    line = _good(2)
    del line["custom_id"]
    assert _codes(_fail(client, jsonl([_good(1), line]))) == [
        ("missing_required_parameter", 2, "custom_id")
    ]


def test_duplicate_custom_id(client: OpenAI) -> None:
    data = jsonl([_good(1), _good(2), chat_line("id-1", "again")])
    assert _codes(_fail(client, data)) == [("duplicate_custom_id", 3, "custom_id")]


def test_method_not_post(client: OpenAI) -> None:
    line = _good(1)
    line["method"] = "GET"
    assert _codes(_fail(client, jsonl([line]))) == [("invalid_method", 1, "method")]


def test_url_mismatch(client: OpenAI) -> None:
    line = _good(2)
    line["url"] = "/v1/responses"
    assert _codes(_fail(client, jsonl([_good(1), line]))) == [("url_mismatch", 2, "url")]


def test_missing_model(client: OpenAI) -> None:
    line = _good(1)
    del line["body"]["model"]
    assert _codes(_fail(client, jsonl([line]))) == [("missing_required_parameter", 1, "body.model")]


def test_more_than_one_model(client: OpenAI) -> None:
    data = jsonl([_good(1), chat_line("other", "text", model="gpt-4.1-nano")])
    assert _codes(_fail(client, data)) == [("model_mismatch", 2, "body.model")]


def test_empty_file(client: OpenAI) -> None:
    assert _codes(_fail(client, b"")) == [("empty_file", None, None)]
    assert _codes(_fail(client, b"\n  \n")) == [("empty_file", None, None)]


def test_several_problems_are_all_reported_with_their_lines(client: OpenAI) -> None:
    wrong_url = _good(3)
    wrong_url["url"] = "/v1/embeddings"
    data = jsonl([_good(1), "nope", wrong_url, _good(1)])
    assert _codes(_fail(client, data)) == [
        ("invalid_json_line", 2, None),
        ("url_mismatch", 3, "url"),
        ("duplicate_custom_id", 4, "custom_id"),
    ]


def test_blank_lines_are_skipped_but_counted_for_line_numbers(client: OpenAI) -> None:
    data = jsonl([_good(1)]) + b"\n\n" + jsonl(["{bad"])
    assert _codes(_fail(client, data)) == [("invalid_json_line", 4, None)]


def test_too_many_tasks(make_server: MakeServer, make_client: MakeClient) -> None:
    client = make_client(make_server(max_lines_per_batch=3))
    ok = _fail(client, jsonl([_good(i) for i in range(4)]))
    assert _codes(ok) == [("too_many_tasks", None, None)]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl([_good(i) for i in range(3)])).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait_for(client, batch.id).status == "completed"


def test_too_many_embedding_inputs(make_server: MakeServer, make_client: MakeClient) -> None:
    # OpenAI's spec (CreateBatchRequest.endpoint): an embeddings batch holds at most 50,000
    # embedding inputs across all its requests, whatever its number of lines.
    client = make_client(make_server(max_embedding_inputs_per_batch=5))

    def line(i: int, value: Any) -> dict[str, Any]:
        body = {"model": "text-embedding-3-small", "input": value}
        return {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings", "body": body}

    over = [line(0, ["a", "b", "c"]), line(1, "d"), line(2, ["e", "f"])]
    assert _codes(_fail(client, jsonl(over), "/v1/embeddings")) == [("too_many_tasks", None, None)]
    # A token array is one input; five inputs in all is at the limit.
    fits = [line(0, ["a", "b", "c"]), line(1, [1, 2, 3]), line(2, "d")]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(fits)).id,
        endpoint="/v1/embeddings",
        completion_window="24h",
    )
    assert wait_for(client, batch.id).status == "completed"


def test_input_file_too_large(make_server: MakeServer, make_client: MakeClient) -> None:
    client = make_client(make_server(max_batch_input_bytes=500))
    assert _codes(_fail(client, jsonl([_good(i) for i in range(4)]))) == [
        ("file_too_large", None, None)
    ]


def test_token_limit_exceeded(make_server: MakeServer, make_client: MakeClient) -> None:
    server = make_server(faults=FaultConfig(batch_enqueued_token_limit=500))
    client = make_client(server)
    small = upload(client, jsonl([chat_line("s", "A short note.")]))
    batch = client.batches.create(
        input_file_id=small.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert wait_for(client, batch.id).status == "completed"
    big = _fail(client, jsonl([_good(i) for i in range(20)]))
    assert big.errors is not None and big.errors.data is not None
    assert _codes(big) == [("token_limit_exceeded", None, None)]
    assert "500" in (big.errors.data[0].message or "")


def test_forced_validation_failure(server: Any, client: OpenAI) -> None:
    server.set_faults(FaultConfig(batch_fail_validation=True))
    assert _codes(_fail(client, jsonl([_good(1)]))) == [("invalid_request", None, None)]
    server.set_faults(FaultConfig())
    batch = client.batches.create(
        input_file_id=upload(client, jsonl([_good(1)])).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait_for(client, batch.id).status == "completed"


def test_deleted_input_file_fails_the_batch(
    make_server: MakeServer, make_client: MakeClient
) -> None:
    client = make_client(make_server(min_validating_seconds=0.0))
    file = upload(client, jsonl([_good(1)]))
    client.files.delete(file.id)
    with pytest.raises(Exception, match="No such File"):
        client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


@pytest.mark.parametrize("endpoint", ["/v1/responses", "/v1/embeddings"])
def test_validation_applies_to_every_endpoint(client: OpenAI, endpoint: str) -> None:
    line = {"custom_id": "x", "method": "POST", "url": endpoint, "body": {"input": "hi"}}
    assert _codes(_fail(client, jsonl([line, json.dumps(line)]), endpoint)) == [
        ("missing_required_parameter", 1, "body.model"),
        ("duplicate_custom_id", 2, "custom_id"),
        ("missing_required_parameter", 2, "body.model"),
    ]
