"""What every worker pool needs: the usable cores, and workers that die with their parent."""

from __future__ import annotations

import os
import threading
import time

PARENT_CHECK_SECONDS = 0.5


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def exit_with_parent(parent: int) -> None:
    """In a pool worker: exit within `PARENT_CHECK_SECONDS` once `parent` is gone.

    A SIGKILLed parent leaves no worker behind. `parent` is the pool's process id as the pool
    saw it (`os.getpid()` there, passed in the initializer's arguments), not this process's
    parent when it asks: a parent killed while the worker was still starting has already
    handed it to init. Spawn makes the pool's process the parent, so any other parent means
    the pool's process died.
    """
    if os.getppid() != parent:
        os._exit(70)
    threading.Thread(
        target=_watch_parent, args=(parent,), name="overnight-parent-watch", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(70)
