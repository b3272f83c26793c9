"""The rows overnight writes: results, errors and costs. Analysts rely on these columns.

Each model is the documented, versioned shape of a parquet table; `tasks/tables.py` turns them
into polars schemas, and a test pins those schemas so columns do not change by accident.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

ErrorStage = Literal["load", "build", "api", "validation"]


class IdentityColumns(BaseModel):
    """Who a row belongs to and what it cost; shared by results and errors."""

    run_id: str
    job: str
    job_fingerprint: str
    run_date: date
    document_id: str
    source_uri: str
    content_sha256: str | None
    chunk_index: int | None
    chunk_count: int | None
    custom_id: str | None
    batch_id: str | None
    attempt: int | None
    model: str | None
    """The model as the API returned it (a dated snapshot), else the model requested."""
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: float
    """Batch price of this request from the usage the API returned."""
    simulated: bool
    """True when overnight's simulator answered (the embedded local Batch API, or a local one
    whose answer says so): not a model's output, and its cost is only what OpenAI would charge."""
    written_at: datetime


class ResultRow(IdentityColumns):
    """A validated output. The job schema's fields follow as typed columns."""

    raw_output: str


class ErrorRow(IdentityColumns):
    """A request or document that did not produce a result, and why."""

    stage: ErrorStage
    code: str
    message: str
    retryable: bool
    """True when a later run (or a higher max_attempts) may still succeed."""


class CostRow(BaseModel):
    """What one run cost per model, beside what the standard API would have charged."""

    run_id: str
    job: str
    job_fingerprint: str
    run_date: date
    model: str
    simulated: bool
    """True for the requests overnight's simulator answered (see results.simulated)."""
    requests: int
    succeeded: int
    failed: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    batch_cost_usd: float
    standard_cost_usd: float
    savings_usd: float
    estimated_cost_usd: float | None
    pricing_as_of: str
    written_at: datetime


RESERVED_RESULT_COLUMNS: frozenset[str] = frozenset(ResultRow.model_fields)
