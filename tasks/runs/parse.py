"""Parsing: judge each line of a downloaded shard into result, error and superseded parts.

Shards are parsed one after the other in this process, or, for runs large enough to repay
starting them, by a pool of worker processes (`OVERNIGHT_COLLECT_WORKERS`, by default one per
usable core) started by the `spawn` method, with at most one shard waiting beyond those being
parsed. Each shard streams as it does here, so memory is that of `workers` shard parses
however many shards there are. Processes, not threads: judging a line (orjson, then Pydantic
validation) holds the GIL. Only this process records a shard as parsed, in the manifest,
after its worker has written all of its parts; a worker that dies leaves its shard
`downloaded`, and the next `collect` parses it again into the same part names.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl
from pydantic import BaseModel

from schemas.job import JobSpec
from schemas.manifest import EMBEDDED, RunManifest, ShardRecord, utcnow
from tasks import storage, tables
from tasks.failpoints import failpoint
from tasks.outputs import (
    INVALID_OUTPUT_CODES,
    Classified,
    Outcome,
    Usage,
    answer_of,
    classify_record,
    is_simulated,
    read_record,
)
from tasks.pricing import load_pricing
from tasks.processes import exit_with_parent, one_allocator_arena, usable_cores
from tasks.runs.costs import _Pricer
from tasks.runs.store import RunError, _iter_lines, save_manifest

log = logging.getLogger(__name__)


PART_ROWS = 10_000
"""Judged lines per parquet part: bounds the memory of parsing, whatever the shard size (one
part is written while the next is judged). A part costs ~20 ms whatever its size (its
queries, three files written and synced): 4 µs a line at 5,000 lines, 2 at 10,000. At 10^6
lines on 2 workers (benchmarks/collect_throughput.py) 10,000-line parts peak at 451-455 MB
for the process tree; 20,000 are no faster and peak at 523-527 MB, past the 500 MB budget."""

POOL_MIN_REQUESTS = 200_000
"""Requests to parse below which, unless a worker count is asked for, shards are parsed in
this process: each worker process takes about half a second to start (it imports the parsing
stack) while this process judges ~70,000 lines a second, so a smaller pool loses time
(benchmarks/collect_throughput.py, 2 cores: at 100,000 lines 1.46 s in this process against
1.69 s on 2 workers; even at 200,000; 4.68 against 4.33 s at 300,000)."""

_PEEK_LINES = 100
"""Output lines read per shard, at most, to find the run's first answer (`_run_simulated`)."""


def part_uris(manifest: RunManifest, kind: str, shard: ShardRecord) -> list[str]:
    """The parquet parts (`results`, `errors`, `superseded`) that parsing wrote for a shard."""
    return [_part_uri(manifest, kind, shard, n) for n in range(shard.parts)]


def _part_uri(manifest: RunManifest, kind: str, shard: ShardRecord, n: int) -> str:
    stem = shard.key.replace("/", "-")
    return storage.join(manifest.run_dir, "parts", kind, f"{stem}-{n:03d}.parquet")


def _retry_uri(manifest: RunManifest, shard: ShardRecord) -> str:
    return storage.join(manifest.run_dir, "retry", f"{shard.key.replace('/', '-')}.json")


def _missing_line(shard: ShardRecord, custom_id: str) -> Classified:
    """What became of a request that appears in neither output nor error file."""
    status = shard.batch_status
    error = shard.batch_errors[0] if shard.batch_errors else {}
    if status == "failed":
        code = str(error.get("code") or "batch_failed")
        message = str(error.get("message") or "the batch failed")
        if error.get("line") is not None:
            message += f" (input line {error['line']})"
        outcome: Outcome = "retryable" if code == "token_limit_exceeded" else "terminal"
        return Classified(custom_id, outcome, "api", code, f"batch failed: {message}")
    if status == "cancelled":
        return Classified(
            custom_id, "terminal", "api", "batch_cancelled", "the batch was cancelled"
        )
    if status == "expired":
        return Classified(custom_id, "retryable", "api", "batch_expired", "the batch expired")
    return Classified(
        custom_id, "retryable", "api", "missing_output", f"no output line (batch {status})"
    )


_LINE_SCHEMA: dict[str, pl.DataType] = {
    "custom_id": pl.String(),
    "kind": pl.String(),
    "model": pl.String(),
    "input_tokens": pl.Int64(),
    "cached_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "reasoning_tokens": pl.Int64(),
    "billed": pl.Boolean(),
    "raw_output": pl.String(),
    "stage": pl.String(),
    "code": pl.String(),
    "message": pl.String(),
    "retryable": pl.Boolean(),
    "simulated": pl.Boolean(),
    "index_row": pl.Int64(),
}
"""One row per request line as judged (its `cost_usd` is added per part); `kind` is result,
error or retry; `index_row` is the request's row in the shard's index."""

_NO_TOKENS = (0, 0, 0, 0)


def _run_simulated(manifest: RunManifest, pending: list[ShardRecord]) -> bool:
    """Whether the run's answers come from the simulator, for the lines that carry no answer.

    All of a run's batches live on one backend, so the first answer found speaks for the run:
    in the results parts parsed so far, else in the output files about to be parsed. Decided
    once, before any of `pending` is parsed, so that the word does not depend on the order in
    which shards finish.
    """
    if manifest.backend == EMBEDDED:
        return True
    for shard in manifest.shards:
        if shard.state != "parsed" or not shard.results:
            continue
        for uri in part_uris(manifest, "results", shard):
            column = tables.read_parquet(uri, columns=["simulated"]).get_column("simulated")
            if column.len():
                return bool(column.any())
    for shard in pending:
        with contextlib.closing(_iter_lines(shard.output_uri)) as lines:
            for line in itertools.islice(lines, _PEEK_LINES):
                response = (read_record(line) or {}).get("response")
                if not isinstance(response, dict) or response.get("status_code") != 200:
                    continue
                body = response.get("body")
                if isinstance(body, dict):
                    return is_simulated(body)
    return False


def parse_shard(
    manifest: RunManifest,
    shard: ShardRecord,
    *,
    output_model: type[BaseModel],
    pricer: _Pricer,
    retry_invalid_outputs: bool,
    run_simulated: bool | None = None,
    write_behind: bool = True,
) -> None:
    """Turn one shard's output and error files into result, error and superseded parts.

    Lines are judged one by one into plain rows, the common valid answer by `answer_of` and
    every other line by `classify_record`; every PART_ROWS lines the rows become columns,
    costs are priced, identities are gathered from the shard's index by row and typed output
    columns from one vectorised JSON decode, and the part is written, so memory stays at a
    few columns of PART_ROWS lines.
    `run_simulated` is the run's word for lines without an answer (see `_run_simulated`,
    which works it out when None). With `write_behind`, a part is written on a thread while
    the next is judged, which uses a core that would otherwise idle; without it, where every
    core already judges a shard, parts are written in turn (~5% faster there: no two threads
    taking the GIL and the cache from each other). Only `shard`'s counters change; the
    manifest is not saved.
    """
    if run_simulated is None:
        run_simulated = _run_simulated(manifest, [shard])
    index = tables.read_parquet(shard.index_uri).drop("input_tokens")
    # Each request's row in the index, until its line is read (the build refuses a custom_id
    # twice, so a shard's are unique); a line whose custom_id is not here is unexpected.
    requested = index.get_column("custom_id").to_list()
    unseen = {custom_id: n for n, custom_id in enumerate(requested)}
    identities = index.drop("custom_id")
    last_attempt = shard.attempt >= manifest.max_attempts or manifest.cancel_requested
    # The embedded backend only simulates. Elsewhere each answer says whether the simulator
    # wrote it; a line without an answer (an HTTP error, an expired line) takes its batch's
    # run's word: simulated if any answer of the run so far said so.
    simulator_backend = manifest.backend == EMBEDDED
    simulated_seen: list[bool | None] = [True if simulator_backend else None]
    rows: list[tuple[Any, ...]] = []
    validate = output_model.__pydantic_validator__.validate_json

    def row(c: Classified, index_row: int) -> tuple[Any, ...]:
        """The columns of a line judged by `classify_record` (results among them, rarely)."""
        retry_it = c.outcome == "retryable" or (
            retry_invalid_outputs and c.code in INVALID_OUTPUT_CODES
        )
        if c.outcome == "ok":
            kind = "result"
        elif retry_it and not last_attempt:
            kind = "retry"
        else:
            kind = "error"
            if retry_it:
                c.message += f" (gave up after {shard.attempt} attempt(s))"
        usage = c.usage or Usage()
        return (
            c.custom_id,
            kind,
            c.model or shard.model,
            usage.input_tokens,
            usage.cached_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
            c.usage is not None,
            c.raw_output if kind == "result" else None,
            c.stage,
            c.code or None,
            c.message[:4000] or None,
            c.outcome == "retryable",
            True if simulator_backend else c.simulated,
            index_row,
        )

    def judged_frame() -> pl.DataFrame:
        """The rows judged so far as typed columns, priced, with their simulated word."""
        # Rows become columns once per part: cheaper than one append per column per line.
        columns: dict[str, list[Any]] = {name: [] for name in _LINE_SCHEMA}
        if rows:
            columns = dict(zip(_LINE_SCHEMA, map(list, zip(*rows, strict=True)), strict=True))
        rows.clear()
        if None in columns["simulated"] and simulated_seen[0] is None:
            simulated_seen[0] = any(v is True for v in columns["simulated"]) or run_simulated
        # A Series a column: cheaper than a frame from a dict of lists (0.35 against 0.6 µs a line).
        judged = pl.DataFrame(
            [pl.Series(name, columns[name], dtype) for name, dtype in _LINE_SCHEMA.items()]
        )
        return judged.with_columns(
            pricer.batch_costs(judged), pl.col("simulated").fill_null(bool(simulated_seen[0]))
        )

    retry: list[str] = []
    errors_schema = pl.Schema(tables.errors_schema())

    def write_part(judged: pl.DataFrame, n: int) -> None:
        """Write judged lines as part `n` of each kind (on the writer thread).

        One gather and one `collect_all` for all of the part's queries, and one write per
        kind: each polars call costs ~0.5 ms whatever its size, which at a call per step was a
        fifth of parsing a 5,000-line part; and this thread waits for the GIL, which the
        judging thread holds, a few times a part, not at every step.
        """
        stamp = [
            pl.lit(manifest.run_id).alias("run_id"),
            pl.lit(manifest.job_fingerprint).alias("job_fingerprint"),
            pl.lit(shard.batch_id, pl.String).alias("batch_id"),
            pl.lit(shard.attempt, pl.Int64).alias("attempt"),
            pl.lit(utcnow()).dt.cast_time_unit("us").alias("written_at"),
        ]
        # The requests' identities by their rows in the index: cheaper than a join by
        # custom_id; gathered once, eagerly (in the queries below, each would gather anew).
        identified = judged.hstack(identities.select(pl.all().gather(judged["index_row"])))
        lines = identified.lazy().with_columns(*stamp)
        kind = pl.col("kind")
        results = lines.filter(kind == "result")

        def error_rows(*keep: pl.Expr) -> pl.LazyFrame:
            return lines.filter(*keep).select(list(errors_schema)).cast(errors_schema)

        queries = [
            error_rows(kind == "error"),
            error_rows(kind == "retry", pl.col("billed")),  # superseded: billed, then retried
            lines.filter(kind == "retry").select("custom_id"),
        ]
        try:
            found = pl.collect_all([tables.results_lazy(results, output_model), *queries])
        except pl.exceptions.PolarsError:  # a value polars cannot read: pydantic converts
            found = [
                tables.results_by_pydantic(results.collect(), output_model),
                *pl.collect_all(queries),
            ]
        parts = {"results": found[0], "errors": found[1], "superseded": found[2]}
        for name, part in parts.items():
            tables.write_parquet(part, _part_uri(manifest, name, shard, n))
        failpoint("during-parse")
        shard.results += parts["results"].height
        shard.errors += parts["errors"].height
        retry.extend(found[3].get_column("custom_id").to_list())

    shard.parts = shard.results = shard.errors = 0
    with _parsing_mode, _OneBehind() if write_behind else _InTurn() as writer:

        def flush() -> None:
            """Hand the lines judged so far to the writer as the next part; start afresh."""
            writer.submit(write_part, judged_frame(), shard.parts)
            shard.parts += 1

        for uri in (shard.output_uri, shard.error_uri):
            for number, line in enumerate(_iter_lines(uri), 1):
                answer = answer_of(line, validate)
                if answer is None:
                    record = read_record(line)
                    if record is None:  # its request ends as missing_output, and is retried
                        log.warning(
                            "ignoring line %d of %s: not a JSON object (%r)",
                            number,
                            uri,
                            line[:80],
                        )
                        continue
                    c = classify_record(record, output_model)
                    custom_id = c.custom_id
                else:
                    custom_id, content, model, tokens, simulated = answer
                index_row = unseen.pop(custom_id, None)
                if index_row is None:
                    log.warning("ignoring an unexpected output line for %r", custom_id)
                    continue
                if answer is None:
                    rows.append(row(c, index_row))
                else:
                    rows.append(
                        (
                            custom_id,
                            "result",
                            model or shard.model,
                            *(tokens or _NO_TOKENS),
                            tokens is not None,
                            content,
                            None,
                            None,
                            None,
                            False,
                            True if simulator_backend else simulated,
                            index_row,
                        )
                    )
                if len(rows) >= PART_ROWS:
                    flush()
        for custom_id, index_row in unseen.items():  # in the index's order
            rows.append(row(_missing_line(shard, custom_id), index_row))
            if len(rows) >= PART_ROWS:
                flush()
        if rows or not shard.parts:
            flush()
    storage.write_bytes(_retry_uri(manifest, shard), orjson.dumps(retry))
    shard.retryable = len(retry)


class _OneBehind:
    """One background thread that runs jobs one after the other, at most one at a time.

    `submit` first waits for the job before (so one part is written while the next is
    judged, and no more are held), and leaving the block waits for the last one; a job's
    error is raised by the next `submit` or on leaving. Parts are joined, decoded and
    written by polars, which releases the GIL, so the writing overlaps the judging.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overnight-parts")
        self._last: Future[None] | None = None

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        self._wait()
        self._last = self._pool.submit(job, *args)

    def _wait(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def __enter__(self) -> _OneBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True)


class _InTurn:
    """`_OneBehind`'s interface, each job run at once on this thread."""

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        job(*args)

    def __enter__(self) -> _InTurn:
        return self

    def __exit__(self, *_: object) -> None:
        return None


class _ParsingMode:
    """While shards are parsed here: no cycle collection, and thread switches every 0.5 ms.

    Judging a line makes many short-lived dicts and lists, freed by reference counting but
    counted by the cycle collector, whose passes over everything still alive took much of
    the parse; a shard is bounded (at most 50,000 requests to a batch) and makes no cycles
    worth collecting before it ends. The part writer needs the GIL back after each polars
    call, and the judging thread, which never blocks, gives it up only when asked, after
    the switch interval (5 ms by default). Both are process-wide: the first of the shards
    parsed at once (on threads) sets them, the last one to finish restores them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._restore = (True, 0.005)

    def __enter__(self) -> None:
        with self._lock:
            if not self._inside:
                self._restore = (gc.isenabled(), sys.getswitchinterval())
                gc.disable()
                sys.setswitchinterval(min(self._restore[1], 0.0005))
            self._inside += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._inside -= 1
            if not self._inside:
                collect, interval = self._restore
                if collect:
                    gc.enable()
                sys.setswitchinterval(interval)


_parsing_mode = _ParsingMode()


def parse_outputs(manifest: RunManifest, job: JobSpec, *, workers: int | None = None) -> int:
    """Parse every downloaded shard into parquet parts; return how many were parsed.

    `workers` processes parse shards at once (default: `parse_workers`); each shard is
    recorded as parsed, and the manifest saved, as soon as all of its parts are written.
    """
    pending = [s for s in manifest.shards if s.state == "downloaded"]
    if not pending:
        return 0
    run_simulated = _run_simulated(manifest, pending)
    count = parse_workers(workers, pending)
    if count == 1:
        output_model = job.output_model()
        pricer = _Pricer(load_pricing(), job.model)
        for shard in pending:
            parse_shard(
                manifest,
                shard,
                output_model=output_model,
                pricer=pricer,
                retry_invalid_outputs=job.limits.retry_invalid_outputs,
                run_simulated=run_simulated,
            )
            _record_parsed(manifest, shard)
    else:
        _parse_in_pool(manifest, job, pending, workers=count, run_simulated=run_simulated)
    return len(pending)


def parse_workers(workers: int | None, pending: list[ShardRecord]) -> int:
    """How many processes parse `pending`: `workers`, else `OVERNIGHT_COLLECT_WORKERS`, else
    one per usable core when there are at least POOL_MIN_REQUESTS requests; never more than
    there are shards (1 means this process)."""
    if workers is not None and workers < 1:
        raise ValueError("workers must be at least 1")
    if workers is None:
        from overnight.settings import get_settings

        workers = get_settings().collect_workers
    if workers is None:
        requests = sum(s.requests for s in pending)
        workers = usable_cores() if requests >= POOL_MIN_REQUESTS else 1
    return max(1, min(workers, len(pending)))


def _record_parsed(manifest: RunManifest, shard: ShardRecord) -> None:
    shard.state = "parsed"
    shard.updated_at = utcnow()
    save_manifest(manifest)
    failpoint("after-parse")


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What a worker's parse of a shard changed in its copy of the shard's record."""

    parts: int
    results: int
    errors: int
    retryable: int


def _parse_in_pool(
    manifest: RunManifest,
    job: JobSpec,
    pending: list[ShardRecord],
    *,
    workers: int,
    run_simulated: bool,
) -> None:
    """Parse `pending` on `workers` spawned processes, at most `workers + 1` shards at a time.

    After the first failure no shard is started; those in flight finish and are recorded,
    then the failure is raised (a dead worker as a RunError).
    """
    context = multiprocessing.get_context("spawn")
    # Workers read the run's settings, not its list of shards: send them the manifest without.
    run = manifest.model_copy(update={"shards": []})
    # Priced here, so that a worker neither imports the settings nor reads the pricing file.
    pricer = _Pricer(load_pricing(), job.model)
    # With a worker per core, every core already judges: parts are written in turn.
    write_behind = workers < usable_cores()
    todo = iter(pending)
    running: dict[Future[_Parsed], ShardRecord] = {}
    failure: BaseException | None = None
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )
    spawning = one_allocator_arena()  # the first submits start the workers
    try:
        while True:
            while failure is None and len(running) < workers + 1:
                shard = next(todo, None)
                if shard is None:
                    break
                future = pool.submit(
                    _parse_in_worker, run, shard, job, pricer, run_simulated, write_behind
                )
                running[future] = shard
            spawning.close()
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                shard = running.pop(future)
                try:
                    parsed = future.result()
                except BrokenProcessPool as exc:
                    failure = failure or RunError(
                        f"a parse worker process died while parsing shard {shard.key} ({exc}); "
                        "shards not recorded as parsed are parsed again by the next collect"
                    )
                    continue
                except Exception as exc:
                    failure = failure or exc
                    continue
                shard.parts, shard.results = parsed.parts, parsed.results
                shard.errors, shard.retryable = parsed.errors, parsed.retryable
                _record_parsed(manifest, shard)
    finally:
        spawning.close()
        pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        raise failure


def _parse_in_worker(
    manifest: RunManifest,
    shard: ShardRecord,
    job: JobSpec,
    pricer: _Pricer,
    run_simulated: bool,
    write_behind: bool,
) -> _Parsed:
    """In a pool worker: parse one shard into its parts; return its new counters."""
    parse_shard(
        manifest,
        shard,
        output_model=job.output_model(),
        pricer=pricer,
        retry_invalid_outputs=job.limits.retry_invalid_outputs,
        run_simulated=run_simulated,
        write_behind=write_behind,
    )
    return _Parsed(shard.parts, shard.results, shard.errors, shard.retryable)
