"""A local, OpenAI-compatible Batch API: Files and Batches on 127.0.0.1, state on disk.

Point any Batch API client at it through `base_url` / `OPENAI_BASE_URL`. Executors: a
deterministic simulator (schema-valid answers from the document text, real token counts, fault
injection) and a forwarder to any OpenAI-compatible `/chat/completions` server.

    from localbatch import LocalBatchServer, ServerConfig

    with LocalBatchServer(ServerConfig(data_dir=path, api_key="test-key")) as server:
        client = server.client()

The names below are imported on first use (PEP 562), not when the package is: `overnight
--help` imports `localbatch.cli`, and should not pay for starlette, tiktoken and the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from localbatch._defaults import DEFAULT_API_KEY, DEFAULT_PORT

if TYPE_CHECKING:
    from localbatch._app import create_app
    from localbatch._config import FaultConfig, ServerConfig
    from localbatch._server import LocalBatchServer

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "FaultConfig",
    "LocalBatchServer",
    "ServerConfig",
    "create_app",
]

_LAZY = {
    "create_app": "localbatch._app",
    "FaultConfig": "localbatch._config",
    "ServerConfig": "localbatch._config",
    "LocalBatchServer": "localbatch._server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'localbatch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
