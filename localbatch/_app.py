"""The HTTP API: OpenAI's Files and Batches routes under /v1, admin routes under /_local.

Every answer is JSON in OpenAI's shapes (file contents excepted); every error is
`{"error": {...}}` with OpenAI's status codes; an unexpected exception becomes a 500 answer
and never takes the server down.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localbatch._config import FaultConfig, ServerConfig
from localbatch._engine import CancelRefused
from localbatch._errors import (
    APIError,
    bad_request,
    error_body,
    invalid_url,
    invalid_value,
    missing_param,
    not_found,
)
from localbatch._fields import CREATE_BATCH_FIELDS, first_unknown
from localbatch._multipart import receive_upload
from localbatch._service import Service
from localbatch._shapes import metadata_problem
from localbatch._store import BatchRecord, FileRecord, new_batch_id, new_file_id

log = logging.getLogger("localbatch")

SUPPORTED_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/moderations",
    "/v1/completions",
)
OPENAI_ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
BATCH_FILE_TTL = 30 * 86400
"""Files uploaded with purpose=batch expire after 30 days, as on OpenAI."""
MAX_JSON_BODY = 1024 * 1024


class _Holder:
    """The service of a running app (set by the lifespan)."""

    service: Service | None = None

    def get(self) -> Service:
        if self.service is None:
            raise RuntimeError("the local Batch API is not started")
        return self.service


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, media_type="application/json", headers=headers
    )


def error_response(error: APIError) -> Response:
    return json_response(error.body(), error.status_code, error.headers or None)


# -- parameters -----------------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_value(name, f"Invalid value for '{name}': expected an integer.") from None
    if not lo <= value <= hi:
        raise invalid_value(
            name, f"Invalid value for '{name}': {value}. It must be between {lo} and {hi}."
        )
    return value


def known_models() -> list[str]:
    """What `GET /v1/models` lists: the models of the capabilities file (`data/models.toml`)."""
    from tasks.capabilities import load_capabilities

    return list(load_capabilities().models)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "overnight"}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_JSON_BODY:
            raise APIError(413, "The request body is too large.")
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def _metadata(value: Any) -> dict[str, str] | None:
    problem = metadata_problem(value)
    if problem is not None:
        raise invalid_value("metadata", problem)
    return None if value is None else dict(value)


def _expires_after(value: Any, name: str) -> int | None:
    """Seconds from an `{anchor: "created_at", seconds}` policy (None if absent)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_value(name, f"Invalid '{name}': expected an object.")
    if value.get("anchor") != "created_at":
        raise invalid_value(f"{name}.anchor", f"Invalid '{name}.anchor': must be 'created_at'.")
    seconds = value.get("seconds")
    if isinstance(seconds, str) and seconds.isdigit():
        seconds = int(seconds)
    if (
        not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not 3600 <= seconds <= 2_592_000
    ):
        raise invalid_value(
            f"{name}.seconds",
            f"Invalid '{name}.seconds': must be an integer between 3600 and 2592000.",
        )
    return seconds


# -- routes ---------------------------------------------------------------------------------


def _routes(holder: _Holder) -> list[Route]:
    def file_or_404(service: Service, file_id: str) -> FileRecord:
        record = service.store.get_file(file_id)
        if record is None:
            raise not_found(f"No such File object: {file_id}", param="id")
        return record

    def batch_or_404(service: Service, batch_id: str) -> BatchRecord:
        record = service.store.get_batch(batch_id)
        if record is None:
            raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        return record

    async def create_file(request: Request) -> Response:
        service = holder.get()
        store = service.store
        tmp = store.new_tmp_path()
        try:
            upload = await receive_upload(
                request.headers.get("content-type"),
                request.stream(),
                tmp,
                service.config.max_upload_bytes,
            )
            if upload.too_large:
                raise APIError(
                    413,
                    f"File is too large: {upload.size} bytes. The maximum size is "
                    f"{service.config.max_upload_bytes} bytes.",
                    param="file",
                    code="file_too_large",
                )
            purpose = upload.fields.get("purpose")
            if not purpose:
                raise missing_param("purpose")
            if purpose != "batch":
                raise invalid_value(
                    "purpose",
                    f"Invalid value for 'purpose': '{purpose[:64]}'. This local Batch API "
                    "supports only 'batch'.",
                )
            if upload.file_field != "file" or not tmp.exists():
                raise missing_param("file")
            suffix = PurePosixPath(upload.filename or "").suffix.lower()
            if suffix and suffix != ".jsonl":
                # OpenAI's answer to `notes.txt` with purpose=batch, as quoted in users'
                # reports; a name without an extension (a client's default) is let through.
                raise APIError(400, "Invalid file format for Batch API. Must be .jsonl")
            ttl = _expires_after(
                {
                    "anchor": upload.fields["expires_after[anchor]"],
                    "seconds": upload.fields.get("expires_after[seconds]"),
                }
                if "expires_after[anchor]" in upload.fields
                else None,
                "expires_after",
            )
            now = service.clock.timestamp()
            record = FileRecord(
                id=new_file_id(),
                bytes=upload.size,
                created_at=now,
                filename=upload.filename or "upload.jsonl",
                purpose="batch",
                expires_at=now + (ttl if ttl is not None else BATCH_FILE_TTL),
            )
            store.add_file(record, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        return json_response(record.to_wire())

    async def list_files(request: Request) -> Response:
        service = holder.get()
        limit = _int_param(request, "limit", 10_000, 1, 10_000)
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid_value("order", "Invalid value for 'order': must be 'asc' or 'desc'.")
        after = request.query_params.get("after") or None
        purpose = request.query_params.get("purpose") or None
        page = service.store.list_files(
            after=after, limit=limit, order="asc" if order == "asc" else "desc", purpose=purpose
        )
        if page is None:
            raise invalid_value("after", f"Invalid value for 'after': no file '{after}'.")
        records, has_more = page
        data = [r.to_wire() for r in records]
        return json_response(
            {
                "object": "list",
                "data": data,
                # The spec makes these required strings, so an empty page says "".
                "first_id": data[0]["id"] if data else "",
                "last_id": data[-1]["id"] if data else "",
                "has_more": has_more,
            }
        )

    async def retrieve_file(request: Request) -> Response:
        service = holder.get()
        return json_response(file_or_404(service, request.path_params["file_id"]).to_wire())

    async def delete_file(request: Request) -> Response:
        service = holder.get()
        file_id = request.path_params["file_id"]
        file_or_404(service, file_id)
        service.store.delete_file(file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    async def file_content(request: Request) -> Response:
        service = holder.get()
        record = file_or_404(service, request.path_params["file_id"])
        path = service.store.content_path(record.id)
        if not path.exists():
            raise not_found(f"No such File object: {record.id}", param="id")
        return FileResponse(path, media_type="application/octet-stream")

    async def create_batch(request: Request) -> Response:
        service = holder.get()
        body = await _json_body(request)
        # OpenAI's answer as the tester saw it (not found in a public copy): the fields are
        # CreateBatchRequest's properties in its OpenAPI spec.
        unknown = first_unknown(body, CREATE_BATCH_FIELDS)
        if unknown is not None:
            raise bad_request(f"Unrecognized request argument supplied: {unknown}")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if body.get(name) is None:
                raise missing_param(name)
        input_file_id = body["input_file_id"]
        endpoint = body["endpoint"]
        window = body["completion_window"]
        if not isinstance(input_file_id, str):
            raise invalid_value("input_file_id", "Invalid 'input_file_id': expected a string.")
        if endpoint not in SUPPORTED_ENDPOINTS:
            known = endpoint in OPENAI_ENDPOINTS
            raise invalid_value(
                "endpoint",
                f"Invalid value for 'endpoint': {str(endpoint)[:100]!r}. "
                + ("This local Batch API does not support it; " if known else "")
                + f"supported: {', '.join(SUPPORTED_ENDPOINTS)}.",
            )
        if window != "24h":
            raise invalid_value(
                "completion_window",
                f"Invalid value for 'completion_window': {str(window)[:20]!r}. Only '24h' is "
                "supported.",
            )
        metadata = _metadata(body.get("metadata"))
        output_ttl = _expires_after(body.get("output_expires_after"), "output_expires_after")
        source = service.store.get_file(input_file_id)
        if source is None:
            raise not_found(f"No such File object: {input_file_id}", param="input_file_id")
        if source.purpose != "batch":
            raise invalid_value(
                "input_file_id",
                f"The input file {input_file_id} has purpose '{source.purpose}'; a batch needs "
                "a file uploaded with purpose 'batch'.",
            )
        now = service.clock.timestamp()
        record = BatchRecord(
            id=new_batch_id(),
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window="24h",
            created_at=now,
            expires_at=now + 86400,
            metadata=metadata,
            output_expires_after=output_ttl,
        )
        service.store.add_batch(record)
        service.engine.submit(record.id)
        return json_response(record.to_wire())

    async def list_batches(request: Request) -> Response:
        service = holder.get()
        limit = _int_param(request, "limit", 20, 1, 100)
        after = request.query_params.get("after") or None
        records, has_more = service.store.list_batches(after=after, limit=limit)
        data = [r.to_wire() for r in records]
        page: dict[str, Any] = {"object": "list", "data": data, "has_more": has_more}
        if data:
            page["first_id"] = data[0]["id"]
            page["last_id"] = data[-1]["id"]
        return json_response(page)

    async def retrieve_batch(request: Request) -> Response:
        service = holder.get()
        return json_response(batch_or_404(service, request.path_params["batch_id"]).to_wire())

    async def cancel_batch(request: Request) -> Response:
        service = holder.get()
        batch_id = request.path_params["batch_id"]
        batch_or_404(service, batch_id)
        try:
            record = service.engine.cancel(batch_id)
        except CancelRefused as refused:
            raise APIError(
                409,
                f"Cannot cancel a batch with status '{refused.record.status}'.",
                headers={"x-should-retry": "false"},
            ) from None
        return json_response(record.to_wire())

    async def list_models(request: Request) -> Response:
        holder.get()
        return json_response({"object": "list", "data": [_model(m) for m in known_models()]})

    async def retrieve_model(request: Request) -> Response:
        service = holder.get()
        model_id = request.path_params["model"]
        if service.rules is not None and service.rules.table.get(model_id) is None:
            raise APIError(
                404,
                f"The model '{model_id}' does not exist",
                param="model",
                code="model_not_found",
            )
        return json_response(_model(model_id))

    async def get_faults(request: Request) -> Response:
        return json_response(holder.get().faults.model_dump(mode="json"))

    async def set_faults(request: Request) -> Response:
        service = holder.get()
        body = await _json_body(request)
        base = service.faults.model_dump() if request.method == "PATCH" else {}
        try:
            faults = FaultConfig.model_validate({**base, **body})
        except ValidationError as exc:
            raise bad_request(
                f"Invalid fault configuration: {exc.errors(include_url=False)}"
            ) from None
        service.set_faults(faults)
        return json_response(faults.model_dump(mode="json"))

    async def health(request: Request) -> Response:
        holder.get()
        return json_response({"status": "ok"})

    return [
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/_local/faults", get_faults, methods=["GET"]),
        Route("/_local/faults", set_faults, methods=["PUT", "POST", "PATCH"]),
        Route("/_local/health", health, methods=["GET"]),
    ]


# -- middleware -----------------------------------------------------------------------------


class _Guard:
    """Outermost layer: the catch-all, bearer auth, and API-level fault injection."""

    def __init__(self, app: ASGIApp, holder: _Holder, api_key: str | None) -> None:
        self.app = app
        self.holder = holder
        self._key = None if api_key is None else api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Every answer names its request, as OpenAI's do (the SDK's `_request_id`).
                request_id = b"req_" + secrets.token_hex(16).encode()
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self._handle(scope, receive, tracking_send)
        except ClientDisconnect:
            log.info("client went away during %s %s", scope.get("method"), scope.get("path"))
        except Exception:
            log.exception(
                "unexpected error answering %s %s", scope.get("method"), scope.get("path")
            )
            if not started:
                response = json_response(
                    error_body(
                        "The local Batch API hit an unexpected error; see its log.",
                        type="server_error",
                    ),
                    500,
                )
                await response(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == "/_local/health":
            await self.app(scope, receive, send)
            return
        guarded_api = path == "/v1" or path.startswith("/v1/")
        if guarded_api or path.startswith("/_local/"):
            problem = self._auth_problem(scope)
            if problem is not None:
                await error_response(problem)(scope, receive, send)
                return
        if guarded_api and self.holder.service is not None:
            service = self.holder.service
            fault = service.dice.roll(service.faults)
            if fault is not None:
                if fault.delay_seconds:
                    await asyncio.sleep(fault.delay_seconds)
                if fault.status_code == 429:
                    error = APIError(
                        429,
                        "Rate limit reached for requests (injected fault). Please try again later.",
                        type="requests",
                        code="rate_limit_exceeded",
                        headers=fault.headers,
                    )
                    await error_response(error)(scope, receive, send)
                    return
                if fault.status_code == 500:
                    error = APIError(
                        500,
                        "The server had an error while processing your request (injected fault).",
                        type="server_error",
                        headers=fault.headers,
                    )
                    await error_response(error)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _auth_problem(self, scope: Scope) -> APIError | None:
        header = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value
                break
        if not header:
            return APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return APIError(401, "Incorrect API key provided.", code="invalid_api_key")
        if self._key is not None and not hmac.compare_digest(token.strip(), self._key):
            return APIError(401, "Incorrect API key provided.", code="invalid_api_key")
        return None


def create_app(config: ServerConfig) -> Starlette:
    """The ASGI app of a local Batch API server; its lifespan opens the data dir and runs the engine."""
    holder = _Holder()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            service = Service(config)
        except Exception as exc:
            app.state.startup_error = exc
            raise
        service.start()
        holder.service = service
        app.state.service = service
        try:
            yield
        finally:
            holder.service = None
            service.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            return error_response(invalid_url(request.method, request.url.path))
        return error_response(APIError(exc.status_code, str(exc.detail)))

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return error_response(exc)

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: http_error,
        APIError: api_error,
    }
    app = Starlette(routes=_routes(holder), exception_handlers=handlers, lifespan=lifespan)
    key = None if config.api_key is None else config.api_key.get_secret_value()
    app.add_middleware(_Guard, holder=holder, api_key=key)
    app.state.config = config
    return app
