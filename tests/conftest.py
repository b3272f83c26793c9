"""Shared fixtures: every service a test needs is started here, on 127.0.0.1 only."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# Offline, quiet Prefect with a throw-away home; set before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="overnight-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# The embedded local Batch API keeps its state under OVERNIGHT_HOME: never the user's own.
os.environ["OVERNIGHT_HOME"] = tempfile.mkdtemp(prefix="overnight-home-")
for _home in (_PREFECT_HOME, os.environ["OVERNIGHT_HOME"]):
    atexit.register(shutil.rmtree, _home, True)  # each session's homes, gone when it ends
os.environ.pop("OVERNIGHT_PRICING_FILE", None)
os.environ["DO_NOT_TRACK"] = "1"
# Never reach a real OpenAI or AWS from a test.
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 server (moto) on 127.0.0.1; boto3 reaches it through AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    from tasks import storage

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    storage.s3_client.cache_clear()
    try:
        yield endpoint
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        storage.s3_client.cache_clear()


@pytest.fixture
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket on the moto server; returns its name."""
    from tasks import storage

    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{slug}-{os.urandom(3).hex()}"
    storage.s3_client().create_bucket(Bucket=name)
    return name


# -- local Batch API fixtures (batch_server, openai_client) are defined below ---------------

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from pathlib import Path

    from openai import OpenAI

    from localbatch import LocalBatchServer


@pytest.fixture
def batch_server(tmp_path: Path) -> Iterator[LocalBatchServer]:
    """A started local Batch API (simulator, faults off) with a fresh data dir; key "test-key"."""
    from localbatch import LocalBatchServer, ServerConfig

    config = ServerConfig(data_dir=tmp_path / "localbatch", api_key="test-key")
    with LocalBatchServer(config) as server:
        yield server


@pytest.fixture
def openai_client(batch_server: LocalBatchServer) -> Iterator[OpenAI]:
    """An `openai.OpenAI` pointed at `batch_server`, without retries (errors surface at once)."""
    client = batch_server.client(max_retries=0)
    try:
        yield client
    finally:
        client.close()
