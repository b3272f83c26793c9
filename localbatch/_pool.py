"""The simulate executor on every core: a pool of worker processes, started when work is big.

The simulator is pure Python and holds the GIL, so threads cannot share its work; processes
can. Chunks of at least `POOL_MIN_LINES` lines are cut into pieces and run by `spawn`ed
workers, each a `Simulator` with the server's seed; smaller chunks (and every chunk until the
workers have started) run in the engine's thread, so a small batch never waits for a process
to start. Workers get each line as read (no pickled request bodies) and send back each body
already serialized, which the engine writes as is.

Answers do not depend on how many workers ran, or whether any did: the only state a simulator
keeps across lines is the prompt cache (which prefixes this server has seen), and a worker only
computes a prompt's prefix keys; the server settles them against its one cache in line order
and writes the result into the answer's usage. A worker exits when the server dies, and a
worker that dies takes only its chunk back to the engine's thread.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson

from localbatch._execution import Outcome, Pending, WorkItem
from localbatch._prompts import PromptCache
from localbatch._simulate import Simulator, set_cached_usage

log = logging.getLogger("localbatch")

POOL_MIN_LINES = 128
"""Smaller chunks run in the engine's thread: shipping them costs more than it saves."""
POOL_MIN_BYTES = POOL_MIN_LINES * 1024
"""Input files from this size start the workers as they are validated (lines are ~1 KB+)."""
POOL_CHUNK = 512
"""Lines the engine reads at a time when a pool may run them."""
_CLOSE_WAIT_SECONDS = 10.0
"""How long closing waits for a pool that is still starting to stop."""
_PIECE_LINES = 64
"""Lines per task sent to a worker: enough to amortize the hop, small enough to balance."""

_Row = tuple[int, str, str, str, str, int, Any, bytes]
_Result = tuple[int | None, dict[str, Any] | None, bytes | None, Any, int, int, int, int, list[Any]]


class _DeferredCache(PromptCache):
    """A worker's prompt cache: keeps each prompt's prefix keys for the server to settle."""

    def __init__(self) -> None:
        super().__init__(max_entries=0)
        self.pending: list[tuple[int, bytes]] = []

    def settle(self, keys: list[tuple[int, bytes]], prompt_tokens: int) -> tuple[int, int]:
        self.pending = keys
        return 0, 0


_worker: dict[str, Any] = {}


def _init_worker(seed: int, parent: int) -> None:
    from tasks.processes import exit_with_parent

    exit_with_parent(parent)
    cache = _DeferredCache()
    _worker["simulator"] = Simulator(seed=seed, cache=cache)
    _worker["cache"] = cache


def _warm_up() -> bool:
    from tasks.tokens import get_encoding

    get_encoding("o200k_base").encode_ordinary("warm up")
    gc.freeze()  # what is loaded lives as long as the worker: out of the collector's passes
    return True


def _run_rows(rows: list[_Row]) -> list[_Result]:
    simulator: Simulator = _worker["simulator"]
    cache: _DeferredCache = _worker["cache"]
    results: list[_Result] = []
    for line, custom_id, url, model, key, created, fault, raw in rows:
        body = orjson.loads(raw)["body"]
        item = WorkItem(line, custom_id, url, body, model, key, created, fault)
        cache.pending = []
        outcome = simulator.run(item)
        keys = cache.pending
        # An answer whose cache result is still to come travels as a dict, to be completed.
        encoded = orjson.dumps(outcome.body) if outcome.body is not None and not keys else None
        results.append(
            (
                outcome.status_code,
                outcome.body if encoded is None else None,
                encoded,
                outcome.error,
                outcome.input_tokens,
                outcome.cached_tokens,
                outcome.output_tokens,
                outcome.reasoning_tokens,
                keys,
            )
        )
    return results


def _close_at_exit(close: Callable[[], None]) -> bool:
    """Run `close` as the process exits, before `concurrent.futures` stops its pools.

    `concurrent.futures` stops every pool in a hook of `threading`'s shutdown, which runs
    before `atexit` and in the reverse order of registration: a pool still starting then
    refused its workers' warm-up ("cannot schedule new futures after interpreter shutdown",
    printed after every `overnight submit` on the embedded API), or the exit waited on a worker
    that never got its stop signal. A hook registered here, later than `concurrent.futures`'
    own, runs first and stops the pool in order. False where the hook is unavailable.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return False
    try:
        register(close)
    except RuntimeError:  # the interpreter is already shutting down
        return False
    return True


def _exiting() -> bool:
    """Whether the process is on its way out: `threading` runs its exit hooks
    (`concurrent.futures`' among them; its private flag, as `_register_atexit` reads it),
    the main thread has ended, or the interpreter is finalizing. A pool cannot start then:
    `concurrent.futures` refuses new work ("cannot schedule new futures after interpreter
    shutdown"). An embedded API whose batch began as `overnight submit` returned printed that
    as a traceback, its exit hook being refused too ("can't register atexit after shutdown").
    """
    return (
        sys.is_finalizing()
        or bool(getattr(threading, "_SHUTTING_DOWN", False))
        or not threading.main_thread().is_alive()
    )


class PooledSimulator:
    """The `simulate` executor, on `workers` processes for big chunks."""

    def __init__(self, *, seed: int, workers: int) -> None:
        self.seed = seed
        self.workers = workers
        self.cache = PromptCache()
        self.local = Simulator(seed=seed, cache=self.cache)
        self.chunk_size = POOL_CHUNK
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None
        self._spawning: ProcessPoolExecutor | None = None
        self._exit_hook = False
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._closed = False

    def wait_ready(self, timeout: float) -> bool:
        """Start the workers now and wait for them; False if they are not up in `timeout` s."""
        if self.workers < 2:
            return False
        self._begin_start()
        return self._ready.wait(timeout)

    def prepare(self, input_bytes: int) -> None:
        """A batch of `input_bytes` is about to run: start the workers now if it may use them.

        Called as validation begins, so the workers' start (a second or two, loading the
        tokenizer) overlaps validating instead of delaying the first chunks.
        """
        if self.workers >= 2 and input_bytes >= POOL_MIN_BYTES:
            self._begin_start()

    def worker_pids(self) -> list[int]:
        """The running workers' process ids (none before the pool started)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        """Stop the workers, those still starting included, and wait for them to exit: a pool
        left starting as the process ends raised at interpreter shutdown, or hung its exit on a
        worker waiting for work."""
        with self._lock:
            self._closed = True
            pools = [p for p in (self._pool, self._spawning) if p is not None]
            self._pool = self._spawning = None
            starting = self._starting
            self._ready.clear()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        if starting is not None and starting is not threading.current_thread():
            starting.join(_CLOSE_WAIT_SECONDS)

    def execute(self, items: Sequence[WorkItem]) -> list[Outcome]:
        return self.start(items)()

    def start(self, items: Sequence[WorkItem]) -> Pending:
        """Send a big chunk to the workers now; the returned call waits for its outcomes.

        Outcomes are settled against the prompt cache when asked for, so chunks must be asked
        for in the order they were started (the engine does). A chunk that does not go to the
        workers runs in the caller's thread when asked for.
        """
        pool = self._pool_for(items)
        if pool is None:
            return lambda: self.local.execute(items)
        rows = [
            (i.line, i.custom_id, i.url, i.model, i.key, i.created, i.fault, i.raw) for i in items
        ]
        try:
            futures: list[Future[list[_Result]]] = [
                pool.submit(_run_rows, rows[start : start + _PIECE_LINES])
                for start in range(0, len(rows), _PIECE_LINES)
            ]
        except (BrokenProcessPool, RuntimeError):  # broken, or shut down by a dead worker
            self._discard(pool)
            return lambda: self.local.execute(items)

        def outcomes() -> list[Outcome]:
            try:
                results = [result for future in futures for result in future.result()]
            except BrokenProcessPool:
                log.warning("a simulator worker died: running its lines in the server, restarting")
                self._discard(pool)
                return self.local.execute(items)
            return [
                self._outcome(item, result) for item, result in zip(items, results, strict=True)
            ]

        return outcomes

    def _outcome(self, item: WorkItem, result: _Result) -> Outcome:
        status, body, encoded, error, prompt, cached, output, reasoning, keys = result
        outcome = Outcome(
            status_code=status,
            body=body,
            error=error,
            input_tokens=prompt,
            cached_tokens=cached,
            output_tokens=output,
            reasoning_tokens=reasoning,
            encoded_body=encoded,
        )
        if keys:  # settled here, in line order, as the serial simulator does
            cached, written = self.cache.settle(keys, prompt)
            if outcome.ok:
                set_cached_usage(outcome, item.url, cached, written)
        return outcome

    def _pool_for(self, items: Sequence[WorkItem]) -> ProcessPoolExecutor | None:
        """The running pool, if these items should use it; starts it (in the background)."""
        if self.workers < 2 or len(items) < POOL_MIN_LINES or not all(i.raw for i in items):
            return None
        if self._ready.is_set():
            return self._pool
        self._begin_start()
        return None

    def _begin_start(self) -> None:
        if _exiting():
            return  # a pool started now would only be stopped again, with a traceback
        with self._lock:
            if self._starting is None and not self._closed:
                if not self._exit_hook:
                    self._exit_hook = _close_at_exit(self.close)
                self._starting = threading.Thread(
                    target=self._start, name="localbatch-pool-start", daemon=True
                )
                self._starting.start()

    def _start(self) -> None:
        if self._closed or _exiting():
            return
        # Not under the lock: building the pool imports, which can wait on a thread that waits
        # for the lock. No process starts before the first submit, so a pool made as close()
        # ran is dropped at no cost.
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.seed, os.getpid()),
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._spawning = pool  # close() can now find it, and stop it
        if closed:
            pool.shutdown(wait=False)
            return
        try:
            from tasks.processes import children_without_interrupts

            with children_without_interrupts():  # each submit here starts a worker
                warm = [pool.submit(_warm_up) for _ in range(self.workers)]
            for future in warm:
                future.result()
        except (Exception, CancelledError):
            with self._lock:
                closing = self._closed or _exiting()
                owned = self._spawning is pool  # else close() took it and stops it
                if owned:
                    self._spawning = None
            if not closing:  # closing: the pool was stopped on purpose, nothing to say
                log.exception("the simulator pool did not start: simulating in the server's thread")
            if owned:
                pool.shutdown(wait=True, cancel_futures=True)
            return
        with self._lock:
            if self._spawning is not pool:
                return  # close() took it and stops it
            self._spawning = None
            if not self._closed:
                self._pool = pool
                self._ready.set()
                return
        pool.shutdown(wait=True, cancel_futures=True)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self._ready.clear()
                self._starting = None
        pool.shutdown(wait=False, cancel_futures=True)
