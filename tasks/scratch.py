"""Scratch files and folders in the system's temporary folder, swept after a killed process.

A temporary file or folder removed on return stays behind when its process is killed first
(SIGKILL, an out-of-memory kill, a lost container): an estimate's indexes, a table staged
before its move, a run's S3 parts copied for one query, a decompressed source file. Night
after night of such kills fills the disk. So each name carries its process id
(`overnight-<kind>-<pid>-<random>`), and the first scratch a process makes removes those of
processes that are gone. An entry is left alone while its process lives, when it belongs to
another user, and for an hour after it last changed: a temporary folder shared with another
process namespace (a container's) shows ids this one cannot see.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PREFIX = "overnight-"
STALE_SECONDS = 3600.0
"""How long an entry of a process that is gone is kept after it last changed."""

_NAME = re.compile(rf"{PREFIX}[a-z0-9]+-(\d+)-[A-Za-z0-9_]+")

_swept = False
_lock = threading.Lock()


def sweep(base: Path | None = None, *, now: float | None = None) -> list[Path]:
    """Remove the scratch entries left by processes that are gone; return what was removed."""
    base = Path(base or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(base.glob(f"{PREFIX}*"))
    except OSError:
        return removed
    for path in entries:
        match = _NAME.fullmatch(path.name)
        if match is None:
            continue  # not a scratch name (an older version's, or another tool's)
        pid = int(match.group(1))
        try:
            stat = path.lstat()
        except OSError:
            continue
        if stat.st_uid != os.getuid() or now - stat.st_mtime < STALE_SECONDS:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process
        return True
    return True


def _sweep_once() -> None:
    global _swept
    with _lock:
        if _swept:
            return
        _swept = True
    sweep()


def _prefix(kind: str) -> str:
    return f"{PREFIX}{kind}-{os.getpid()}-"


def make_dir(kind: str) -> Path:
    """A new scratch folder (the caller removes it); `kind` names what it is for."""
    _sweep_once()
    return Path(tempfile.mkdtemp(prefix=_prefix(kind)))


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A new scratch folder, removed on leaving."""
    path = make_dir(kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_file(kind: str) -> Iterator[IO[bytes]]:
    """A new named scratch file open for writing and reading, removed on leaving."""
    _sweep_once()
    with tempfile.NamedTemporaryFile(prefix=_prefix(kind)) as fh:
        yield fh
