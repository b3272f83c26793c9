"""What every worker pool needs: the usable cores, and workers that die with their parent."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

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


INTERRUPT_RETRY_SECONDS = 0.05


def interrupt_outside_imports() -> None:
    """Deliver Ctrl-C (SIGINT) as KeyboardInterrupt, but never inside the import machinery.

    A KeyboardInterrupt raised while Python releases a module's import lock is swallowed
    ("Exception ignored in ... _get_module_lock.<locals>.cb") and leaves that lock held: the
    command then goes on as if Ctrl-C had not been pressed, and the next thread to import the
    module waits forever (`overnight run` hung for good about 1 time in 10 when Ctrl-C came in
    its first second). A Ctrl-C that lands in an import is sent again 50 ms later instead.
    Installed in the main thread only, over Python's default handler only.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        at = frame
        while at is not None:
            if at.f_code.co_filename.startswith("<frozen importlib"):
                again = threading.Timer(
                    INTERRUPT_RETRY_SECONDS, os.kill, (os.getpid(), signal.SIGINT)
                )
                again.daemon = True
                again.start()
                return
            at = at.f_back
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)


@contextmanager
def children_without_interrupts() -> Iterator[None]:
    """Start worker processes with Ctrl-C blocked in them.

    Ctrl-C at a terminal signals the whole process group: a worker still starting printed a
    KeyboardInterrupt traceback of its own. Processes started in this block inherit the
    calling thread's blocked SIGINT (fork and exec keep the signal mask), so only the parent
    sees Ctrl-C and stops them in order; the parent's own Ctrl-C is held until the block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


WORKER_ALLOCATOR = "narenas:1"
"""jemalloc settings (`_RJEM_MALLOC_CONF`, read by polars' allocator as a process starts) added
for collect's parse workers, unless the settings name an arena count: one arena, not eight on
2 cores. A parse worker judges lines on its main thread while polars runs each part's queries
and writes on threads of its own, and an arena a thread kept each one's freed pages: at 10^6
lines on 2 workers the process tree peaked at 490-507 MB with the default, 451-455 MB with one
arena, at the same speed (benchmarks/collect_throughput.py). The build's workers keep the
default: their peak is the same either way (527 against 530 MB at 200,000 documents)."""

_ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"


def one_allocator_arena() -> contextlib.ExitStack:
    """Add WORKER_ALLOCATOR to the allocator settings that processes spawned from now inherit,
    unless they choose an arena count already; closing the returned stack puts them back.

    Polars writes its own defaults into that variable as it loads, and appends what was there
    (a user's settings, or these): later settings win. Only the processes spawned meanwhile
    read the change: this process's allocator read its settings when polars loaded.
    """
    stack = contextlib.ExitStack()
    before = os.environ.get(_ALLOCATOR_VARIABLE)
    if before is not None and "narenas" in before:
        return stack
    os.environ[_ALLOCATOR_VARIABLE] = f"{before},{WORKER_ALLOCATOR}" if before else WORKER_ALLOCATOR

    def restore() -> None:
        if before is None:
            os.environ.pop(_ALLOCATOR_VARIABLE, None)
        else:
            os.environ[_ALLOCATOR_VARIABLE] = before

    stack.callback(restore)
    return stack
