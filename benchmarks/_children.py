"""What the benchmarks that run each measurement in a fresh process share: running the
child, and sampling the peak resident memory of its whole process tree from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _tree_stats(root: int) -> dict[int, list[str]]:
    """The /proc stat fields (after the command name) of a process and all its descendants."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stats[int(entry)] = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
    tree = {root}
    grew = True
    while grew:
        more = {pid for pid, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= more
        grew = bool(more)
    return {pid: stats[pid] for pid in tree if pid in stats}


def tree_rss_kb(root: int) -> int:
    """The resident memory of a process and all its descendants, from /proc."""
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    return sum(int(fields[21]) * page_kb for fields in _tree_stats(root).values())


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """The CPU time (user + system) each process of a tree has used so far, by process id."""
    tick = os.sysconf("SC_CLK_TCK")
    return {
        pid: (int(fields[11]) + int(fields[12])) / tick for pid, fields in _tree_stats(root).items()
    }


def run_child(script: str, args: list[str]) -> tuple[dict[str, Any], float]:
    """Run `script` as a child with `args`; return its last JSON line and the tree's peak RSS MB."""
    proc = subprocess.Popen(
        [sys.executable, script, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"child {args} failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1]), peak / 1024
