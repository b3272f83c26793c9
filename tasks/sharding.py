"""Write request lines into Batch API input shards, each within the job's limits.

`ShardWriter` streams lines into `<run_dir>/<prefix>-00000.jsonl`, `-00001.jsonl`, ... and
starts a new shard before a line would take the current one past `max_requests_per_shard`
lines, `max_shard_bytes` bytes (strictly below) or `max_shard_tokens` estimated input tokens.
Next to each shard it writes `<name>.index.parquet`, one row per request (`RequestIndexRow`).
Each file is written atomically through `tasks.storage.open_write`.

The writer refuses a custom_id it has already written in this run (`DuplicateCustomIdError`):
it keeps the ids of the open shard in a set and a sorted array of 64-bit hashes of the ids of
finished shards — 8 bytes a request, no more (two different ids share a 64-bit hash with a
probability of about 3·10⁻⁸ in a run of a million requests; such a pair would be refused as a
duplicate, never written twice).

The lead re-shards retryable lines for a new attempt with the same class:
`ShardWriter(run_dir, prefix="attempt-2/shard", limits=job.limits)`.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from itertools import chain
from types import TracebackType
from typing import IO, Any, Literal, cast

import orjson

from schemas.build import RequestIndexRow, ShardInfo
from schemas.job import Endpoint, LimitsSpec
from tasks import storage

_FLUSH_BYTES = 8 << 20
_MAX_PENDING = 2
INDEX_SCHEMA = {
    "custom_id": "String",
    "document_id": "String",
    "source_uri": "String",
    "content_sha256": "String",
    "chunk_index": "Int32",
    "chunk_count": "Int32",
    "input_tokens": "Int64",
}


class ShardingError(Exception):
    """A request line cannot be placed in a shard."""


class DuplicateCustomIdError(ShardingError):
    """A custom_id was added twice in one run."""


class RequestTooLargeError(ShardingError):
    """One request alone exceeds the per-shard byte or token limit."""

    def __init__(self, message: str, *, reason: Literal["bytes", "tokens"]) -> None:
        super().__init__(message)
        self.reason = reason


class _OpenShard:
    """The shard being written. Hashing and writing run on the writer's own thread (both
    release the GIL), at most `_MAX_PENDING` buffers behind the caller."""

    def __init__(
        self,
        shard_id: str,
        uri: str,
        index_uri: str,
        fh: IO[bytes] | None,
        pool: ThreadPoolExecutor | None,
    ) -> None:
        self.shard_id = shard_id
        self.uri = uri
        self.index_uri = index_uri
        self.fh = fh
        self.pool = pool
        self.sha = hashlib.sha256()
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.requests = 0
        self.bytes = 0
        self.tokens = 0
        self.rows: list[RequestIndexRow] = []
        self.id_strings: set[str] = set()
        self.pending: deque[Future[None]] = deque()

    def _write(self, data: bytes) -> None:
        if self.fh is not None:  # None in a dry run
            self.sha.update(data)
            self.fh.write(data)

    def flush(self) -> None:
        if self.buffer:
            data = b"".join(self.buffer)
            self.buffer.clear()
            self.buffered = 0
            if self.pool is None:
                self._write(data)
            else:
                self.pending.append(self.pool.submit(self._write, data))
        while len(self.pending) > _MAX_PENDING:
            self.pending.popleft().result()

    def drain(self) -> None:
        """Flush and wait until every byte is hashed and written."""
        self.flush()
        while self.pending:
            self.pending.popleft().result()


class ShardWriter:
    """Streams request lines into size-, count- and token-limited JSONL shards."""

    def __init__(
        self,
        run_dir: str,
        *,
        prefix: str = "shards/shard",
        limits: LimitsSpec,
        model: str | None = None,
        endpoint: Endpoint | None = None,
        dry_run: bool = False,
    ) -> None:
        """`model`/`endpoint` default to those of the first line; `dry_run` writes each shard's
        index but neither writes nor hashes its lines (its shards have an empty sha256): what a
        dry partitioned build (`estimate`) merges."""
        self.run_dir = run_dir
        self.prefix = prefix.strip("/")
        self.limits = limits
        self.model = model
        self.endpoint = endpoint
        self.dry_run = dry_run
        self._stack = ExitStack()
        self._current: _OpenShard | None = None
        self._done_ids: array[int] = array("q")
        self._shards: list[ShardInfo] = []
        self._closed = False
        self._pool = (
            None
            if dry_run
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="overnight-shard-writer")
        )

    # -- public API -----------------------------------------------------------------------

    def seen(self, custom_id: str) -> bool:
        """True if this custom_id was already added in this writer's run."""
        current = self._current
        if current is not None and custom_id in current.id_strings:
            return True
        key = hash(custom_id)
        i = bisect_left(self._done_ids, key)
        return i < len(self._done_ids) and self._done_ids[i] == key

    def check_fits(self, line_bytes: int, input_tokens: int) -> None:
        """Raise `RequestTooLargeError` if one request alone can never fit in a shard."""
        limits = self.limits
        if line_bytes >= limits.max_shard_bytes:
            raise RequestTooLargeError(
                f"the request line is {line_bytes} bytes; shards must stay under "
                f"{limits.max_shard_bytes} (limits.max_shard_bytes)",
                reason="bytes",
            )
        if limits.max_shard_tokens is not None and input_tokens > limits.max_shard_tokens:
            raise RequestTooLargeError(
                f"the request has {input_tokens} input tokens; a shard may hold at most "
                f"{limits.max_shard_tokens} (limits.max_shard_tokens)",
                reason="tokens",
            )

    def add(
        self, custom_id: str, line: bytes, index_row: RequestIndexRow, input_tokens: int
    ) -> None:
        """Append one request line (a trailing newline is added if missing) and its index row."""
        if self._closed:
            raise ShardingError("the shard writer is closed")
        if index_row.custom_id != custom_id or index_row.input_tokens != input_tokens:
            raise ShardingError(f"index row does not match custom_id {custom_id!r}")
        if self.seen(custom_id):
            raise DuplicateCustomIdError(f"custom_id {custom_id!r} is already in this run")
        if not line.endswith(b"\n"):
            line += b"\n"
        size = len(line)
        self.check_fits(size, input_tokens)
        shard = self._current
        limits = self.limits
        if shard is not None and (
            shard.requests >= limits.max_requests_per_shard
            or shard.bytes + size >= limits.max_shard_bytes
            or (
                limits.max_shard_tokens is not None
                and shard.tokens + input_tokens > limits.max_shard_tokens
            )
        ):
            self._finish()
            shard = None
        if shard is None:
            if self.model is None or self.endpoint is None:
                self._learn_model(line)
            shard = self._open()
        shard.buffer.append(line)
        shard.buffered += size
        shard.requests += 1
        shard.bytes += size
        shard.tokens += input_tokens
        shard.rows.append(index_row)
        shard.id_strings.add(custom_id)
        if shard.buffered >= _FLUSH_BYTES:
            shard.flush()

    @property
    def shards(self) -> list[ShardInfo]:
        """The shards finished so far."""
        return list(self._shards)

    def close(self) -> list[ShardInfo]:
        """Finish the open shard and return every shard written, in order."""
        if not self._closed:
            try:
                self._finish()
            finally:
                self._closed = True
                self._stack.close()
                if self._pool is not None:
                    self._pool.shutdown()
        return list(self._shards)

    def abort(self) -> None:
        """Discard the open shard (nothing of it appears); finished shards stay."""
        self._closed = True
        current, self._current = self._current, None
        if current is not None:
            for future in current.pending:
                future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ------------------------------------------------------------------------

    def _learn_model(self, line: bytes) -> None:
        request = cast("dict[str, Any]", orjson.loads(line))
        self.endpoint = self.endpoint or request["url"]
        self.model = self.model or request["body"]["model"]

    def _open(self) -> _OpenShard:
        number = len(self._shards)
        stem = f"{self.prefix}-{number:05d}"
        shard_id = stem.rsplit("/", 1)[-1]
        uri = storage.join(self.run_dir, f"{stem}.jsonl")
        index_uri = storage.join(self.run_dir, f"{stem}.index.parquet")
        fh = None if self.dry_run else self._stack.enter_context(storage.open_write(uri))
        self._current = _OpenShard(shard_id, uri, index_uri, fh, self._pool)
        return self._current

    def _finish(self) -> None:
        shard = self._current
        if shard is None:
            return
        self._current = None
        shard.drain()
        if not self.dry_run:
            # Closing the innermost context commits the shard file atomically.
            self._stack.pop_all().close()
        self._write_index(shard)
        hashes = [hash(custom_id) for custom_id in shard.id_strings]
        hashes.sort()
        self._done_ids = array("q", _merge_sorted(self._done_ids, hashes))
        assert self.model is not None and self.endpoint is not None
        self._shards.append(
            ShardInfo(
                shard_id=shard.shard_id,
                uri=shard.uri,
                index_uri=shard.index_uri,
                sha256="" if self.dry_run else shard.sha.hexdigest(),
                requests=shard.requests,
                bytes=shard.bytes,
                input_tokens=shard.tokens,
                model=self.model,
                endpoint=self.endpoint,
            )
        )

    def _write_index(self, shard: _OpenShard) -> None:
        import polars as pl

        schema = {name: getattr(pl, dtype) for name, dtype in INDEX_SCHEMA.items()}
        frame = pl.DataFrame(shard.rows, schema=schema, orient="row")
        with storage.open_write(shard.index_uri) as fh:
            frame.write_parquet(fh)


def _merge_sorted(done: array[int], new: list[int]) -> list[int]:
    # Timsort finds the two sorted runs and merges them in linear time.
    return sorted(chain(done, new))
