"""HTTP-level errors: OpenAI's error shape and status codes, and no crash on bad input."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from localbatch import LocalBatchServer
from tests.localbatch._helpers import chat_line, jsonl, upload
from tests.localbatch._spec import SpecChecker
from tests.localbatch.conftest import MakeClient, validating_http_client


def test_missing_or_wrong_key_is_401(server: LocalBatchServer, make_client: MakeClient) -> None:
    wrong = make_client(server, api_key="not-the-key")
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.batches.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"  # type: ignore[attr-defined]
    assert "not-the-key" not in str(caught.value)
    assert "test-key" not in str(caught.value)


def test_no_authorization_header_is_401(
    server: LocalBatchServer, spec_checker: SpecChecker
) -> None:
    with validating_http_client(spec_checker, base_url=server.url) as http:
        for method, path in (("GET", "/v1/files"), ("POST", "/v1/batches"), ("GET", "/v1/nope")):
            response = http.request(method, path)
            assert response.status_code == 401
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        faults = http.get("/_local/faults")
        assert faults.status_code == 401
        assert http.get("/_local/health").status_code == 200


def test_unknown_routes_and_methods_are_404(raw: httpx2.Client) -> None:
    for method, path in (
        ("GET", "/v1/nothing"),
        ("PUT", "/v1/files"),
        ("GET", "/v1/batches/batch_x/cancel"),
        ("GET", "/elsewhere"),
    ):
        response = raw.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["message"] == f"Invalid URL ({method} {path})"


def test_unknown_batch_ids_are_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_doesnotexist")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"", b'"text"', b"\xff\xfe"],
    ids=["broken", "array", "empty", "string", "binary"],
)
def test_malformed_json_body_is_400(raw: httpx2.Client, body: bytes) -> None:
    response = raw.post("/v1/batches", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def _create(client: OpenAI, **overrides: Any) -> None:
    file = upload(client, jsonl([chat_line("a", "text")]))
    params: dict[str, Any] = {
        "input_file_id": file.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **overrides,
    }
    client.batches.create(**params)


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"completion_window": "48h"}, "completion_window"),
        ({"endpoint": "/v1/images/generations"}, "endpoint"),
        ({"endpoint": "/v2/whatever"}, "endpoint"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"metadata": {"k": 3}}, "metadata"),
        ({"metadata": ["not", "a", "map"]}, "metadata"),
        (
            {"output_expires_after": {"anchor": "created_at", "seconds": 10}},
            "output_expires_after.seconds",
        ),
        (
            {"output_expires_after": {"anchor": "now", "seconds": 3600}},
            "output_expires_after.anchor",
        ),
        ({"input_file_id": 42}, "input_file_id"),
    ],
)
def test_bad_batch_parameters_are_400(
    client: OpenAI, overrides: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, **overrides)
    assert caught.value.param == param  # type: ignore[attr-defined]


def test_metadata_at_the_limits_is_accepted(client: OpenAI) -> None:
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    file = upload(client, jsonl([chat_line("a", "text")]))
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata,
    )
    assert batch.metadata == metadata


def test_missing_batch_parameters_are_400(raw: httpx2.Client) -> None:
    for missing in ("input_file_id", "endpoint", "completion_window"):
        body = {
            "input_file_id": "file-x",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        del body[missing]
        response = raw.post("/v1/batches", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == missing


def test_an_unknown_batch_create_field_is_400_and_no_batch_is_made(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, extra_body={"foo": 1})
    assert caught.value.body == {
        "message": "Unrecognized request argument supplied: foo",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert client.batches.list().data == []
    # Every field of the spec's CreateBatchRequest is still taken.
    _create(
        client,
        metadata={"run": "1"},
        output_expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert len(client.batches.list().data) == 1


def test_unknown_input_file_is_404_and_output_file_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        _create(client, input_file_id="file-missing")
    file = upload(client, jsonl([chat_line("a", "text")]))
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    from tests.localbatch._helpers import wait_for

    done = wait_for(client, batch.id)
    assert done.output_file_id is not None
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, input_file_id=done.output_file_id)
    assert caught.value.param == "input_file_id"  # type: ignore[attr-defined]


def test_unexpected_exception_is_a_500_and_the_server_lives_on(
    server: LocalBatchServer, client: OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = server._service().store

    def boom(**_: Any) -> Any:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(store, "list_batches", boom)
    with pytest.raises(openai.InternalServerError) as caught:
        client.batches.list()
    assert caught.value.status_code == 500
    assert "simulated bug" not in str(caught.value)
    monkeypatch.undo()
    assert client.batches.list().data == []


def test_models_are_listed_for_clients_that_probe_them(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve("ft:gpt-4o-mini:acme::x1").id == "ft:gpt-4o-mini:acme::x1"


def test_every_answer_names_its_request(client: OpenAI) -> None:
    # As OpenAI's answers do (`x-request-id`), which the SDK exposes as `_request_id` and users
    # quote to support: errors included.
    listed = client.batches.with_raw_response.list()
    first = listed.headers.get("x-request-id", "")
    assert first.startswith("req_") and len(first) == 36
    assert client.batches.with_raw_response.list().headers["x-request-id"] != first
    with pytest.raises(openai.NotFoundError) as missing:
        client.batches.retrieve("batch_nope")
    assert missing.value.request_id is not None and missing.value.request_id.startswith("req_")
