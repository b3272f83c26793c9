"""Fixtures for the local Batch API: servers on fresh data dirs, and clients whose every
response body is validated against OpenAI's official OpenAPI spec."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from openai import OpenAI

from localbatch import LocalBatchServer, ServerConfig
from tests.localbatch._spec import SpecChecker

MakeServer = Callable[..., LocalBatchServer]
MakeClient = Callable[..., OpenAI]


@pytest.fixture(scope="session")
def spec_checker() -> SpecChecker:
    return SpecChecker()


@pytest.fixture(autouse=True)
def _responses_match_the_spec(spec_checker: SpecChecker) -> Iterator[None]:
    """Fail any test during which a response body broke the spec (even if the test caught it)."""
    before = len(spec_checker.failures)
    yield
    new = spec_checker.failures[before:]
    assert not new, "responses that do not match the OpenAI spec:\n" + "\n".join(new)


def validating_http_client(checker: SpecChecker, **kwargs: Any) -> httpx2.Client:
    """An httpx2 client that validates each response body by route before anyone reads it."""

    def check(response: httpx2.Response) -> None:
        response.read()
        request = response.request
        checker.check(request.method, request.url.path, response.status_code, response.content)

    return httpx2.Client(event_hooks={"response": [check]}, **kwargs)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """Start servers with ServerConfig overrides; data dir defaults to one per test."""
    started: list[LocalBatchServer] = []

    def make(**overrides: Any) -> LocalBatchServer:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("api_key", "test-key")
        server = LocalBatchServer(ServerConfig(**overrides)).start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture
def make_client(spec_checker: SpecChecker) -> Iterator[MakeClient]:
    """Official openai clients (no retries unless asked) whose responses are spec-checked."""
    clients: list[OpenAI] = []

    def make(server: LocalBatchServer, **kwargs: Any) -> OpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 20.0)
        client = OpenAI(
            base_url=kwargs.pop("base_url", server.base_url),
            api_key=kwargs.pop("api_key", server.api_key),
            http_client=validating_http_client(spec_checker),
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def server(make_server: MakeServer) -> LocalBatchServer:
    return make_server()


@pytest.fixture
def client(server: LocalBatchServer, make_client: MakeClient) -> OpenAI:
    return make_client(server)


@pytest.fixture
def raw(server: LocalBatchServer, spec_checker: SpecChecker) -> Iterator[httpx2.Client]:
    """A plain HTTP client (authorized, spec-checked) for requests the SDK would not send."""
    with validating_http_client(
        spec_checker,
        base_url=server.url,
        headers={"authorization": f"Bearer {server.api_key}"},
        timeout=20.0,
    ) as http:
        yield http
