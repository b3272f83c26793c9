"""A virtual clock: `time_scale` virtual seconds pass per real second, never going backwards."""

from __future__ import annotations

import time


class VirtualClock:
    def __init__(self, time_scale: float, *, not_before: float = 0.0) -> None:
        self.time_scale = time_scale
        self._real_start = time.monotonic()
        self._virtual_start = max(time.time(), not_before)

    def now(self) -> float:
        """Virtual Unix time in seconds."""
        return self._virtual_start + (time.monotonic() - self._real_start) * self.time_scale

    def timestamp(self) -> int:
        return int(self.now())
