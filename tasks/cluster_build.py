"""Build a listing's partitions as Prefect tasks on a Dask cluster (prefect-dask).

Chosen when `OVERNIGHT_DASK_ADDRESS` (or `build_shards(dask_address=...)`) names a scheduler,
e.g. `tcp://10.0.0.5:8786`. Each partition is one `build_partition_task`, run by
`DaskTaskRunner` on some worker of that cluster; the tasks take and return references (the
run folder, the spilled listing, the partition number; shards written in place), so the
workers need the same code installed and access to the source and the output storage, and
the parent merges their results as it does those of the local pool.

`prefect-dask` is an optional dependency: `pip install 'overnight[dask]'`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE

from schemas.job import JobSpec
from tasks.build import PartitionResult, Progress, ShouldProcess, build_partition
from tasks.partitions import PartitionPlan


@task(name="build_partition", cache_policy=NONE, retries=0)
def build_partition_task(
    job: JobSpec,
    run_dir: str,
    plan: PartitionPlan,
    index: int,
    should_process: ShouldProcess | None,
) -> PartitionResult:
    """Build one partition of the listing into its own shards."""
    return build_partition(job, run_dir, plan, index, should_process=should_process)


def run_on_cluster(
    job: JobSpec,
    run_dir: str,
    plan: PartitionPlan,
    *,
    address: str,
    should_process: ShouldProcess | None = None,
    progress: Progress | None = None,
) -> list[PartitionResult]:
    """Build every partition on the Dask cluster at `address`; results in partition order."""
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError as exc:  # the optional extra is not installed
        raise RuntimeError(
            "OVERNIGHT_DASK_ADDRESS is set but prefect-dask is not installed: "
            "pip install 'overnight[dask]'"
        ) from exc

    # The job, the ledger and the plan stay out of the flow's parameters (Prefect would store
    # them with the flow run): the flow closes over them, each task receives them.
    runner: Any = DaskTaskRunner(address=address)

    @flow(
        name="build-partitions",
        task_runner=runner,
        validate_parameters=False,
        log_prints=False,
    )
    def build_partitions(run_dir: str, partitions: int) -> list[PartitionResult]:
        futures: list[Any] = [
            build_partition_task.submit(job, run_dir, plan, index, should_process)
            for index in range(partitions)
        ]
        results: list[PartitionResult] = []
        for future in futures:
            result: PartitionResult = future.result()
            if progress is not None:
                progress(result.counts.documents_seen)
            results.append(result)
        return results

    results: list[PartitionResult] = build_partitions(run_dir, plan.count)
    return sorted(results, key=lambda r: r.index)
