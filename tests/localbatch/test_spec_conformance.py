"""Every response body the tests see is checked against OpenAI's OpenAPI spec (see conftest);
these tests show the check is real and covers every route."""

from __future__ import annotations

import httpx2
import pytest
from openai import OpenAI

from tests.localbatch._helpers import chat_line, document, jsonl, run_batch, upload
from tests.localbatch._spec import SpecChecker, spec_errors, spec_path


def test_the_spec_is_available() -> None:
    assert spec_path() is not None, (
        "OpenAI's OpenAPI spec was not found: set OPENAI_OPENAPI_SPEC to openai-openapi.yaml "
        "(without it, response bodies are not checked)"
    )


@pytest.mark.skipif(spec_path() is None, reason="spec not found")
def test_the_checker_rejects_what_the_spec_forbids() -> None:
    good = {
        "id": "batch_1",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "validating",
        "created_at": 1,
    }
    assert spec_errors("Batch", good) == []
    assert spec_errors("Batch", {**good, "status": "running"})
    assert spec_errors("Batch", {**good, "output_file_id": 7})
    # Unset optional fields come as null, the way OpenAI's API sends them.
    assert spec_errors("Batch", {**good, "output_file_id": None, "errors": None}) == []
    assert spec_errors("Batch", {k: v for k, v in good.items() if k != "created_at"})
    assert spec_errors("ErrorResponse", {"error": {"message": "x", "type": "y"}})
    assert spec_errors("ListFilesResponse", {"object": "list", "data": [], "has_more": False})


@pytest.mark.skipif(spec_path() is None, reason="spec not found")
def test_every_route_is_checked(
    client: OpenAI, raw: httpx2.Client, spec_checker: SpecChecker
) -> None:
    before = dict(spec_checker.checked)
    file = upload(client, jsonl([chat_line("a", document(1))]))
    client.files.retrieve(file.id)
    client.files.list()
    batch = run_batch(client, [chat_line("a", document(1))])
    client.batches.list()
    client.files.content(batch.output_file_id or "")
    raw.post(f"/v1/batches/{batch.id}/cancel")
    client.files.delete(file.id)
    after = spec_checker.checked
    for schema in (
        "OpenAIFile",
        "ListFilesResponse",
        "DeleteFileResponse",
        "Batch",
        "ListBatchesResponse",
        "ErrorResponse",
    ):
        assert after.get(schema, 0) > before.get(schema, 0), schema
