"""A run whose shards are downloaded and wait to be parsed, as the parse tests build it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.job import JobSpec
from schemas.manifest import RunManifest, ShardRecord


def summary_job(root: Path, name: str, **fields: Any) -> JobSpec:
    """A DocumentSummary job reading `root/docs` and writing `root/out`."""
    return JobSpec.model_validate(
        {
            "name": name,
            "source": {"uri": str(root / "docs")},
            "output": str(root / "out"),
            "model": "gpt-4.1-mini",
            "system_prompt": "Summarize.",
            "output_schema": "schemas.summary:DocumentSummary",
            "params": {"max_output_tokens": 600},
            **fields,
        }
    )


def new_run(job: JobSpec, run_id: str, *, backend: str, max_attempts: int) -> RunManifest:
    """The manifest of `job`'s run, in progress, with no shards yet."""
    return RunManifest(
        run_id=run_id,
        job_name=job.name,
        job_fingerprint=job.fingerprint(),
        job=job.model_dump(mode="json"),
        run_dir=str(Path(job.output) / "runs" / run_id),
        output=job.output,
        backend=backend,
        status="in_progress",
        max_attempts=max_attempts,
    )


def downloaded_shard(
    data: Path,
    s: int,
    job: JobSpec,
    requests: int,
    *,
    batch_status: str,
    attempt: int = 1,
    batch_errors: list[dict[str, Any]] | None = None,
    output_uri: str | None = None,
    error_uri: str | None = None,
) -> ShardRecord:
    """Shard `s`, its index at `data/shard-{s}.index.parquet`, with its batch downloaded."""
    return ShardRecord(
        key=f"a{attempt}/shard-{s:05d}",
        attempt=attempt,
        shard_id=f"shard-{s:05d}",
        uri=str(data / f"shard-{s}.jsonl"),
        index_uri=str(data / f"shard-{s}.index.parquet"),
        sha256="0" * 64,
        requests=requests,
        bytes=0,
        input_tokens=700 * requests,
        model=job.model,
        endpoint=job.endpoint,
        state="downloaded",
        batch_id=f"batch_{s}",
        batch_status=batch_status,
        batch_errors=batch_errors or [],
        output_uri=output_uri,
        error_uri=error_uri,
    )
