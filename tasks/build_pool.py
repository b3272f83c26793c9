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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from schemas.job import JobSpec
from tasks.build import BuildError, PartitionResult, Progress, ShouldProcess, build_partition
from tasks.failpoints import failpoint
from tasks.partitions import PartitionPlan
from tasks.processes import exit_with_parent, usable_cores

_POLL_SECONDS = 0.2
_ABORT_WAIT_SECONDS = 5.0
"""How long a stopped build waits for each worker it terminated to exit."""
_worker: dict[str, Any] = {}


def build_workers(workers: int | None = None) -> int:
    """The worker count: `workers`, else `OVERNIGHT_BUILD_WORKERS`, else the usable cores."""
    if workers is not None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        return workers
    from overnight.settings import get_settings

    return get_settings().build_workers or usable_cores()


class PartitionRunner:
    """Builds a plan's partitions where the settings say: here, a local pool, or Dask.

    `start()` (called when the listing turns out to need partitions, before it is spilled)
    starts the local workers and warms them up (imports, the model's tokenizer) while this
    process goes on listing.
    """

    def __init__(
        self,
        job: JobSpec,
        *,
        workers: int | None = None,
        dask_address: str | None = None,
        should_process: ShouldProcess | None = None,
        progress: Progress | None = None,
    ) -> None:
        if dask_address is None:
            from overnight.settings import get_settings

            dask_address = get_settings().dask_address
        self.job = job
        self.dask_address = dask_address or None
        self.workers = 1 if self.dask_address else build_workers(workers)
        self.should_process = should_process
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None
        self._done_docs: multiprocessing.Queue[int] | None = None

    def start(self) -> None:
        """Start (and warm up) the local worker processes, if there are to be any."""
        if self._pool is not None or self.workers == 1:
            return
        context = multiprocessing.get_context("spawn")
        self._done_docs = context.Queue() if self.progress else None
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self._done_docs, self.should_process, os.getpid()),
        )
        for _ in range(self.workers):  # spawn starts one process per submit while none is idle
            self._pool.submit(warm_up, self.job)

    def run(
        self, run_dir: str, plan: PartitionPlan, *, dry_run: bool = False
    ) -> list[PartitionResult]:
        """Build every partition of `plan`; return their results in partition order.

        `dry_run` builds the shards' indexes only (`estimate`); it, and a plan of one
        partition, always run on this machine."""
        job, should_process, progress = self.job, self.should_process, self.progress
        if self.dask_address and not dry_run and plan.count > 1:
            from tasks.cluster_build import run_on_cluster

            return run_on_cluster(
                job,
                run_dir,
                plan,
                address=self.dask_address,
                should_process=should_process,
                progress=progress,
            )
        if self.workers == 1 or plan.count == 1:
            return [
                build_partition(
                    job,
                    run_dir,
                    plan,
                    i,
                    should_process=should_process,
                    progress=progress,
                    dry_run=dry_run,
                )
                for i in range(plan.count)
            ]
        self.start()
        assert self._pool is not None
        return self._run_pool(self._pool, run_dir, plan, dry_run)

    def _run_pool(
        self, pool: ProcessPoolExecutor, run_dir: str, plan: PartitionPlan, dry_run: bool
    ) -> list[PartitionResult]:
        results: dict[int, PartitionResult] = {}
        todo = iter(range(plan.count))
        running: set[Future[PartitionResult]] = set()
        try:
            while True:
                while len(running) < self.workers + 1 and (index := next(todo, None)) is not None:
                    running.add(
                        pool.submit(_build_in_worker, self.job, run_dir, plan, index, dry_run)
                    )
                if not running:
                    break
                finished, running = wait(
                    running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED
                )
                _drain(self._done_docs, self.progress)
                for future in finished:
                    result = future.result()
                    results[result.index] = result
                    failpoint("during-partitioned-build")
            _drain(self._done_docs, self.progress)
        except BrokenProcessPool as exc:
            raise BuildError(f"a build worker process died: {exc}") from exc
        return [results[i] for i in range(plan.count)]

    def close(self, *, abort: bool = False) -> None:
        """Stop the local workers (cancelling what has not started). With `abort` (Ctrl-C, an
        error), the partitions being built are stopped too, not waited for: a build stopped
        part-way is redone from the manifest by the next `collect` or `submit`, as after a kill.
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            if abort:
                workers = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.join(_ABORT_WAIT_SECONDS)
            else:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._done_docs is not None:
            self._done_docs.close()
            self._done_docs = None

    def __enter__(self) -> PartitionRunner:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(abort=kind is not None)


def _drain(done_docs: multiprocessing.Queue[int] | None, progress: Progress | None) -> None:
    if done_docs is None or progress is None:
        return
    while True:
        try:
            progress(done_docs.get_nowait())
        except queue.Empty:
            return


def _init_worker(
    done_docs: multiprocessing.Queue[int] | None,
    should_process: ShouldProcess | None,
    parent: int,
) -> None:
    _worker["progress"] = done_docs.put if done_docs is not None else None
    _worker["should_process"] = should_process
    exit_with_parent(parent)


def warm_up(job: JobSpec) -> int:
    """Load what every partition of `job` needs before the first one: polars, the model's
    tokenizer, and the renderer's output schema (its first build imports the openai client's
    schema helpers, most of a second). For a worker of the local pool, or of a Dask cluster."""
    import polars  # noqa: F401

    from tasks.render import RequestRenderer

    RequestRenderer(job).count("warm up")
    return os.getpid()


def _build_in_worker(
    job: JobSpec, run_dir: str, plan: PartitionPlan, index: int, dry_run: bool = False
) -> PartitionResult:
    progress: Callable[[int], None] | None = _worker["progress"]
    return build_partition(
        job,
        run_dir,
        plan,
        index,
        should_process=_worker["should_process"],
        progress=progress,
        dry_run=dry_run,
    )
