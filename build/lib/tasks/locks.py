"""Leases that keep two processes from working on the same run (or job) at the same time.

Prefect deployments already run one `collect` at a time; these leases also cover a person
running `overnight collect` by hand while the scheduled one works, which could otherwise
upload and create the same shard twice. Local folders use `flock` (released by the kernel if
the process dies); S3 uses a conditional PUT (`If-None-Match: *`) of a lease object with an
expiry, so a killed process's lease lapses after `ttl_seconds`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson

from tasks import storage


class LockBusy(Exception):
    """Another process holds the lease."""


@contextmanager
def lease(uri: str, *, ttl_seconds: float = 3600.0, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lease on `uri` for the block; raise LockBusy if it stays taken.

    With `wait_seconds`, try again every half second until then.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            release = _acquire_s3(uri, ttl_seconds) if storage.is_s3(uri) else _acquire_local(uri)
            break
        except LockBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    try:
        yield
    finally:
        release()


def _acquire_local(uri: str) -> Callable[[], None]:
    path = storage.local_path(uri)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockBusy(f"{uri} is held by another process") from None
    return lambda: os.close(fd)


def _acquire_s3(uri: str, ttl_seconds: float) -> Callable[[], None]:
    from botocore.exceptions import ClientError

    bucket, key = storage.split_s3(uri)
    client = storage.s3_client()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    body = orjson.dumps({"owner": owner, "expires_at": time.time() + ttl_seconds})
    for _ in range(2):
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            break
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            try:
                held = orjson.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            except ClientError:
                continue  # released between our PUT and GET: try again
            if float(held.get("expires_at", 0)) > time.time():
                raise LockBusy(f"{uri} is held by {held.get('owner')}") from None
            client.delete_object(Bucket=bucket, Key=key)  # the lapsed lease of a dead process
    else:
        raise LockBusy(f"{uri} could not be taken")

    def release() -> None:
        current = orjson.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        if current.get("owner") == owner:
            client.delete_object(Bucket=bucket, Key=key)

    return release
