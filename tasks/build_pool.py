"""Build a listing's partitions in parallel: a local process pool, or a Dask cluster.

The local pool has one process per usable core (`OVERNIGHT_BUILD_WORKERS` to choose), started
by the `spawn` method (never `fork`: the caller may hold threads and locks; not `forkserver`
either: its workers are the forkserver's children, and it outlives a killed parent while
they run), and at most
one partition waiting beyond those being built, so memory stays that of `workers` streaming
builds. Processes beat threads here: rendering and the request loop hold the GIL (measured in
benchmarks/build_throughput.py, see the README). Each worker watches its parent and exits
within `PARENT_CHECK_SECONDS` when the parent dies (a SIGKILLed run leaves no builder behind;
the next `collect` or `submit` redoes the build from the manifest).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from schemas.job import JobSpec
from tasks.build import BuildError, PartitionResult, Progress, ShouldProcess, build_partition
from tasks.partitions import PartitionPlan

PARENT_CHECK_SECONDS = 0.5
_POLL_SECONDS = 0.2
_worker: dict[str, Any] = {}


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def build_workers(workers: int | None = None) -> int:
    """The worker count: `workers`, else `OVERNIGHT_BUILD_WORKERS`, else the usable cores."""
    if workers is not None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        return workers
    from overnight.settings import get_settings

    return get_settings().build_workers or usable_cores()


def run_partitions(
    job: JobSpec,
    run_dir: str,
    plan: PartitionPlan,
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    should_process: ShouldProcess | None = None,
    progress: Progress | None = None,
) -> list[PartitionResult]:
    """Build every partition of `plan`; return their results in partition order."""
    if dask_address is None:
        from overnight.settings import get_settings

        dask_address = get_settings().dask_address
    if dask_address:
        from tasks.cluster_build import run_on_cluster

        return run_on_cluster(
            job,
            run_dir,
            plan,
            address=dask_address,
            should_process=should_process,
            progress=progress,
        )
    count = min(build_workers(workers), plan.count)
    if count == 1:
        return [
            build_partition(job, run_dir, plan, i, should_process=should_process, progress=progress)
            for i in range(plan.count)
        ]
    return _run_processes(job, run_dir, plan, count, should_process, progress)


def _run_processes(
    job: JobSpec,
    run_dir: str,
    plan: PartitionPlan,
    workers: int,
    should_process: ShouldProcess | None,
    progress: Progress | None,
) -> list[PartitionResult]:
    context = multiprocessing.get_context("spawn")
    done_docs: multiprocessing.Queue[int] | None = context.Queue() if progress else None
    results: dict[int, PartitionResult] = {}
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(done_docs, should_process),
    )
    try:
        todo = iter(range(plan.count))
        running: set[Future[PartitionResult]] = set()
        while True:
            while len(running) < workers + 1 and (index := next(todo, None)) is not None:
                running.add(pool.submit(_build_in_worker, job, run_dir, plan, index))
            if not running:
                break
            finished, running = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            _drain(done_docs, progress)
            for future in finished:
                result = future.result()
                results[result.index] = result
        _drain(done_docs, progress)
    except BrokenProcessPool as exc:
        raise BuildError(f"a build worker process died: {exc}") from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if done_docs is not None:
            done_docs.close()
    return [results[i] for i in range(plan.count)]


def _drain(done_docs: multiprocessing.Queue[int] | None, progress: Progress | None) -> None:
    if done_docs is None or progress is None:
        return
    while True:
        try:
            progress(done_docs.get_nowait())
        except queue.Empty:
            return


def _init_worker(
    done_docs: multiprocessing.Queue[int] | None, should_process: ShouldProcess | None
) -> None:
    _worker["progress"] = done_docs.put if done_docs is not None else None
    _worker["should_process"] = should_process
    threading.Thread(
        target=_watch_parent, args=(os.getppid(),), name="overnight-parent-watch", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as its parent is gone (it was reparented: spawn makes the
    pool's process the parent)."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(70)


def _build_in_worker(
    job: JobSpec, run_dir: str, plan: PartitionPlan, index: int
) -> PartitionResult:
    progress: Callable[[int], None] | None = _worker["progress"]
    return build_partition(
        job,
        run_dir,
        plan,
        index,
        should_process=_worker["should_process"],
        progress=progress,
    )
