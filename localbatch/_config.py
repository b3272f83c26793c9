"""Server and fault-injection settings: two frozen pydantic models, loadable from TOML or JSON."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from localbatch._defaults import (
    DEFAULT_API_KEY,
    DEFAULT_PORT,
    MAX_EMBEDDING_INPUTS_PER_BATCH,
    MAX_LINES_PER_BATCH,
    MAX_UPLOAD_BYTES,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "MAX_EMBEDDING_INPUTS_PER_BATCH",
    "MAX_LINES_PER_BATCH",
    "MAX_UPLOAD_BYTES",
    "ExecutorName",
    "FaultConfig",
    "ServerConfig",
]

ExecutorName = Literal["simulate", "forward"]

_Rate = Field(default=0.0, ge=0.0, le=1.0)


class FaultConfig(BaseModel):
    """Faults to inject, all off by default; every draw is seeded and deterministic.

    Per-line rates are probabilities that one request line ends a given way; they must sum to
    at most 1. Batch-level faults apply to every batch validated or executed while they are set.
    API-level faults apply to `/v1` routes only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- per request line -------------------------------------------------------------------
    line_500_rate: float = _Rate
    """HTTP 500 `server_error` in the error file (`response.status_code` 500, `error` null)."""
    line_429_rate: float = _Rate
    """HTTP 429 `rate_limit_exceeded` in the error file."""
    line_timeout_rate: float = _Rate
    """`response: null, error: {"code": "request_timeout"}` in the error file."""
    line_invalid_json_rate: float = _Rate
    """A 200 answer whose content is not JSON (cut off mid-object)."""
    line_schema_violation_rate: float = _Rate
    """A 200 answer whose JSON violates the request's json_schema."""
    line_refusal_rate: float = _Rate
    """A 200 refusal (chat: `message.refusal` set and `content` null; responses: a refusal item)."""
    line_length_rate: float = _Rate
    """A 200 answer cut off by the token limit (`finish_reason: "length"` / `incomplete`)."""
    line_delay_seconds: float = Field(default=0.0, ge=0.0)
    """Real seconds spent on each request line: slows batches so tests can watch or cancel them."""

    # -- per batch --------------------------------------------------------------------------
    batch_fail_validation: bool = False
    """Every batch fails validation (status `failed`, code `invalid_request`)."""
    batch_enqueued_token_limit: int | None = Field(default=None, ge=0)
    """A batch whose estimated input tokens exceed this fails with `token_limit_exceeded`."""
    batch_expire_after_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    """Expire each batch after this fraction of its lines ran: the rest are `batch_expired`."""
    batch_all_lines_fail: bool = False
    """Every line fails with HTTP 500: the batch completes with no output file, only errors."""

    # -- per API call (/v1 routes only) -----------------------------------------------------
    api_429_rate: float = _Rate
    """Answer this share of API calls with 429 (and retry-after headers)."""
    api_500_rate: float = _Rate
    """Answer this share of API calls with 500 (and retry-after headers)."""
    api_retry_after_seconds: float = Field(default=0.05, ge=0.0)
    """The wait advertised in `retry-after` / `retry-after-ms` on injected 429/500 answers."""
    api_delay_seconds: float = Field(default=0.0, ge=0.0)
    """Delay this many seconds before answering (slow API)."""
    api_delay_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of API calls that get `api_delay_seconds`."""

    @model_validator(mode="after")
    def _rates_are_probabilities(self) -> FaultConfig:
        line = (
            self.line_500_rate
            + self.line_429_rate
            + self.line_timeout_rate
            + self.line_invalid_json_rate
            + self.line_schema_violation_rate
            + self.line_refusal_rate
            + self.line_length_rate
        )
        if line > 1.0 + 1e-9:
            raise ValueError(f"per-line fault rates sum to {line:.3f}, more than 1")
        if self.api_429_rate + self.api_500_rate > 1.0 + 1e-9:
            raise ValueError("api_429_rate + api_500_rate is more than 1")
        return self

    @classmethod
    def from_file(cls, path: Path) -> FaultConfig:
        """Load a fault configuration from a `.toml` or `.json` file.

        A TOML file may hold the fields at top level or under a `[faults]` table.
        """
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        if isinstance(data, dict) and isinstance(data.get("faults"), dict):
            data = data["faults"]
        return cls.model_validate(data)


class ServerConfig(BaseModel):
    """Everything a local Batch API server needs; frozen so a running server cannot drift."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    """Metadata (SQLite) and file contents live here; a new server on the same dir resumes."""
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """0 picks a free port (see `LocalBatchServer.base_url`)."""
    api_key: SecretStr | None = SecretStr(DEFAULT_API_KEY)
    """The bearer key clients must send; None takes any key (a request without one is still
    refused, as OpenAI refuses it)."""

    executor: ExecutorName = "simulate"
    simulate_workers: int = Field(default=0, ge=0)
    """Simulator processes for big batches: 0 is one per usable core, 1 the engine's thread."""
    seed: int = 0
    """Seeds the simulator and every fault draw."""

    time_scale: float = Field(default=1.0, gt=0.0)
    """Virtual seconds per real second: 86400 makes a `24h` window last one real second."""
    min_validating_seconds: float = Field(default=0.0, ge=0.0)
    """Real seconds a batch stays at least in `validating`."""
    min_in_progress_seconds: float = Field(default=0.0, ge=0.0)
    """Real seconds a batch stays at least in `in_progress`."""
    min_finalizing_seconds: float = Field(default=0.0, ge=0.0)
    """Real seconds a batch stays at least in `finalizing`."""
    min_cancelling_seconds: float = Field(default=0.0, ge=0.0)
    """Real seconds a batch stays at least in `cancelling`."""

    faults: FaultConfig = FaultConfig()

    forward_url: str | None = None
    """Base URL of an OpenAI-compatible upstream, e.g. `http://127.0.0.1:8000/v1` (vLLM)."""
    forward_api_key: SecretStr | None = None
    forward_concurrency: int = Field(default=8, ge=1, le=1024)
    forward_timeout_seconds: float = Field(default=600.0, gt=0.0)
    forward_max_retries: int = Field(default=2, ge=0)
    """Retries of one line on connection errors, 429 and 5xx from the upstream."""
    forward_model: str | None = None
    """Replace each line's `body.model` with this upstream model name (the batch keeps its own)."""

    lenient: bool = False
    """Run every line as given. By default each line is first checked as OpenAI checks it
    (the models of the capabilities file, their parameters, strict schemas, context windows)
    and refused with OpenAI's 400/404 answer; turn it off for self-hosted upstreams."""

    max_upload_bytes: int = Field(default=MAX_UPLOAD_BYTES, ge=1)
    """Uploads larger than this get HTTP 413."""
    max_batch_input_bytes: int = Field(default=MAX_UPLOAD_BYTES, ge=1)
    """An input file larger than this fails validation (`file_too_large`)."""
    max_lines_per_batch: int = Field(default=MAX_LINES_PER_BATCH, ge=1)
    """More lines than this fail validation (`too_many_tasks`)."""
    max_embedding_inputs_per_batch: int = Field(default=MAX_EMBEDDING_INPUTS_PER_BATCH, ge=1)
    """An embeddings batch with more inputs than this, over all its lines, fails validation."""
    max_concurrent_batches: int = Field(default=2, ge=1, le=64)
    """Batches executed at the same time; others wait in `validating`."""

    log_level: Literal["critical", "error", "warning", "info", "debug"] = "warning"

    @model_validator(mode="after")
    def _forward_needs_url(self) -> ServerConfig:
        if self.executor == "forward" and not self.forward_url:
            raise ValueError("executor 'forward' needs forward_url")
        return self
