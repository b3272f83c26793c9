"""A local, OpenAI-compatible Batch API: Files and Batches on 127.0.0.1, state on disk.

Point any Batch API client at it through `base_url` / `OPENAI_BASE_URL`. Executors: a
deterministic simulator (schema-valid answers from the document text, real token counts, fault
injection) and a forwarder to any OpenAI-compatible `/chat/completions` server.

    from localbatch import LocalBatchServer, ServerConfig

    with LocalBatchServer(ServerConfig(data_dir=path, api_key="test-key")) as server:
        client = server.client()
"""

from __future__ import annotations

from localbatch._app import create_app
from localbatch._config import DEFAULT_API_KEY, DEFAULT_PORT, FaultConfig, ServerConfig
from localbatch._server import LocalBatchServer

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "FaultConfig",
    "LocalBatchServer",
    "ServerConfig",
    "create_app",
]
