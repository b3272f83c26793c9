"""The polling rule: soon after submit, sparse for a long batch, prompt on a local backend."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai
import pytest

from tasks.polling import LOCAL, REMOTE, PollPolicy, next_delay, retry_after_seconds

Progress = Callable[[float, float], float | None]


def _polls_until_noticed(
    policy: PollPolicy, duration: float, progress: Progress
) -> tuple[int, float]:
    """Polls made for a batch that finishes after `duration` s, and how late it was noticed."""
    t, polls = policy.first, 0
    while True:
        polls += 1
        if t >= duration:
            return polls, t - duration
        t += next_delay(
            policy, age=t, status="in_progress", progress=progress(t, duration), running_for=t
        )


SHAPES: dict[str, Progress] = {
    "steady": lambda t, total: t / total,
    "no counts": lambda t, total: None,
    "stuck at 99%": lambda t, total: min(t / (total * 0.1), 0.99),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_day_long_batch_costs_about_a_hundred_polls(shape: str) -> None:
    polls, late = _polls_until_noticed(REMOTE, 24 * 3600, SHAPES[shape])
    assert polls <= 100
    assert late <= REMOTE.cap


@pytest.mark.parametrize(
    ("duration", "most_polls"), [(20.0, 12), (300.0, 30), (3600.0, 40), (6 * 3600.0, 52)]
)
def test_a_finished_batch_is_noticed_within_a_fifth_of_its_age(
    duration: float, most_polls: int
) -> None:
    polls, late = _polls_until_noticed(REMOTE, duration, SHAPES["no counts"])
    assert late <= max(duration / 5, REMOTE.floor)
    assert polls <= most_polls  # grows with the log of the duration


def test_steady_progress_brings_the_poll_to_the_finish() -> None:
    _, late = _polls_until_noticed(REMOTE, 3600, SHAPES["steady"])
    assert late < 60


def test_a_local_backend_is_polled_at_least_every_second() -> None:
    for age in (0.1, 5.0, 600.0, 86_400.0):
        assert next_delay(LOCAL, age=age, status="in_progress", progress=None, running_for=age) <= 1
    polls, late = _polls_until_noticed(LOCAL, 3.0, SHAPES["no counts"])
    assert late <= 1.0 and polls <= 15


def test_retry_after_is_honoured() -> None:
    delay = next_delay(
        REMOTE, age=10, status="in_progress", progress=None, running_for=10, retry_after=90
    )
    assert delay == 90


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None)],
)
def test_retry_after_is_read_from_the_api_error(
    headers: dict[str, str], expected: float | None
) -> None:
    request = httpx2.Request("GET", "http://127.0.0.1/v1/batches/batch_1")
    response = httpx2.Response(429, headers=headers, request=request)
    error = openai.RateLimitError("slow down", response=response, body=None)
    assert retry_after_seconds(error) == expected
