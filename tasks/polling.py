"""When to look at a batch again: soon after it is created, then less often as it ages.

One rule serves `run` (which waits) and the scheduled `collect` (which skips batches that are
not due): the next poll comes after a fifth of the batch's age, sooner when its progress says
it is about to finish, never sooner than a floor nor later than a cap, and never before the
`retry-after` the API asked for. A batch that takes 24 hours costs about 90 polls; one on a
local backend is polled at least every second, so it is picked up within a second or two of
finishing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import openai


@dataclass(frozen=True, kw_only=True)
class PollPolicy:
    """Bounds of the polling rule, in seconds."""

    first: float
    floor: float
    cap: float


REMOTE = PollPolicy(first=3.0, floor=2.0, cap=1800.0)
LOCAL = PollPolicy(first=0.3, floor=0.25, cap=1.0)

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def policy_for(backend: str) -> PollPolicy:
    """The local policy for the embedded API and loopback servers, the remote one otherwise.

    `OVERNIGHT_POLL_POLICY=remote` (or `local`) overrides the choice, e.g. for a slow
    self-hosted model behind a local gateway.
    """
    from overnight.settings import get_settings
    from tasks.gateway import EMBEDDED

    chosen = get_settings().poll_policy
    if chosen != "auto":
        return LOCAL if chosen == "local" else REMOTE
    if backend == EMBEDDED or (urlsplit(backend).hostname or "") in _LOOPBACK:
        return LOCAL
    return REMOTE


def next_delay(
    policy: PollPolicy,
    *,
    age: float,
    status: str | None,
    progress: float | None,
    running_for: float | None,
    retry_after: float | None = None,
) -> float:
    """Seconds until the next poll of a batch `age` seconds old.

    `progress` is the share of requests done and `running_for` how long the batch has been
    `in_progress`; from them comes an estimate of the time left, which brings the next poll
    forward, but never closer than a twentieth of the age (a batch stuck at 99% is not
    polled every few seconds for hours).
    """
    delay = age / 5
    if status == "in_progress" and progress and 0 < progress < 1 and running_for:
        left = running_for * (1 - progress) / progress
        delay = min(delay, max(left, age / 20))
    delay = min(max(delay, policy.floor), policy.cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def due_at(
    policy: PollPolicy,
    *,
    now: datetime,
    created_at: datetime,
    status: str | None,
    progress: float | None,
    in_progress_since: datetime | None,
    retry_after: float | None = None,
) -> datetime:
    """When a batch created at `created_at` and looked at `now` is next due."""
    running = (now - in_progress_since).total_seconds() if in_progress_since else None
    delay = next_delay(
        policy,
        age=max((now - created_at).total_seconds(), 0.0),
        status=status,
        progress=progress,
        running_for=running,
        retry_after=retry_after,
    )
    return now + timedelta(seconds=delay)


def retry_after_seconds(exc: openai.APIStatusError) -> float | None:
    """The wait an API error asked for (`retry-after-ms` or `retry-after`), if any."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) / scale, 0.0)
        except ValueError:
            continue
    return None
