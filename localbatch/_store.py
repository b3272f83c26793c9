"""State on disk: SQLite for metadata, one file per content, every write atomic.

Layout of a data directory:

    localbatch.sqlite3     files, batches (with the engine's checkpoint), meta, line attempts
    files/<file_id>        file contents (uploads, outputs, error files)
    work/<batch_id>/       output.jsonl and error.jsonl while a batch runs
    tmp/                   uploads in flight (cleared at start)
    lock                   held by the one server using this directory
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sqlite3
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})
FilePurpose = Literal["batch", "batch_output"]

_ALPHABET = string.ascii_letters + string.digits
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    doc BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    doc BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS line_attempts (custom_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


class StoreLockedError(RuntimeError):
    """Another server already uses this data directory."""


def _lock(fh: IO[bytes], data_dir: Path) -> None:
    """Take the data directory's lock, or raise StoreLockedError if another server holds it."""
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise StoreLockedError(f"another local Batch API server uses {data_dir}") from exc


def check_unlocked(data_dir: Path) -> None:
    """Raise StoreLockedError now if another server holds `data_dir` (a server about to start
    says so in one line, before its web stack logs a failed startup)."""
    lock = data_dir / "lock"
    if not lock.exists():
        return
    with open(lock, "a+b") as fh:
        _lock(fh, data_dir)
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def new_file_id() -> str:
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(16)


@dataclass(slots=True)
class FileRecord:
    """One file's metadata; its content is `Store.content_path(id)`."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: FilePurpose
    expires_at: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """The `FileObject` JSON, with unset fields as null as OpenAI sends them."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass(slots=True)
class WorkState:
    """The engine's checkpoint for one batch: where to resume after a restart."""

    validated: bool = False
    input_offset: int = 0
    """Byte offset in the input file of the next line to process."""
    line_no: int = 0
    """Physical lines consumed so far (1-based numbering of the next line is line_no + 1)."""
    executed: int = 0
    """Request lines actually executed (not cancelled or expired)."""
    out_bytes: int = 0
    err_bytes: int = 0
    stop_reason: Literal["cancelled", "expired"] | None = None
    finishing: bool = False
    """All lines are written; the work files are being published (never execute again)."""
    output_file_id: str | None = None
    """Reserved ids, so finalizing twice (after a crash) creates the same files."""
    error_file_id: str | None = None


@dataclass(slots=True)
class BatchRecord:
    """One batch: its wire fields plus the engine's checkpoint."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    created_at: int
    expires_at: int
    status: BatchStatus = "validating"
    metadata: dict[str, str] | None = None
    output_expires_after: int | None = None
    model: str | None = None
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    work: WorkState = field(default_factory=WorkState)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_wire(self) -> dict[str, Any]:
        """The `Batch` JSON.

        Every field is present, unset ones as null, as OpenAI sends them (its spec types some
        of them as non-nullable, but its API and its own reference examples return null, and
        clients that read JSON by key expect every key).
        """
        out: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }
        out["model"] = self.model
        out["errors"] = {"object": "list", "data": self.errors} if self.errors is not None else None
        for key in (
            "output_file_id",
            "error_file_id",
            "in_progress_at",
            "finalizing_at",
            "completed_at",
            "failed_at",
            "expired_at",
            "cancelling_at",
            "cancelled_at",
        ):
            out[key] = getattr(self, key)
        out["request_counts"] = {
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
        }
        out["usage"] = {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        out["metadata"] = self.metadata
        return out


def _batch_from_doc(doc: bytes) -> BatchRecord:
    data = orjson.loads(doc)
    work = WorkState(**data.pop("work"))
    return BatchRecord(**data, work=work)


def _file_from_doc(doc: bytes) -> FileRecord:
    return FileRecord(**orjson.loads(doc))


class Store:
    """Metadata in SQLite (one connection, serialized by a lock), contents as files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.work_root = data_dir / "work"
        self.tmp_dir = data_dir / "tmp"
        for folder in (self.files_dir, self.work_root, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(data_dir / "lock", "a+b")  # noqa: SIM115 - held for our lifetime
        try:
            _lock(self._lock_fh, data_dir)
        except StoreLockedError:
            self._lock_fh.close()
            raise
        for stale in self.tmp_dir.iterdir():
            if stale.is_file():
                stale.unlink(missing_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            data_dir / "localbatch.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
        self._lock_fh.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- paths --------------------------------------------------------------------------------

    def content_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    def work_dir(self, batch_id: str) -> Path:
        return self.work_root / batch_id

    def new_tmp_path(self) -> Path:
        return self.tmp_dir / f"upload-{secrets.token_hex(8)}.part"

    # -- files --------------------------------------------------------------------------------

    def add_file(self, record: FileRecord, content: Path) -> None:
        """Move `content` into place and record the file (the rename is atomic)."""
        os.replace(content, self.content_path(record.id))
        with self._tx() as db:
            db.execute(
                "INSERT INTO files (id, purpose, doc) VALUES (?, ?, ?)",
                (record.id, record.purpose, orjson.dumps(asdict(record))),
            )

    def get_file(self, file_id: str) -> FileRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM files WHERE id = ? AND deleted = 0", (file_id,)
            ).fetchone()
        return None if row is None else _file_from_doc(row[0])

    def list_files(
        self, *, after: str | None, limit: int, order: Literal["asc", "desc"], purpose: str | None
    ) -> tuple[list[FileRecord], bool] | None:
        """One page of files and whether more follow; None if `after` names no file ever seen."""
        clauses = ["deleted = 0"]
        params: list[Any] = []
        with self._lock:
            if after is not None:
                row = self._db.execute("SELECT seq FROM files WHERE id = ?", (after,)).fetchone()
                if row is None:
                    return None
                clauses.append("seq > ?" if order == "asc" else "seq < ?")
                params.append(row[0])
            if purpose is not None:
                clauses.append("purpose = ?")
                params.append(purpose)
            direction = "ASC" if order == "asc" else "DESC"
            rows = self._db.execute(
                f"SELECT doc FROM files WHERE {' AND '.join(clauses)} "
                f"ORDER BY seq {direction} LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        records = [_file_from_doc(r[0]) for r in rows[:limit]]
        return records, len(rows) > limit

    def delete_file(self, file_id: str) -> bool:
        """Forget a file (its row stays as a tombstone so list cursors keep working)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE files SET deleted = 1 WHERE id = ? AND deleted = 0", (file_id,)
            )
            gone = cur.rowcount > 0
        if gone:
            self.content_path(file_id).unlink(missing_ok=True)
        return gone

    # -- batches ------------------------------------------------------------------------------

    def add_batch(self, record: BatchRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (id, status, doc) VALUES (?, ?, ?)",
                (record.id, record.status, orjson.dumps(asdict(record))),
            )

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else _batch_from_doc(row[0])

    def list_batches(self, *, after: str | None, limit: int) -> tuple[list[BatchRecord], bool]:
        """One page of batches, newest first, and whether more follow."""
        with self._lock:
            seq: int | None = None
            if after is not None:
                row = self._db.execute("SELECT seq FROM batches WHERE id = ?", (after,)).fetchone()
                seq = row[0] if row is not None else None
                if seq is None:
                    return [], False
            if seq is None:
                rows = self._db.execute(
                    "SELECT doc FROM batches ORDER BY seq DESC LIMIT ?", (limit + 1,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT doc FROM batches WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                    (seq, limit + 1),
                ).fetchall()
        return [_batch_from_doc(r[0]) for r in rows[:limit]], len(rows) > limit

    def update_batch(
        self,
        batch_id: str,
        change: Callable[[BatchRecord], None],
        *,
        new_files: Iterable[FileRecord] = (),
        count_attempts: Iterable[str] = (),
    ) -> BatchRecord:
        """Read, change and write one batch atomically; return it.

        In the same transaction: record `new_files`, and count one more execution of each
        custom_id in `count_attempts` (so a retried line gets a fresh fault draw).
        """
        with self._tx() as db:
            row = db.execute("SELECT doc FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                raise KeyError(batch_id)
            record = _batch_from_doc(row[0])
            change(record)
            for file in new_files:
                db.execute(
                    "INSERT OR IGNORE INTO files (id, purpose, doc) VALUES (?, ?, ?)",
                    (file.id, file.purpose, orjson.dumps(asdict(file))),
                )
            db.executemany(
                "INSERT INTO line_attempts (custom_id, n) VALUES (?, 1) "
                "ON CONFLICT(custom_id) DO UPDATE SET n = n + 1",
                ((cid,) for cid in count_attempts),
            )
            db.execute(
                "UPDATE batches SET status = ?, doc = ? WHERE id = ?",
                (record.status, orjson.dumps(asdict(record)), batch_id),
            )
        return record

    def unfinished_batch_ids(self) -> list[str]:
        """Batches a (re)started server must carry on, oldest first."""
        placeholders = ",".join("?" for _ in TERMINAL_STATUSES)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM batches WHERE status NOT IN ({placeholders}) ORDER BY seq",
                tuple(TERMINAL_STATUSES),
            ).fetchall()
        return [r[0] for r in rows]

    def remove_work_dir(self, batch_id: str) -> None:
        shutil.rmtree(self.work_dir(batch_id), ignore_errors=True)

    # -- attempts and meta ---------------------------------------------------------------------

    def attempts(self, custom_ids: list[str]) -> dict[str, int]:
        """How many times each custom_id has been taken for execution (0 if never)."""
        out: dict[str, int] = {}
        with self._lock:
            for start in range(0, len(custom_ids), 500):
                part = custom_ids[start : start + 500]
                marks = ",".join("?" for _ in part)
                for cid, n in self._db.execute(
                    f"SELECT custom_id, n FROM line_attempts WHERE custom_id IN ({marks})", part
                ):
                    out[cid] = n
        return out

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
