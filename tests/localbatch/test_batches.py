"""Batches API: the lifecycle, paging, cancel, expiry and persistence across a restart."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from localbatch import FaultConfig
from tests.localbatch._helpers import (
    SUMMARY_SCHEMA,
    chat_line,
    document,
    jsonl,
    read_lines,
    results,
    run_batch,
    submit,
    upload,
    wait_for,
)
from tests.localbatch.conftest import MakeClient, MakeServer


def test_small_batch_completes_fast_with_every_field(client: OpenAI) -> None:
    lines = [chat_line(f"doc-{i}", document(i), schema=SUMMARY_SCHEMA) for i in range(20)]
    file = upload(client, jsonl(lines))
    started = time.monotonic()
    created = client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run_id": "r1", "shard": "0"},
    )
    assert created.status == "validating"
    assert created.id.startswith("batch_")
    assert created.expires_at == created.created_at + 86400
    assert created.completion_window == "24h"
    assert created.metadata == {"run_id": "r1", "shard": "0"}
    assert created.output_file_id is None and created.error_file_id is None

    batch = wait_for(client, created.id)
    assert time.monotonic() - started < 2.0
    assert batch.status == "completed"
    assert batch.model == "gpt-4o-mini"
    assert batch.errors is None
    assert batch.error_file_id is None
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (20, 20)
    assert batch.request_counts.failed == 0
    assert batch.in_progress_at is not None and batch.finalizing_at is not None
    assert batch.completed_at is not None
    assert created.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.failed_at is None and batch.cancelled_at is None and batch.expired_at is None

    out = read_lines(client, batch.output_file_id)
    assert sorted(line["custom_id"] for line in out) == sorted(f"doc-{i}" for i in range(20))
    assert batch.usage is not None
    bodies = [line["response"]["body"] for line in out]
    assert batch.usage.input_tokens == sum(b["usage"]["prompt_tokens"] for b in bodies)
    assert batch.usage.output_tokens == sum(b["usage"]["completion_tokens"] for b in bodies)
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens
    for line in out:
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"].startswith("req_")  # as in OpenAI's batch guide

    output_file = client.files.retrieve(batch.output_file_id or "")
    assert output_file.purpose == "batch_output"
    assert output_file.filename == f"{batch.id}_output.jsonl"


def test_output_expires_after_sets_the_output_files_expiry(client: OpenAI) -> None:
    file = upload(client, jsonl([chat_line("a", document(1))]))
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 3600},
    )
    done = wait_for(client, batch.id)
    output = client.files.retrieve(done.output_file_id or "")
    assert output.expires_at == output.created_at + 3600


def test_list_batches_walks_everything_newest_first(client: OpenAI) -> None:
    ids = [submit(client, [chat_line("a", document(i))]).id for i in range(5)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == [ids[4], ids[3]]
    assert first.has_more is True
    assert first.first_id == ids[4] and first.last_id == ids[3]
    assert [b.id for b in client.batches.list(limit=2)] == list(reversed(ids))
    last = client.batches.list(limit=2, after=ids[1])
    assert [b.id for b in last.data] == [ids[0]]
    assert last.has_more is False
    assert [b.id for b in client.batches.list()] == list(reversed(ids))  # default limit 20
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=0)


def test_in_progress_is_observable_and_counts_update(
    make_server: MakeServer, make_client: MakeClient
) -> None:
    server = make_server(
        min_validating_seconds=0.2,
        faults=FaultConfig(line_delay_seconds=0.02),
    )
    client = make_client(server)
    batch = submit(client, [chat_line(f"c{i}", document(i)) for i in range(40)])
    assert client.batches.retrieve(batch.id).status == "validating"
    running = wait_for(client, batch.id, ("in_progress",))
    assert running.in_progress_at is not None
    assert running.request_counts is not None and running.request_counts.total == 40
    seen_partial = False
    while running.status == "in_progress":
        counts = running.request_counts
        assert counts is not None
        seen_partial |= 0 < counts.completed < 40
        time.sleep(0.05)
        running = client.batches.retrieve(batch.id)
    assert seen_partial
    assert wait_for(client, batch.id).status == "completed"


def test_cancel_mid_batch(make_server: MakeServer, make_client: MakeClient) -> None:
    server = make_server(min_cancelling_seconds=0.2, faults=FaultConfig(line_delay_seconds=0.02))
    client = make_client(server)
    batch = submit(client, [chat_line(f"c{i}", document(i)) for i in range(200)])
    running = wait_for(client, batch.id, ("in_progress",))
    while (running.request_counts is None or running.request_counts.completed < 5) and (
        running.status == "in_progress"
    ):
        time.sleep(0.02)
        running = client.batches.retrieve(batch.id)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    done = wait_for(client, batch.id)
    assert done.status == "cancelled"
    assert done.cancelled_at is not None and done.cancelling_at is not None
    assert done.completed_at is None

    out, err = results(client, done)
    assert 5 <= len(out) < 200
    assert len(out) + len(err) == 200
    assert done.request_counts is not None
    assert done.request_counts.completed == len(out)
    assert done.request_counts.failed == len(err)
    for line in err.values():
        assert line["response"] is None
        assert line["error"]["code"] == "batch_cancelled"

    with pytest.raises(openai.ConflictError) as caught:
        client.batches.cancel(batch.id)
    assert caught.value.status_code == 409


def test_cancel_while_validating(make_server: MakeServer, make_client: MakeClient) -> None:
    server = make_server(min_validating_seconds=0.3)
    client = make_client(server)
    batch = submit(client, [chat_line(f"v{i}", document(i)) for i in range(3)])
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = wait_for(client, batch.id)
    assert done.status == "cancelled"
    assert done.in_progress_at is None
    out, err = results(client, done)
    assert out == {}
    assert {line["error"]["code"] for line in err.values()} == {"batch_cancelled"}


def test_cancel_of_a_completed_batch_is_refused_without_retries(
    server: object, make_client: MakeClient
) -> None:
    from localbatch import LocalBatchServer

    assert isinstance(server, LocalBatchServer)
    client = make_client(server, max_retries=2)
    batch = run_batch(client, [chat_line("a", document(0))])
    started = time.monotonic()
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    assert time.monotonic() - started < 0.4  # x-should-retry: false, so no backoff


def test_a_24h_window_expires_in_scaled_time(
    make_server: MakeServer, make_client: MakeClient
) -> None:
    # 86400 virtual seconds per real second: the 24h window ends one real second in.
    server = make_server(time_scale=86400.0, faults=FaultConfig(line_delay_seconds=0.05))
    client = make_client(server)
    batch = submit(client, [chat_line(f"e{i}", document(i)) for i in range(60)])
    done = wait_for(client, batch.id, timeout=10)
    assert done.status == "expired"
    assert done.expired_at is not None and done.expired_at >= done.expires_at
    out, err = results(client, done)
    assert 0 < len(out) < 60
    assert len(out) + len(err) == 60
    assert {line["error"]["code"] for line in err.values()} == {"batch_expired"}


def test_restart_mid_batch_carries_on_to_completion(
    make_server: MakeServer, make_client: MakeClient
) -> None:
    first = make_server(faults=FaultConfig(line_delay_seconds=0.01))
    client = make_client(first)
    lines = [chat_line(f"p{i}", document(i), schema=SUMMARY_SCHEMA) for i in range(150)]
    batch = submit(client, lines)
    running = wait_for(client, batch.id, ("in_progress",))
    while running.request_counts is None or running.request_counts.completed < 20:
        time.sleep(0.02)
        running = client.batches.retrieve(batch.id)
    input_file_id = running.input_file_id
    first.stop()

    second = make_server(
        data_dir=first.config.data_dir, faults=FaultConfig(line_delay_seconds=0.01)
    )
    client = make_client(second)
    assert client.files.retrieve(input_file_id).id == input_file_id
    resumed = client.batches.retrieve(batch.id)
    assert resumed.status == "in_progress"
    assert resumed.request_counts is not None and resumed.request_counts.completed >= 20
    second.set_faults(FaultConfig())
    done = wait_for(client, batch.id)
    assert done.status == "completed"
    out = read_lines(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in out) == sorted(f"p{i}" for i in range(150))
    assert done.request_counts is not None and done.request_counts.completed == 150
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_a_second_server_cannot_share_a_data_dir(make_server: MakeServer) -> None:
    first = make_server()
    with pytest.raises(RuntimeError):
        make_server(data_dir=first.config.data_dir)


def test_responses_and_embeddings_batches(client: OpenAI) -> None:
    from tests.localbatch._helpers import responses_line

    batch = run_batch(
        client,
        [responses_line(f"r{i}", document(i), schema=SUMMARY_SCHEMA) for i in range(3)],
        endpoint="/v1/responses",
    )
    assert batch.status == "completed"
    assert batch.request_counts is not None and batch.request_counts.completed == 3

    embeddings = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": document(i), "dimensions": 8},
        }
        for i in range(3)
    ]
    batch = run_batch(client, embeddings, endpoint="/v1/embeddings")
    assert batch.status == "completed"
    out = read_lines(client, batch.output_file_id)
    vectors = [line["response"]["body"]["data"][0]["embedding"] for line in out]
    assert all(len(v) == 8 for v in vectors)
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3


def test_restart_while_finalizing(make_server: MakeServer, make_client: MakeClient) -> None:
    first = make_server(min_finalizing_seconds=5.0)
    client = make_client(first)
    batch = submit(client, [chat_line(f"f{i}", document(i)) for i in range(10)])
    assert wait_for(client, batch.id, ("finalizing",)).finalizing_at is not None
    first.stop()
    second = make_server(data_dir=first.config.data_dir)
    done = wait_for(make_client(second), batch.id)
    assert done.status == "completed"
    assert len(read_lines(make_client(second), done.output_file_id)) == 10


def test_crash_after_publishing_files_but_before_recording_them(
    make_server: MakeServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localbatch import _engine

    first = make_server()
    store = first._service().store
    real_update = store.update_batch

    def die_on_the_final_update(batch_id: str, change: Any, **kwargs: Any) -> Any:
        if kwargs.get("new_files"):
            raise _engine._Stopped  # the process "dies" right after the renames
        return real_update(batch_id, change, **kwargs)

    monkeypatch.setattr(store, "update_batch", die_on_the_final_update)
    client = make_client(first)
    lines = [chat_line(f"c{i}", document(i)) for i in range(10)]
    lines.append({**chat_line("bad", "x"), "body": {"model": "gpt-4o-mini"}})
    batch = submit(client, lines)
    deadline = time.monotonic() + 10
    while (
        not (first.config.data_dir / "files").exists()
        or len(list((first.config.data_dir / "files").iterdir())) < 3
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    first.stop()
    monkeypatch.undo()

    second = make_server(data_dir=first.config.data_dir)
    client = make_client(second)
    done = wait_for(client, batch.id)
    assert done.status == "completed"
    out, err = results(client, done)
    assert sorted(out) == sorted(f"c{i}" for i in range(10))
    assert list(err) == ["bad"]
