"""Files API: upload, list with paging, retrieve, content, delete, and every bad input."""

from __future__ import annotations

import httpx2
import openai
import pytest
from openai import OpenAI

from tests.localbatch._helpers import chat_line, jsonl, upload
from tests.localbatch.conftest import MakeClient, MakeServer


def test_upload_retrieve_download_delete(client: OpenAI) -> None:
    data = jsonl([chat_line("a", "Hello there. General Kenobi.")])
    created = upload(client, data, "requests.jsonl")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == len(data)
    assert created.filename == "requests.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert created.expires_at == created.created_at + 30 * 86400

    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == data

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_upload_with_expires_after(client: OpenAI) -> None:
    created = client.files.create(
        file=("x.jsonl", jsonl([chat_line("a", "x")])),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert created.expires_at == created.created_at + 7200


def test_list_files_pages_like_the_client_expects(client: OpenAI) -> None:
    ids = [upload(client, jsonl([chat_line("a", f"doc {i}")])).id for i in range(5)]
    newest_first = list(reversed(ids))

    page = client.files.list(limit=2)
    assert [f.id for f in page.data] == newest_first[:2]
    assert page.has_more is True
    assert [f.id for f in client.files.list(limit=2)] == newest_first  # auto-paging

    ascending = client.files.list(limit=3, order="asc")
    assert [f.id for f in ascending.data] == ids[:3]
    assert [f.id for f in client.files.list(limit=3, order="asc")] == ids

    assert [f.id for f in client.files.list(purpose="batch_output")] == []
    assert [f.id for f in client.files.list(purpose="batch")] == newest_first

    client.files.delete(ids[2])
    after_deleted = client.files.list(after=ids[2], limit=10)
    assert [f.id for f in after_deleted.data] == [ids[1], ids[0]]


def test_empty_file_list_still_matches_the_spec(raw: httpx2.Client) -> None:
    body = raw.get("/v1/files").json()
    assert body == {"object": "list", "data": [], "first_id": "", "last_id": "", "has_more": False}


def test_wrong_purpose_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune")
    assert caught.value.status_code == 400
    assert caught.value.param == "purpose"  # type: ignore[attr-defined]


def test_missing_purpose_and_missing_file_are_400(raw: httpx2.Client) -> None:
    no_purpose = raw.post("/v1/files", files={"file": ("a.jsonl", b"{}\n")})
    assert no_purpose.status_code == 400
    assert no_purpose.json()["error"]["param"] == "purpose"
    no_file = raw.post("/v1/files", data={"purpose": "batch"}, files={"other": ("a", b"x")})
    assert no_file.status_code == 400
    assert no_file.json()["error"]["param"] == "file"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=XYZ", b"--XYZ\r\nContent-Disposition: form-data; name"),
        ("multipart/form-data; boundary=XYZ", b"this is not multipart at all"),
        ("multipart/form-data", b"--XYZ\r\n"),
        ("application/json", b'{"purpose": "batch"}'),
        (
            "multipart/form-data; boundary=XYZ",
            b'--XYZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--XYZ\r\n'
            b'Content-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{}\r\n',
        ),
    ],
    ids=["truncated-headers", "garbage", "no-boundary", "not-multipart", "no-closing-boundary"],
)
def test_broken_multipart_is_400(raw: httpx2.Client, content_type: str, body: bytes) -> None:
    response = raw.post("/v1/files", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert raw.get("/v1/files").json()["data"] == []  # nothing half-stored


def test_oversized_upload_is_413(make_server: MakeServer, make_client: MakeClient) -> None:
    server = make_server(max_upload_bytes=1000)
    client = make_client(server)
    small = upload(client, b"x" * 1000)
    assert small.bytes == 1000
    with pytest.raises(openai.APIStatusError) as caught:
        upload(client, b"x" * 5000)
    assert caught.value.status_code == 413
    assert [f.id for f in client.files.list()] == [small.id]
    assert list((server.config.data_dir / "tmp").iterdir()) == []


def test_unknown_file_ids_are_404(client: OpenAI) -> None:
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            call("file-doesnotexist")
        assert caught.value.status_code == 404


def test_bad_list_parameters_are_400(raw: httpx2.Client) -> None:
    for query in ("limit=0", "limit=abc", "limit=10001", "order=sideways", "after=file-nope"):
        response = raw.get(f"/v1/files?{query}")
        assert response.status_code == 400, query


def test_a_file_not_named_jsonl_is_refused_for_batch(client: OpenAI) -> None:
    # OpenAI refuses `notes.txt` with purpose=batch at upload (as users' reports quote it).
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("notes.txt", b'{"custom_id": "a"}\n'), purpose="batch")
    assert refused.value.status_code == 400
    assert refused.value.body == {
        "message": "Invalid file format for Batch API. Must be .jsonl",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    kept = client.files.create(file=("INPUT.JSONL", b'{"custom_id": "a"}\n'), purpose="batch")
    assert kept.filename == "INPUT.JSONL"
