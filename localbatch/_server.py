"""`LocalBatchServer`: the app under uvicorn in a background thread, for tests and embedding."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from localbatch._config import DEFAULT_API_KEY, FaultConfig, ServerConfig

if TYPE_CHECKING:
    import openai
    import uvicorn
    from starlette.applications import Starlette

    from localbatch._service import Service

STARTUP_TIMEOUT = 30.0


class LocalBatchServer:
    """A local OpenAI-compatible Batch API, started in a background thread.

        with LocalBatchServer(ServerConfig(data_dir=tmp)) as server:
            client = server.client()
            ...

    `start()` returns once the server answers HTTP; `stop()` waits for the engine to
    checkpoint, so a new server on the same data directory carries on where this one stopped.
    """

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._app: Starlette | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; return when the server answers (raise RuntimeError if it cannot)."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        import uvicorn

        from localbatch._app import create_app
        from localbatch._store import check_unlocked

        check_unlocked(self._config.data_dir)
        self._app = create_app(self._config)
        config = uvicorn.Config(
            self._app,
            host=self._config.host,
            port=self._config.port,
            log_level=self._config.log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        self._uvicorn = server
        self._thread = threading.Thread(
            target=self._serve, args=(server,), name="localbatch-uvicorn", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread.join(1.0)
                self._thread = None
                self._uvicorn = None
                cause = getattr(self._app.state, "startup_error", None)
                raise RuntimeError(
                    f"the local Batch API did not start on {self._config.host}:"
                    f"{self._config.port} with data dir {self._config.data_dir}: "
                    f"{cause or 'see the log'}"
                ) from cause
            time.sleep(0.005)
        self._port = server.servers[0].sockets[0].getsockname()[1]
        self._wait_until_answering(deadline)
        return self

    @staticmethod
    def _serve(server: uvicorn.Server) -> None:
        try:
            server.run()
        except SystemExit:
            # uvicorn exits this way when startup fails; the cause is on app.state.
            return

    def _wait_until_answering(self, deadline: float) -> None:
        url = f"{self.url}/_local/health"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the local Batch API started but does not answer") from None
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving (idempotent); in-flight batches stay resumable on disk."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(60.0)
        self._thread = None
        self._uvicorn = None
        self._port = None
        self._app = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what clients need --------------------------------------------------------------------

    @property
    def config(self) -> ServerConfig:
        return self._config

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. `http://127.0.0.1:8976`."""
        host = self._config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give the openai client as `base_url`, e.g. `http://127.0.0.1:8976/v1`."""
        return f"{self.url}/v1"

    @property
    def api_key(self) -> str:
        """The key this server's clients send (`DEFAULT_API_KEY` when it takes any key)."""
        key = self._config.api_key
        return DEFAULT_API_KEY if key is None else key.get_secret_value()

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """An `openai.OpenAI` pointed at this server; keyword arguments are passed through."""
        import openai

        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("api_key", self.api_key)
        return openai.OpenAI(**kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """An `openai.AsyncOpenAI` pointed at this server; keyword arguments are passed through."""
        import openai

        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("api_key", self.api_key)
        return openai.AsyncOpenAI(**kwargs)

    # -- faults -------------------------------------------------------------------------------

    def _service(self) -> Service:
        service = getattr(self._app.state, "service", None) if self._app is not None else None
        if service is None:
            raise RuntimeError("server not started")
        return service  # type: ignore[no-any-return]

    @property
    def faults(self) -> FaultConfig:
        return self._service().faults

    def set_faults(self, faults: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        """Replace the fault configuration (or change some fields of the current one)."""
        service = self._service()
        if faults is None:
            faults = FaultConfig.model_validate({**service.faults.model_dump(), **changes})
        elif changes:
            faults = FaultConfig.model_validate({**faults.model_dump(), **changes})
        service.set_faults(faults)
        return faults
