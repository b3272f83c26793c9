"""The forwarder: each request line goes to an OpenAI-compatible upstream (vLLM, Ollama,
llama.cpp server), a bounded number at a time, and its real answer goes to the output file."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import orjson

from localbatch._execution import Outcome, WorkItem, http_error, injected, timed_out

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class Forwarder:
    """The `forward` executor: `POST <forward_url><endpoint without /v1>` per line."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        concurrency: int,
        timeout_seconds: float,
        max_retries: int,
        model: str | None,
    ) -> None:
        self.url = url.rstrip("/")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.model = model
        headers = {"content-type": "application/json", "user-agent": "overnight-localbatch"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx2.Client(
            headers=headers,
            timeout=httpx2.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
            limits=httpx2.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            ),
            trust_env=False,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="localbatch-forward"
        )

    @property
    def chunk_size(self) -> int:
        return self.concurrency * 2

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def execute(self, items: Sequence[WorkItem]) -> list[Outcome]:
        return list(self._pool.map(self.run, items))

    def run(self, item: WorkItem) -> Outcome:
        forced = injected(item)
        if forced is not None:
            return forced
        path = item.url.removeprefix("/v1")
        body = dict(item.body)
        if self.model:
            body["model"] = self.model
        payload = orjson.dumps(body)
        attempt = 0
        while True:
            try:
                response = self._client.post(self.url + path, content=payload)
            except httpx2.TimeoutException:
                if attempt >= self.max_retries:
                    return timed_out()
            except httpx2.TransportError as exc:
                if attempt >= self.max_retries:
                    return http_error(
                        502,
                        f"The upstream model server could not be reached ({type(exc).__name__}).",
                        type="server_error",
                        code="upstream_unreachable",
                    )
            else:
                if response.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
                    return _outcome(response.status_code, response.content, item.model)
            attempt += 1
            time.sleep(min(0.25 * 2**attempt, 4.0))


def _outcome(status_code: int, content: bytes, model: str) -> Outcome:
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        text = content[:2000].decode("utf-8", "replace")
        if status_code == 200:
            status_code = 502
        return http_error(
            status_code,
            f"The upstream answered with a body that is not a JSON object: {text!r}",
            type="server_error",
            code="upstream_invalid_response",
        )
    if status_code != 200 and not isinstance(body.get("error"), dict):
        message = body.get("error") or body.get("detail") or body.get("message") or str(body)
        body = {
            "error": {
                "message": str(message),
                "type": "upstream_error",
                "param": None,
                "code": None,
            }
        }
    outcome = Outcome(status_code=status_code, body=body)
    usage = body.get("usage")
    if status_code == 200 and isinstance(usage, dict):
        prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
        completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
        in_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        out_details = (
            usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
        )
        outcome.input_tokens = prompt if isinstance(prompt, int) else 0
        outcome.output_tokens = completion if isinstance(completion, int) else 0
        if isinstance(in_details, dict) and isinstance(in_details.get("cached_tokens"), int):
            outcome.cached_tokens = in_details["cached_tokens"]
        if isinstance(out_details, dict) and isinstance(out_details.get("reasoning_tokens"), int):
            outcome.reasoning_tokens = out_details["reasoning_tokens"]
    return outcome
