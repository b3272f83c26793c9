"""Fault injection: seeded, deterministic draws for request lines and for API calls.

A line's fate is a pure function of (seed, custom_id, attempt), where the attempt counts how
often this server has taken that custom_id for execution: the same input on a fresh server
with the same seed fails the same way, and a retried line gets a fresh draw. API-call faults
come from one seeded stream, in the order the calls arrive.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from dataclasses import dataclass
from typing import Literal

from localbatch._config import FaultConfig

LineFault = Literal[
    "http_500", "http_429", "timeout", "invalid_json", "schema_violation", "refusal", "length"
]


def _unit(seed: int, custom_id: str, attempt: int) -> float:
    digest = hashlib.blake2b(f"{seed}\x1f{custom_id}\x1f{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def draw_line_fault(
    faults: FaultConfig, *, seed: int, custom_id: str, attempt: int
) -> LineFault | None:
    """The fault (if any) that hits one request line."""
    bins: tuple[tuple[LineFault, float], ...] = (
        ("timeout", faults.line_timeout_rate),
        ("http_500", faults.line_500_rate),
        ("http_429", faults.line_429_rate),
        ("refusal", faults.line_refusal_rate),
        ("length", faults.line_length_rate),
        ("invalid_json", faults.line_invalid_json_rate),
        ("schema_violation", faults.line_schema_violation_rate),
    )
    if not any(rate for _, rate in bins):
        return None
    u = _unit(seed, custom_id, attempt)
    edge = 0.0
    for kind, rate in bins:
        edge += rate
        if u < edge:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class APIFault:
    status_code: int | None
    """429 or 500 to answer instead of the real handler, or None."""
    delay_seconds: float
    headers: dict[str, str]


class APIFaultDice:
    """One seeded stream of draws for API calls (thread-safe)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"api:{seed}")
        self._lock = threading.Lock()

    def roll(self, faults: FaultConfig) -> APIFault | None:
        if not (faults.api_429_rate or faults.api_500_rate or faults.api_delay_seconds):
            return None
        with self._lock:
            u = self._random.random()
            v = self._random.random()
        status: int | None = None
        if u < faults.api_429_rate:
            status = 429
        elif u < faults.api_429_rate + faults.api_500_rate:
            status = 500
        delay = faults.api_delay_seconds if v < faults.api_delay_rate else 0.0
        if status is None and not delay:
            return None
        wait = faults.api_retry_after_seconds
        headers = (
            {
                "retry-after": str(math.ceil(wait)),
                "retry-after-ms": str(int(wait * 1000)),
            }
            if status is not None
            else {}
        )
        return APIFault(status_code=status, delay_seconds=delay, headers=headers)
