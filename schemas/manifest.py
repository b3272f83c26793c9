"""The run manifest: the explicit, persisted state of one run, written atomically after each step.

A run owns a folder `<output>/runs/<run_id>/`. Its shards go through
`built → uploading → uploaded → creating → created → terminal → downloaded → parsed`; a shard
that waits for enqueued-token room stays `uploaded`. `creating` is recorded *before* the batch
is created, so a process killed between "create" and "record" is reconciled against the
server's batch list by metadata instead of creating a second batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.build import ShardInfo

EMBEDDED = "embedded"
"""The backend name of the embedded local Batch API (see `tasks.gateway`)."""
OPENAI = "https://api.openai.com/v1"
"""The backend name of OpenAI's own Batch API (its base URL)."""

ShardState = Literal[
    "built", "uploading", "uploaded", "creating", "created", "terminal", "downloaded", "parsed"
]
RunStatus = Literal["submitting", "in_progress", "done", "cancelled"]
BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
TERMINAL_BATCH_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})

# Batch metadata keys: how a batch on the server is tied back to its run and shard.
META_RUN = "overnight_run_id"
META_SHARD = "overnight_shard"
META_SHA = "overnight_shard_sha256"
META_JOB = "overnight_job"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ShardRecord(ShardInfo):
    """One shard (as built) of one attempt, and where it is in its lifecycle."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    key: str
    """Unique within the run: `a<attempt>/<shard_id>` (map stage) or `r<attempt>/<shard_id>`
    (reduce stage); also sent as batch metadata."""
    attempt: int
    state: ShardState = "built"
    file_id: str | None = None
    batch_id: str | None = None
    batch_status: BatchStatus | None = None
    creating_since: datetime | None = None
    request_counts: dict[str, int] = Field(default_factory=dict)
    batch_errors: list[dict[str, Any]] = Field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    output_uri: str | None = None
    error_uri: str | None = None
    results: int = 0
    errors: int = 0
    retryable: int = 0
    parts: int = 0
    """How many parquet parts (of at most PART_ROWS judged lines each) parsing wrote."""
    submitted_at: datetime | None = None
    """When the batch was created (this machine's clock): its age decides the polling."""
    running_since: datetime | None = None
    """When a poll first saw the batch `in_progress`."""
    next_poll_at: datetime | None = None
    """When the batch is next due for a poll (see `tasks.polling`)."""
    polls: int = 0
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def in_flight(self) -> bool:
        return self.state in ("creating", "created")


class RunCounts(BaseModel):
    """Per-run counters: inputs must equal results + errors before a run is done."""

    model_config = ConfigDict(extra="forbid")

    documents_seen: int = 0
    documents_skipped: int = 0
    documents_rejected: int = 0
    requests: int = 0
    """Requests built from the documents (the map stage, when chunk outputs are reduced)."""
    reduce_requests: int = 0
    """Reduce requests planned so far: one per document split in several requests."""
    results: int = 0
    errors: int = 0
    chunks: int = 0
    """Rows of the `chunks` table (jobs whose chunk outputs are reduced)."""
    carried: int = 0
    """Chunk answers of split documents taken from an earlier run of the job version instead
    of being sent again (that run paid for them); they are among the results (or chunks)."""
    input_tokens_estimated: int = 0


class RunOptions(BaseModel):
    """The options a run was started with that change what it builds: a resume keeps them."""

    model_config = ConfigDict(extra="forbid")

    full: bool = False
    """Every document is processed, whatever the ledger says earlier runs did (`--full`)."""
    retry_failed: bool = False
    """Documents that earlier runs ended with a terminal error are tried again."""


CancelOutcome = Literal["cancelled", "already_finished", "not_submitted", "failed"]


class BatchCancel(BaseModel):
    """What asking to cancel one shard's batch did."""

    model_config = ConfigDict(extra="forbid")

    shard: str
    batch_id: str | None = None
    outcome: CancelOutcome
    """`cancelled` (the API is stopping it), `already_finished` (it ended, or is finalizing,
    first: its results are collected and billed), `not_submitted` (it will never be sent),
    or `failed` (the API call failed: cancel again)."""
    batch_status: str | None = None
    """The batch's status as the API reported it."""
    message: str = ""


class RunManifest(BaseModel):
    """Everything needed to resume, collect or audit a run, from any machine."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    job_name: str
    job_fingerprint: str
    job: dict[str, Any]
    """The job spec as submitted (no secrets ever live in a job spec)."""
    run_dir: str
    output: str
    status: RunStatus = "submitting"
    backend: str = ""
    """Which Batch API the run's batches live on: `EMBEDDED`, `OPENAI` or another base URL."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    max_attempts: int = 3
    rejected_uri: str | None = None
    carried_uri: str | None = None
    """The carried chunk answers, as a results part (see `RunCounts.carried`)."""
    estimate_usd: float | None = None
    estimate_assumes: str = ""
    counts: RunCounts = Field(default_factory=RunCounts)
    shards: list[ShardRecord] = Field(default_factory=list)
    cancel_requested: bool = False
    cancels: list[BatchCancel] = Field(default_factory=list)
    """What the latest `cancel` did to each shard's batch."""
    options: RunOptions = Field(default_factory=RunOptions)
    """The build options the run was started with (manifests from before they were recorded:
    the defaults)."""
    tables: dict[str, str] = Field(default_factory=dict)
    """Final parquet files written for the run: table name → URI."""
    reduce_oversized: list[str] = Field(default_factory=list)
    """Parquet files of the split documents whose chunk answers do not fit one reduce
    request (`errors` rows, one per document), one file per planning wave that had any."""
    notes: list[str] = Field(default_factory=list)
    problem: str | None = None
    """Why the last attempt to move the run forward failed; cleared by the next success."""
    problem_at: datetime | None = None

    def shard(self, key: str) -> ShardRecord:
        for record in self.shards:
            if record.key == key:
                return record
        raise KeyError(key)

    @property
    def current_attempt(self) -> int:
        return max((s.attempt for s in self.shards), default=1)

    @property
    def is_open(self) -> bool:
        return self.status in ("submitting", "in_progress")
