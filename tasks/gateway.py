"""The Batch gateway: the one seam between overnight and a Batch API (OpenAI or the local one).

With `OPENAI_API_KEY` set, batches go to OpenAI (or to `OPENAI_BASE_URL`). Without it, an
embedded local Batch API (`localbatch`, simulate executor) is started on 127.0.0.1 with its
state under `~/.local/share/overnight/localbatch`, so runs, restarts and `collect` work the same
way offline. A run records which backend it used, and is always collected from that backend.

`batches.create` has no idempotency key, so it is sent without client retries; on any failure
the caller reconciles against the batch list by metadata before trying again.
"""

from __future__ import annotations

import atexit
import logging
import secrets
import shutil
import tempfile
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Literal, cast

import openai
from openai.types import Batch

from overnight.settings import Settings, get_settings
from schemas.manifest import EMBEDDED as EMBEDDED
from schemas.manifest import OPENAI as OPENAI
from tasks import storage

if TYPE_CHECKING:
    from localbatch import LocalBatchServer

log = logging.getLogger(__name__)


Endpoint = Literal["/v1/chat/completions", "/v1/responses"]

CLIENT_RETRIES = 3
"""The openai client's own retries (0.5, 1, 2 s apart) of 408/409/429/5xx and lost connections."""
CLIENT_TIMEOUT = openai.Timeout(120.0, connect=5.0)
"""An address that never answers fails after 4 × 5 s: an unreachable API is known in < 30 s."""


class GatewayError(Exception):
    """The Batch API could not be reached or configured."""


class Gateway:
    """An openai client bound to one backend, with the few calls overnight makes."""

    def __init__(self, client: openai.OpenAI, backend: str) -> None:
        self.client = client
        self.backend = backend

    # -- files -----------------------------------------------------------------------------
    def upload(self, uri: str, *, filename: str) -> str:
        """Upload a JSONL shard (local or S3) with purpose=batch; return the file id."""
        local = storage.local_path(uri)
        if local is not None:
            with open(local, "rb") as fh:
                return self.client.files.create(file=(filename, fh), purpose="batch").id
        with tempfile.TemporaryFile(prefix="overnight-upload-") as tmp:
            with storage.open_read(uri) as src:
                shutil.copyfileobj(src, tmp, 1 << 20)
            tmp.seek(0)
            return self.client.files.create(file=(filename, tmp), purpose="batch").id

    def download(self, file_id: str, dest_uri: str) -> int:
        """Stream a file's content to a local path or S3 URI, atomically; return its size."""
        size = 0
        with (
            self.client.files.with_streaming_response.content(file_id) as response,
            storage.open_write(dest_uri) as out,
        ):
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
                size += len(chunk)
        return size

    # -- batches ---------------------------------------------------------------------------
    def create_batch(self, *, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> Batch:
        """Create a batch once, with no client-side retry (a retry could pay twice)."""
        return self.client.with_options(max_retries=0).batches.create(
            input_file_id=input_file_id,
            endpoint=cast(Endpoint, endpoint),
            completion_window="24h",
            metadata=metadata,
        )

    def find_batch(self, metadata: dict[str, str], *, since: datetime) -> Batch | None:
        """Find a batch whose metadata includes all of `metadata`, created after `since`.

        The list is newest first, so paging stops at the first batch older than `since`.
        """
        floor = since.timestamp() - 300
        for batch in self.client.batches.list(limit=100):
            if batch.created_at < floor:
                return None
            found = batch.metadata or {}
            if all(found.get(k) == v for k, v in metadata.items()):
                return batch
        return None

    def retrieve(self, batch_id: str) -> Batch:
        return self.client.batches.retrieve(batch_id)

    def cancel(self, batch_id: str) -> Batch:
        return self.client.batches.cancel(batch_id)


_lock = threading.Lock()
_gateways: dict[str, Gateway] = {}
_embedded: LocalBatchServer | None = None


def _embedded_client(settings: Settings) -> openai.OpenAI:
    global _embedded
    from localbatch import LocalBatchServer, ServerConfig

    if _embedded is None:
        config = ServerConfig(
            data_dir=settings.local_batch_dir,
            host="127.0.0.1",
            port=0,
            api_key="ovn-" + secrets.token_urlsafe(24),
        )
        server = LocalBatchServer(config)
        try:
            server.start()
        except RuntimeError as exc:
            raise GatewayError(
                f"cannot start the embedded local Batch API in {settings.local_batch_dir} "
                f"({exc}); if another overnight command is using it, let it finish; if it is "
                "`overnight serve`, point this command at that server (OPENAI_BASE_URL="
                "http://127.0.0.1:PORT/v1 and its key); or set OVERNIGHT_HOME to use another "
                "folder"
            ) from exc
        atexit.register(server.stop)
        _embedded = server
        if settings.openai_api_key is None:
            log.warning(
                "No OPENAI_API_KEY set: using the embedded local Batch API at %s (simulated "
                "outputs, no cost; state in %s). Set OPENAI_API_KEY to use OpenAI.",
                server.base_url,
                settings.local_batch_dir,
            )
        else:
            log.warning(
                "Using the embedded local Batch API at %s for a run that started there "
                "(simulated outputs, state in %s); new runs go to %s",
                server.base_url,
                settings.local_batch_dir,
                default_backend(settings),
            )
    return _embedded.client(max_retries=CLIENT_RETRIES)


def backend_unavailable(backend: str, *, batches_created: bool = True) -> str:
    """Why a run's backend cannot be reached now, and what to do about it.

    A run none of whose batches was created yet is not bound to its backend: the next
    `run` or `submit` moves it to the backend configured then (`_move_backend`), and says so.
    """
    where = "OpenAI" if backend == OPENAI else backend
    set_url = "" if backend == OPENAI else f" and OPENAI_BASE_URL={backend}"
    if not batches_created:
        return (
            f"this run was meant for {where}, which cannot be reached now (OPENAI_API_KEY is "
            "not set), but none of its batches was created there: `overnight run` or "
            "`overnight submit` of its job moves the run to the backend configured now and "
            f"sends its documents there; or set OPENAI_API_KEY{set_url} and collect again"
        )
    return (
        f"this run's batches live on {where}, but OPENAI_API_KEY is not set, so they cannot "
        f"be collected or cancelled now: set OPENAI_API_KEY{set_url} (the key the run was "
        "submitted with) and run collect again. A new submit without a key starts a new run "
        "on the embedded local Batch API and leaves this run's documents to it."
    )


def default_backend(settings: Settings | None = None) -> str:
    """The backend a new run uses: OpenAI (or OPENAI_BASE_URL) with a key, else embedded.

    OPENAI_BASE_URL without a key is refused rather than quietly simulated: whoever set it
    meant that server, not the embedded simulator.
    """
    settings = settings or get_settings()
    if settings.openai_api_key is None:
        if settings.openai_base_url:
            raise GatewayError(
                f"OPENAI_BASE_URL is set ({settings.openai_base_url}) but OPENAI_API_KEY is "
                "not: set the key that server expects (any value if it checks none), or unset "
                "OPENAI_BASE_URL to run on the embedded local Batch API"
            )
        return EMBEDDED
    return settings.openai_base_url or OPENAI


def get_gateway(backend: str | None = None, *, settings: Settings | None = None) -> Gateway:
    """Return the process-wide gateway for a backend (default: the one new runs use)."""
    settings = settings or get_settings()
    backend = backend or default_backend(settings)
    with _lock:
        if backend in _gateways:
            return _gateways[backend]
        if backend == EMBEDDED:
            client = _embedded_client(settings)
        else:
            if settings.openai_api_key is None:
                raise GatewayError(backend_unavailable(backend))
            client = openai.OpenAI(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=backend,
                max_retries=CLIENT_RETRIES,
                timeout=CLIENT_TIMEOUT,
            )
        gateway = Gateway(client, backend)
        _gateways[backend] = gateway
        return gateway


def reset_gateways() -> None:
    """Forget cached gateways and stop the embedded server (tests, settings changes)."""
    global _embedded
    with _lock:
        _gateways.clear()
        if _embedded is not None:
            _embedded.stop()
            _embedded = None
