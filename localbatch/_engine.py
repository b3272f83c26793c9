"""The background worker: takes batches through their lifecycle, with checkpoints on disk.

    validating → in_progress → finalizing → completed
    validating → failed
    in_progress → expired
    validating | in_progress → cancelling → cancelled

Each batch is validated in one streaming pass and executed in another; output and error lines
are appended to work files, and every few hundred milliseconds the engine flushes them and
records, in one SQLite transaction, the input offset reached, the work files' sizes, the
request counts and the usage. A new server on the same data directory truncates the work files
to the recorded sizes and carries on from the recorded offset, so no line is lost or doubled.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from localbatch._clock import VirtualClock
from localbatch._config import FaultConfig, ServerConfig
from localbatch._execution import (
    Executor,
    Outcome,
    Pending,
    WorkItem,
    begin,
    not_run,
    output_line,
)
from localbatch._faults import draw_line_fault
from localbatch._rules import LineRules
from localbatch._store import BatchRecord, FileRecord, Store, new_file_id
from localbatch._validate import validate_input

log = logging.getLogger("localbatch")

CHECKPOINT_SECONDS = 0.25
CHECKPOINT_LINES = 5000
SIMULATE_CHUNK = 64
_TICK = 0.02


class _Stopped(Exception):
    """The server is shutting down: leave the batch as checkpointed, to be resumed."""


class CancelRefused(Exception):
    """The batch is already in a terminal state."""

    def __init__(self, record: BatchRecord) -> None:
        super().__init__(record.status)
        self.record = record


@dataclass(slots=True)
class _Progress:
    """A batch's running totals between checkpoints."""

    input_offset: int
    line_no: int
    executed: int
    completed: int
    failed: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int

    @classmethod
    def of(cls, record: BatchRecord) -> _Progress:
        return cls(
            input_offset=record.work.input_offset,
            line_no=record.work.line_no,
            executed=record.work.executed,
            completed=record.completed,
            failed=record.failed,
            input_tokens=record.input_tokens,
            cached_tokens=record.cached_tokens,
            output_tokens=record.output_tokens,
            reasoning_tokens=record.reasoning_tokens,
        )

    def count(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.completed += 1
            self.input_tokens += outcome.input_tokens
            self.cached_tokens += outcome.cached_tokens
            self.output_tokens += outcome.output_tokens
            self.reasoning_tokens += outcome.reasoning_tokens
        else:
            self.failed += 1


@dataclass(slots=True)
class _Cursor:
    """Where reading the input file has got to (ahead of what is written)."""

    offset: int
    line_no: int


@dataclass(slots=True)
class _Chunk:
    """Lines read and begun, their answers not yet written."""

    items: list[WorkItem]
    pending: Pending
    executed: int
    """Lines run (0 for lines skipped after a cancel or expiry)."""
    end_offset: int
    end_line: int


class Engine:
    """Runs batches on `max_concurrent_batches` worker threads."""

    def __init__(
        self,
        *,
        store: Store,
        config: ServerConfig,
        clock: VirtualClock,
        executor: Executor,
        chunk_size: int,
        faults: Callable[[], FaultConfig],
        rules: LineRules | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        """Checks each line as OpenAI would before it runs (None: `lenient`, run everything)."""
        self.config = config
        self.clock = clock
        self.executor = executor
        self.chunk_size = chunk_size
        self._faults = faults
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: set[str] = set()
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.config.max_concurrent_batches):
            thread = threading.Thread(target=self._work, name=f"localbatch-engine-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for batch_id in self.store.unfinished_batch_ids():
            self.submit(batch_id)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def submit(self, batch_id: str) -> None:
        with self._lock:
            if batch_id in self._pending:
                return
            self._pending.add(batch_id)
        self._queue.put(batch_id)

    def cancel(self, batch_id: str) -> BatchRecord:
        """Ask a batch to stop; raise CancelRefused if it already ended, KeyError if unknown."""
        now = self.clock.timestamp()

        def change(record: BatchRecord) -> None:
            if record.terminal:
                raise CancelRefused(record)
            if record.status in ("validating", "in_progress"):
                record.status = "cancelling"
                record.cancelling_at = now

        record = self.store.update_batch(batch_id, change)
        self._cancel_event(batch_id).set()
        return record

    def _cancel_event(self, batch_id: str) -> threading.Event:
        with self._lock:
            event = self._cancels.get(batch_id)
            if event is None:
                event = self._cancels[batch_id] = threading.Event()
            return event

    # -- worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            batch_id = self._queue.get()
            if batch_id is None:
                return
            try:
                self._run(batch_id)
            except _Stopped:
                return
            except Exception:
                log.exception("batch %s failed inside the local Batch API", batch_id)
                self._fail_internal(batch_id)
            finally:
                with self._lock:
                    self._pending.discard(batch_id)
                    self._cancels.pop(batch_id, None)

    def _fail_internal(self, batch_id: str) -> None:
        now = self.clock.timestamp()

        def change(record: BatchRecord) -> None:
            if not record.terminal:
                record.status = "failed"
                record.failed_at = now
                record.errors = [
                    {
                        "code": "server_error",
                        "message": "The local Batch API hit an internal error; see its log.",
                        "param": None,
                        "line": None,
                    }
                ]

        try:
            self.store.update_batch(batch_id, change)
        except Exception:
            log.exception("could not mark batch %s failed", batch_id)

    def _run(self, batch_id: str) -> None:
        record = self.store.get_batch(batch_id)
        if record is None or record.terminal:
            return
        if not record.work.validated:
            record = self._validate(record)
            if record.terminal:
                return
        if record.status in ("in_progress", "cancelling") and not record.work.finishing:
            record = self._execute(record)
        if record.status == "cancelling" or record.work.stop_reason == "cancelled":
            self._finish(record, "cancelled")
        elif record.work.stop_reason == "expired":
            self._finish(record, "expired")
        else:
            self._finish(record, "completed")

    def _sleep(self, seconds: float, batch_id: str | None = None) -> None:
        """Wait, waking early on cancel; raise _Stopped if the server stops meanwhile."""
        deadline = time.monotonic() + seconds
        cancel = self._cancel_event(batch_id) if batch_id else None
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (cancel is not None and cancel.is_set()):
                break
            if self._stop.wait(min(left, _TICK * 5)):
                raise _Stopped
        if self._stop.is_set():
            raise _Stopped

    # -- validating ---------------------------------------------------------------------------

    def _validate(self, record: BatchRecord) -> BatchRecord:
        started = time.monotonic()
        faults = self._faults()
        input_file = self.store.get_file(record.input_file_id)
        errors: list[dict[str, Any]]
        custom_ids: list[str] = []
        model: str | None = None
        total = 0
        prepare = getattr(self.executor, "prepare", None)
        if prepare is not None and input_file is not None:
            prepare(input_file.bytes)  # the simulator pool starts while the file is validated
        if input_file is None or not self.store.content_path(input_file.id).exists():
            errors = [
                {
                    "code": "file_not_found",
                    "message": f"The input file {record.input_file_id} no longer exists.",
                    "param": "input_file_id",
                    "line": None,
                }
            ]
        else:
            result = validate_input(
                self.store.content_path(input_file.id),
                endpoint=record.endpoint,
                max_lines=self.config.max_lines_per_batch,
                max_embedding_inputs=self.config.max_embedding_inputs_per_batch,
                max_bytes=self.config.max_batch_input_bytes,
                count_tokens=faults.batch_enqueued_token_limit is not None,
            )
            errors = result.errors
            custom_ids, model, total = result.custom_ids, result.model, result.total
            limit = faults.batch_enqueued_token_limit
            if not errors and limit is not None and result.estimated_input_tokens > limit:
                errors = [
                    {
                        "code": "token_limit_exceeded",
                        "message": f"Enqueued token limit reached for {model} in organization "
                        f"org-local. Limit: {limit:,} enqueued tokens. Please try submitting "
                        "your batch again later.",
                        "param": None,
                        "line": None,
                    }
                ]
            if not errors and faults.batch_fail_validation:
                errors = [
                    {
                        "code": "invalid_request",
                        "message": "The batch failed validation (injected fault).",
                        "param": None,
                        "line": None,
                    }
                ]
        self._sleep(self.config.min_validating_seconds - (time.monotonic() - started), record.id)
        now = self.clock.timestamp()

        def change(r: BatchRecord) -> None:
            if r.terminal:
                return
            r.work.validated = True
            if errors:
                if r.status == "cancelling":
                    r.status = "cancelled"
                    r.cancelled_at = now
                else:
                    r.status = "failed"
                    r.failed_at = now
                    r.errors = errors
                return
            r.model = model
            r.total = total
            if r.status == "validating":
                r.status = "in_progress"
                r.in_progress_at = now

        return self.store.update_batch(record.id, change, count_attempts=custom_ids)

    # -- in progress --------------------------------------------------------------------------

    def _execute(self, record: BatchRecord) -> BatchRecord:
        started = time.monotonic()
        work_dir = self.store.work_dir(record.id)
        work_dir.mkdir(parents=True, exist_ok=True)
        progress = _Progress.of(record)
        stop_reason = record.work.stop_reason
        if record.status == "cancelling":
            stop_reason = "cancelled"
        cancel = self._cancel_event(record.id)
        input_path = self.store.content_path(record.input_file_id)
        with (
            input_path.open("rb") as source,
            _open_append(work_dir / "output.jsonl", record.work.out_bytes) as out,
            _open_append(work_dir / "error.jsonl", record.work.err_bytes) as err,
        ):
            source.seek(progress.input_offset)
            cursor = _Cursor(progress.input_offset, progress.line_no)
            last_checkpoint = time.monotonic()
            since_checkpoint = 0
            # One chunk ahead: the next chunk is read and begun (on the simulator's workers)
            # before the last one's answers are written. Progress moves only as a chunk is
            # written, so a stopped server redoes the chunk that was ahead.
            ahead: _Chunk | None = None
            while True:
                faults = self._faults()
                if stop_reason is None:
                    if cancel.is_set():
                        stop_reason = "cancelled"
                    elif self.clock.now() >= record.expires_at:
                        stop_reason = "expired"
                want = self.chunk_size if not faults.line_delay_seconds else 1
                begun = progress.executed + (ahead.executed if ahead is not None else 0)
                budget = self._expiry_budget(faults, record.total, begun)
                if stop_reason is None and budget is not None:
                    if budget <= 0:
                        stop_reason = "expired"
                    else:
                        want = min(want, budget)
                if stop_reason is not None:
                    want = max(want, 1024)
                lines = _read_lines(source, want, cursor)
                chunk: _Chunk | None = None
                if lines and stop_reason is None:
                    if faults.line_delay_seconds:
                        self._sleep(faults.line_delay_seconds * len(lines))
                    items, pending = self._begin_lines(record, lines, faults)
                    chunk = _Chunk(items, pending, len(lines), cursor.offset, cursor.line_no)
                elif lines and stop_reason is not None:  # after a cancel or expiry
                    items, skipped = self._skip_lines(record, lines, stop_reason)
                    chunk = _Chunk(items, _done(skipped), 0, cursor.offset, cursor.line_no)
                if ahead is not None:
                    for item, outcome in zip(ahead.items, ahead.pending(), strict=True):
                        target = out if outcome.ok else err
                        target.write(orjson.dumps(output_line(item.key, item.custom_id, outcome)))
                        target.write(b"\n")
                        progress.count(outcome)
                    progress.executed += ahead.executed
                    progress.input_offset, progress.line_no = ahead.end_offset, ahead.end_line
                    since_checkpoint += len(ahead.items)
                    if (
                        since_checkpoint >= CHECKPOINT_LINES
                        or time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS
                    ):
                        record = self._checkpoint(record.id, progress, out, err, stop_reason)
                        last_checkpoint = time.monotonic()
                        since_checkpoint = 0
                    if self._stop.is_set():
                        self._checkpoint(record.id, progress, out, err, stop_reason)
                        raise _Stopped
                ahead = chunk
                if ahead is None:
                    progress.input_offset, progress.line_no = cursor.offset, cursor.line_no
                    break
            record = self._checkpoint(record.id, progress, out, err, stop_reason)
        if stop_reason is None:
            self._sleep(
                self.config.min_in_progress_seconds - (time.monotonic() - started), record.id
            )
            if cancel.is_set():
                record = self.store.get_batch(record.id) or record
        return record

    def _expiry_budget(self, faults: FaultConfig, total: int, executed: int) -> int | None:
        if faults.batch_expire_after_fraction is None:
            return None
        return math.floor(faults.batch_expire_after_fraction * total) - executed

    def _checkpoint(
        self,
        batch_id: str,
        progress: _Progress,
        out: IO[bytes],
        err: IO[bytes],
        stop_reason: Any,
    ) -> BatchRecord:
        out.flush()
        err.flush()
        out_bytes, err_bytes = out.tell(), err.tell()

        def change(r: BatchRecord) -> None:
            r.work.input_offset = progress.input_offset
            r.work.line_no = progress.line_no
            r.work.executed = progress.executed
            r.work.out_bytes = out_bytes
            r.work.err_bytes = err_bytes
            r.work.stop_reason = stop_reason
            r.completed = progress.completed
            r.failed = progress.failed
            r.input_tokens = progress.input_tokens
            r.cached_tokens = progress.cached_tokens
            r.output_tokens = progress.output_tokens
            r.reasoning_tokens = progress.reasoning_tokens

        record = self.store.update_batch(batch_id, change)
        self.store.set_meta("virtual_now", repr(self.clock.now()))
        return record

    def _begin_lines(
        self, record: BatchRecord, lines: list[tuple[int, bytes, int]], faults: FaultConfig
    ) -> tuple[list[WorkItem], Pending]:
        """The lines' work items, and their outcomes begun (lines OpenAI refuses answered)."""
        now = self.clock.timestamp()
        model = record.model or ""
        items: list[WorkItem] = []
        raws: list[bytes] = []
        for line_no, raw, _ in lines:
            raws.append(raw)
            request = orjson.loads(raw)
            custom_id = request["custom_id"]
            items.append(
                WorkItem(
                    line=line_no,
                    custom_id=custom_id,
                    url=request["url"],
                    body=request["body"],
                    model=model,
                    key=f"{record.id}:{custom_id}",
                    created=now,
                    raw=raw,
                )
            )
        if faults.batch_all_lines_fail:
            for item in items:
                item.fault = "http_500"
        elif _any_line_faults(faults):
            attempts = self.store.attempts([item.custom_id for item in items])
            for item in items:
                item.fault = draw_line_fault(
                    faults,
                    seed=self.config.seed,
                    custom_id=item.custom_id,
                    attempt=attempts.get(item.custom_id, 1),
                )
        if self.rules is None:
            return items, begin(self.executor, items)
        refused = [self.rules.check(item, raw) for item, raw in zip(items, raws, strict=True)]
        runnable = [item for item, outcome in zip(items, refused, strict=True) if outcome is None]
        running: Pending = begin(self.executor, runnable) if runnable else lambda: []

        def outcomes() -> list[Outcome]:
            ran = iter(running())
            return [outcome if outcome is not None else next(ran) for outcome in refused]

        return items, outcomes

    def _skip_lines(
        self, record: BatchRecord, lines: list[tuple[int, bytes, int]], reason: str
    ) -> tuple[list[WorkItem], list[Outcome]]:
        code = "batch_cancelled" if reason == "cancelled" else "batch_expired"
        items: list[WorkItem] = []
        for line_no, raw, _ in lines:
            custom_id = orjson.loads(raw)["custom_id"]
            items.append(
                WorkItem(
                    line=line_no,
                    custom_id=custom_id,
                    url=record.endpoint,
                    body={},
                    model=record.model or "",
                    key=f"{record.id}:{custom_id}",
                    created=0,
                )
            )
        return items, [not_run(code) for _ in items]

    # -- the end ------------------------------------------------------------------------------

    def _finish(self, record: BatchRecord, outcome: str) -> None:
        """Publish the output and error files and move the batch to its final status."""
        started = time.monotonic()
        if outcome == "completed" and record.status == "in_progress":
            now = self.clock.timestamp()

            def to_finalizing(r: BatchRecord) -> None:
                if r.status == "in_progress":
                    r.status = "finalizing"
                    r.finalizing_at = now

            record = self.store.update_batch(record.id, to_finalizing)
            if record.status == "cancelling":
                outcome = "cancelled"
        wait = (
            self.config.min_finalizing_seconds
            if outcome == "completed"
            else self.config.min_cancelling_seconds
            if outcome == "cancelled"
            else 0.0
        )
        self._sleep(wait - (time.monotonic() - started))

        work_dir = self.store.work_dir(record.id)
        out_id = record.work.output_file_id
        err_id = record.work.error_file_id
        if not record.work.finishing:
            out_id = new_file_id() if record.work.out_bytes else None
            err_id = new_file_id() if record.work.err_bytes else None

            def reserve(r: BatchRecord) -> None:
                r.work.finishing = True
                r.work.output_file_id = out_id
                r.work.error_file_id = err_id

            record = self.store.update_batch(record.id, reserve)
        now = self.clock.timestamp()
        expires = now + record.output_expires_after if record.output_expires_after else None
        new_files: list[FileRecord] = []
        for file_id, name, size in (
            (out_id, "output", record.work.out_bytes),
            (err_id, "error", record.work.err_bytes),
        ):
            if file_id is None:
                continue
            self._publish(work_dir / f"{name}.jsonl", self.store.content_path(file_id), size)
            new_files.append(
                FileRecord(
                    id=file_id,
                    bytes=size,
                    created_at=now,
                    filename=f"{record.id}_{name}.jsonl",
                    purpose="batch_output",
                    expires_at=expires,
                )
            )

        def finish(r: BatchRecord) -> None:
            if r.terminal:
                return
            r.output_file_id = out_id
            r.error_file_id = err_id
            if outcome == "cancelled":
                r.status = "cancelled"
                r.cancelled_at = now
                if r.cancelling_at is None:
                    r.cancelling_at = now
            elif outcome == "expired":
                r.status = "expired"
                r.expired_at = now
            else:
                r.status = "completed"
                r.completed_at = now
                if r.finalizing_at is None:
                    r.finalizing_at = now

        self.store.update_batch(record.id, finish, new_files=new_files)
        self.store.remove_work_dir(record.id)

    @staticmethod
    def _publish(work_file: Path, target: Path, size: int) -> None:
        """Move a finished work file into the file store (idempotent across a crash)."""
        if work_file.exists():
            with work_file.open("r+b") as fh:
                fh.truncate(size)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(work_file, target)
        elif not target.exists():
            raise FileNotFoundError(f"lost work file {work_file}")


def _any_line_faults(faults: FaultConfig) -> bool:
    return bool(
        faults.line_500_rate
        or faults.line_429_rate
        or faults.line_timeout_rate
        or faults.line_invalid_json_rate
        or faults.line_schema_violation_rate
        or faults.line_refusal_rate
        or faults.line_length_rate
    )


def _done(outcomes: list[Outcome]) -> Pending:
    return lambda: outcomes


def _open_append(path: Path, size: int) -> IO[bytes]:
    """Open a work file for appending after its first `size` bytes (the last checkpoint)."""
    if not path.exists() and size:
        raise FileNotFoundError(f"work file {path} is gone but should hold {size} bytes")
    fh = path.open("r+b") if path.exists() else path.open("w+b")
    fh.truncate(size)
    fh.seek(size)
    return fh


def _read_lines(source: IO[bytes], want: int, cursor: _Cursor) -> list[tuple[int, bytes, int]]:
    """Up to `want` non-blank lines as (line number, bytes, offset after the line)."""
    lines: list[tuple[int, bytes, int]] = []
    while len(lines) < want:
        raw = source.readline()
        if not raw:
            break
        cursor.offset += len(raw)
        cursor.line_no += 1
        if raw.strip():
            lines.append((cursor.line_no, raw, cursor.offset))
    return lines
