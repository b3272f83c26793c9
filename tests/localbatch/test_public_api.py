"""Pin the public surface the rest of the project builds on."""

from __future__ import annotations

import inspect
from pathlib import Path

import pydantic
import pytest
from openai import OpenAI
from starlette.applications import Starlette
from starlette.testclient import TestClient

import localbatch
from localbatch import FaultConfig, LocalBatchServer, ServerConfig, create_app
from tests.localbatch._helpers import chat_line, document, run_batch


def test_exports() -> None:
    assert sorted(localbatch.__all__) == [
        "DEFAULT_API_KEY",
        "DEFAULT_PORT",
        "FaultConfig",
        "LocalBatchServer",
        "ServerConfig",
        "create_app",
    ]


def test_server_config_fields_and_defaults(tmp_path: Path) -> None:
    config = ServerConfig(
        data_dir=tmp_path,
        host="127.0.0.1",
        port=0,
        api_key="test-key",
        executor="simulate",
        seed=0,
        time_scale=1.0,
        faults=FaultConfig(),
        forward_url=None,
        forward_api_key=None,
        forward_concurrency=8,
    )
    assert config.host == "127.0.0.1"
    assert config.api_key.get_secret_value() == "test-key"
    assert "test-key" not in repr(config)
    assert config.max_upload_bytes == 209_715_200
    assert config.max_lines_per_batch == 50_000
    assert config.max_embedding_inputs_per_batch == 50_000
    assert config.lenient is False  # lines are checked as OpenAI checks them unless asked
    assert config.simulate_workers == 0  # one simulator process per core for big batches
    assert set(ServerConfig.model_fields) == {
        "data_dir",
        "host",
        "port",
        "api_key",
        "executor",
        "simulate_workers",
        "seed",
        "time_scale",
        "min_validating_seconds",
        "min_in_progress_seconds",
        "min_finalizing_seconds",
        "min_cancelling_seconds",
        "faults",
        "forward_url",
        "forward_api_key",
        "forward_concurrency",
        "forward_timeout_seconds",
        "forward_max_retries",
        "forward_model",
        "lenient",
        "max_upload_bytes",
        "max_batch_input_bytes",
        "max_lines_per_batch",
        "max_embedding_inputs_per_batch",
        "max_concurrent_batches",
        "log_level",
    }
    with pytest.raises(pydantic.ValidationError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        ServerConfig(data_dir=tmp_path, unknown_option=1)  # type: ignore[call-arg]


def test_fault_config_fields() -> None:
    assert set(FaultConfig.model_fields) == {
        "line_500_rate",
        "line_429_rate",
        "line_timeout_rate",
        "line_invalid_json_rate",
        "line_schema_violation_rate",
        "line_refusal_rate",
        "line_length_rate",
        "line_delay_seconds",
        "batch_fail_validation",
        "batch_enqueued_token_limit",
        "batch_expire_after_fraction",
        "batch_all_lines_fail",
        "api_429_rate",
        "api_500_rate",
        "api_retry_after_seconds",
        "api_delay_seconds",
        "api_delay_rate",
    }
    faults = FaultConfig()
    with pytest.raises(pydantic.ValidationError):
        faults.line_500_rate = 0.5  # type: ignore[misc]
    assert callable(FaultConfig.from_file)


def test_server_surface() -> None:
    public = {name for name in dir(LocalBatchServer) if not name.startswith("_")}
    assert public == {
        "api_key",
        "async_client",
        "base_url",
        "client",
        "config",
        "faults",
        "port",
        "set_faults",
        "start",
        "stop",
        "url",
    }
    assert list(inspect.signature(LocalBatchServer).parameters) == ["config"]
    assert (
        str(inspect.signature(LocalBatchServer.client))
        == "(self, **kwargs: 'Any') -> 'openai.OpenAI'"
    )


def test_server_lifecycle_without_with(tmp_path: Path) -> None:
    server = LocalBatchServer(ServerConfig(data_dir=tmp_path, api_key="k"))
    with pytest.raises(RuntimeError):
        _ = server.base_url
    assert server.start() is server
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.api_key == "k"
        client = server.client(max_retries=0)
        assert isinstance(client, OpenAI)
        assert str(client.base_url) == server.base_url + "/"
        assert client.batches.list().data == []
    finally:
        server.stop()
    server.stop()  # idempotent


def test_create_app_is_a_plain_asgi_app(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path, api_key="k"))
    assert isinstance(app, Starlette)
    with TestClient(app) as http:
        listed = http.get("/v1/batches", headers={"authorization": "Bearer k"})
        assert listed.status_code == 200
        assert listed.json() == {"object": "list", "data": [], "has_more": False}


def test_shared_fixtures_for_other_tests(
    batch_server: LocalBatchServer, openai_client: OpenAI
) -> None:
    assert batch_server.api_key == "test-key"
    assert openai_client.max_retries == 0
    batch = run_batch(openai_client, [chat_line("a", document(1))])
    assert batch.status == "completed"
