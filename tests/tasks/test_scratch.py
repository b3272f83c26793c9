"""Scratch files and folders left by a killed process are removed by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks import scratch

ROOT = Path(__file__).resolve().parents[2]

KILLED_INSIDE = """
import os, signal, sys
sys.path.insert(0, {root!r})
from tasks.scratch import scratch_dir, scratch_file
with scratch_dir("estimate") as folder, scratch_file("src") as fh:
    (folder / "shard-00000.index.parquet").write_bytes(b"x" * 1000)
    fh.write(b"a decompressed source file")
    fh.flush()
    print(folder, fh.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_inside(tmp: Path) -> list[Path]:
    """Run a process that is SIGKILLed holding a scratch folder and file; return both."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_INSIDE.format(root=str(ROOT))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr
    return [Path(p) for p in done.stdout.split()]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_what_a_killed_process_left_is_removed_by_the_next(tmp_path: Path) -> None:
    folder, file = _killed_inside(tmp_path)
    assert folder.is_dir() and file.is_file()  # SIGKILL: nothing could clean up
    assert folder.name.startswith("overnight-estimate-")

    # Within the hour it is kept (a shared temporary folder may show another namespace's ids).
    assert scratch.sweep(tmp_path) == []
    for path in (folder, file):
        _age(path, scratch.STALE_SECONDS + 60)
    assert sorted(scratch.sweep(tmp_path)) == sorted([folder, file])
    assert not folder.exists() and not file.exists()


def test_a_living_process_keeps_its_scratch(tmp_path: Path) -> None:
    mine = tmp_path / f"overnight-sink-{os.getpid()}-abc123"
    mine.mkdir()
    parent = tmp_path / f"overnight-parts-{os.getppid()}-def456"
    parent.mkdir()
    other = tmp_path / "overnight-notes-kept"  # not a scratch name
    other.mkdir()
    for path in (mine, parent, other):
        _age(path, scratch.STALE_SECONDS * 5)
    assert scratch.sweep(tmp_path) == []
    assert mine.is_dir() and parent.is_dir() and other.is_dir()


def test_the_first_scratch_of_a_process_sweeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, file = _killed_inside(tmp_path)
    for path in (folder, file):
        _age(path, scratch.STALE_SECONDS + 60)
    monkeypatch.setattr(scratch.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scratch, "_swept", False)
    with scratch.scratch_dir("estimate") as fresh:
        assert fresh.parent == tmp_path
        assert fresh.name.startswith(f"overnight-estimate-{os.getpid()}-")
        assert not folder.exists() and not file.exists()
    assert not fresh.exists()
