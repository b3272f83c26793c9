"""Two processes never hold the same lease; a dead holder's lease does not block forever."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tasks import storage
from tasks.locks import LockBusy, lease


@pytest.fixture(params=["local", "s3"])
def lock_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "run" / "lock")
    return f"s3://{request.getfixturevalue('s3_bucket')}/runs/r1/lock"


def test_second_holder_is_refused_until_release(lock_uri: str) -> None:
    with lease(lock_uri), pytest.raises(LockBusy), lease(lock_uri):
        pass
    with lease(lock_uri):
        pass


def test_waiting_for_a_lease(lock_uri: str) -> None:
    with lease(lock_uri), pytest.raises(LockBusy):
        started = time.monotonic()
        with lease(lock_uri, wait_seconds=1.0):
            pass
    assert time.monotonic() - started >= 1.0


def test_lapsed_s3_lease_of_a_dead_process_is_taken_over(s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/runs/r2/lock"
    storage.write_bytes(uri, orjson.dumps({"owner": "dead:1", "expires_at": time.time() - 1}))
    with lease(uri):
        assert b"dead" not in storage.read_bytes(uri)
    assert not storage.exists(uri)
