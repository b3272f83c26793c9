"""The forward executor against a tiny OpenAI-compatible upstream on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.localbatch._helpers import chat_line, document, results, run_batch
from tests.localbatch.conftest import MakeClient, MakeServer


class Upstream:
    """A stand-in for vLLM / Ollama / llama.cpp: `POST /v1/chat/completions` only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.models: set[str] = set()
        self.auth: set[str] = set()
        self.calls: dict[str, int] = {}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with upstream.lock:
                    upstream.in_flight += 1
                    upstream.max_in_flight = max(upstream.max_in_flight, upstream.in_flight)
                    upstream.models.add(body["model"])
                    upstream.auth.add(self.headers.get("authorization", ""))
                try:
                    status, payload, raw = self._answer(body)
                finally:
                    # Out of flight before the client can see the answer and send the next one.
                    with upstream.lock:
                        upstream.in_flight -= 1
                self._send(status, payload, raw)

            def _answer(self, body: dict[str, Any]) -> tuple[int, Any, bytes | None]:
                if self.path != "/v1/chat/completions":
                    return 404, {"error": {"message": "no such route"}}, None
                text = body["messages"][-1]["content"]
                with upstream.lock:
                    upstream.calls[text] = upstream.calls.get(text, 0) + 1
                    calls = upstream.calls[text]
                time.sleep(0.05)
                if text == "refuse-400":
                    return 400, {"error": {"message": "bad request", "type": "x"}}, None
                if text == "flaky" and calls == 1:
                    return 503, {"detail": "warming up"}, None
                if text == "not-json":
                    return 200, None, b"<html>oops</html>"
                answer = text.upper()[:50]
                return (
                    200,
                    {
                        "id": "chatcmpl-upstream",
                        "object": "chat.completion",
                        "created": 1,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    },
                    None,
                )

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def test_forward_writes_the_upstreams_real_answers(
    upstream: Upstream, make_server: MakeServer, make_client: MakeClient
) -> None:
    server = make_server(
        executor="forward",
        forward_url=upstream.url,
        forward_api_key="upstream-key",
        forward_concurrency=3,
        forward_model="local-llama",
    )
    client = make_client(server)
    lines = [chat_line(f"ok{i}", f"hello {i}") for i in range(12)]
    lines += [chat_line("bad", "refuse-400"), chat_line("flaky", "flaky")]
    lines += [chat_line("garbage", "not-json")]
    batch = run_batch(client, lines)
    assert batch.status == "completed"
    assert batch.model == "gpt-4o-mini"
    out, err = results(client, batch)

    assert set(out) == {f"ok{i}" for i in range(12)} | {"flaky"}
    assert out["ok3"]["response"]["body"]["choices"][0]["message"]["content"] == "HELLO 3"
    assert upstream.calls["flaky"] == 2  # retried after the 503
    assert err["bad"]["response"]["status_code"] == 400
    assert err["bad"]["response"]["body"]["error"]["message"] == "bad request"
    assert err["bad"]["error"] is None
    assert err["garbage"]["response"]["status_code"] == 502

    assert upstream.models == {"local-llama"}
    assert upstream.auth == {"Bearer upstream-key"}
    assert 1 < upstream.max_in_flight <= 3
    assert batch.usage is not None
    assert batch.usage.input_tokens == 13 * 11 and batch.usage.output_tokens == 13 * 7


def test_forward_to_an_unreachable_upstream(
    make_server: MakeServer, make_client: MakeClient
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server(
        executor="forward", forward_url=f"http://127.0.0.1:{port}/v1", forward_max_retries=0
    )
    client = make_client(server)
    batch = run_batch(client, [chat_line("a", document(1)), chat_line("b", document(2))])
    assert batch.status == "completed"
    out, err = results(client, batch)
    assert out == {}
    assert {line["response"]["status_code"] for line in err.values()} == {502}


def test_forward_needs_a_url() -> None:
    from pathlib import Path

    from localbatch import ServerConfig

    with pytest.raises(ValueError):
        ServerConfig(data_dir=Path("/tmp/unused"), executor="forward")
