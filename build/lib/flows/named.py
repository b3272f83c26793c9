"""The named jobs that `prefect.yaml` deploys: nightly summarization and bulk extraction.

Each takes a job file; `mode="submit"` builds and submits and returns at once (the scheduled
`collect` deployment finishes the run), `mode="run"` waits for the results.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from flows.run import run
from flows.submit import submit
from schemas.job import load_job


def _start(job_file: str, mode: Literal["submit", "run"], full: bool) -> dict[str, Any]:
    job = load_job(job_file)
    if mode == "run":
        return run(job, full=full)
    return {"run_dir": submit(job, full=full)}


@flow(name="nightly_summarization")
def nightly_summarization(
    job_file: str = "data/jobs/nightly_summary.toml",
    mode: Literal["submit", "run"] = "submit",
    full: bool = False,
) -> dict[str, Any]:
    """Summarize what is new or changed in the job's source since the last night."""
    return _start(job_file, mode, full)


@flow(name="bulk_extraction")
def bulk_extraction(
    job_file: str = "data/jobs/invoices.toml",
    mode: Literal["submit", "run"] = "submit",
    full: bool = False,
) -> dict[str, Any]:
    """Extract typed records from every document of a large corpus."""
    return _start(job_file, mode, full)
