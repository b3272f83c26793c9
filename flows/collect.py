"""Collect: move every open run under an output location forward; safe to run at any time.

Scheduled every few minutes. Each call polls the batches that are due, downloads finished
ones, validates their lines, resubmits retryable lines, and writes the parquet tables of runs
that are complete. One run that fails is recorded and reported; the others go on.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.lifecycle import collect_output
from tasks.steps import PrefectRuntime


class CollectFailed(RuntimeError):
    """At least one run could not be moved forward; the others were."""


@flow(name="collect", log_prints=True)
def collect(output: str, embedded_wait_seconds: float = 300.0) -> list[dict[str, Any]]:
    """Advance every open run under `output`; return each run's id, status and any problem.

    The flow run fails (after every run had its turn) when one of the runs failed, so the
    Prefect UI shows it.
    """
    outcomes = collect_output(
        output, runtime=PrefectRuntime(), embedded_wait_seconds=embedded_wait_seconds
    )
    failed = [o for o in outcomes if o.problem]
    if failed:
        raise CollectFailed("; ".join(f"run {o.run_id}: {o.problem}" for o in failed))
    return [o.as_dict() for o in outcomes]
