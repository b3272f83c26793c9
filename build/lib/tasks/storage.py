"""The storage seam: local folders and `s3://bucket/prefix` behind one small set of functions.

Every write is atomic: a local file is written beside its target and renamed over it; an S3
object is staged in a local temporary file and sent as one PUT or one completed multipart
upload, so readers see the whole object or nothing. S3 settings (endpoint, credentials,
region) come from the standard AWS environment and config files, e.g. `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class StorageError(Exception):
    """A storage location could not be read or written."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One file or object found under a location."""

    uri: str
    key: str
    """Path relative to the listed location, with `/` separators."""
    size: int
    version: str
    """ETag for S3 objects, `mtime_ns` for local files: changes when the content may have."""


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """Split `s3://bucket/key` into bucket and key."""
    rest = uri.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"not an S3 URI with a bucket: {uri!r}")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or S3 URI."""
    if is_s3(base):
        out = base.rstrip("/")
        for part in parts:
            out = f"{out}/{part.strip('/')}"
        return out
    return str(Path(base).joinpath(*parts))


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    """Return a boto3 S3 client configured from the standard AWS settings."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16)
    client: S3Client = boto3.session.Session().client("s3", config=config)
    return client


def _matches(key: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = key.rsplit("/", 1)[-1]

    def hit(patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(name, p) for p in patterns)

    return (not include or hit(include)) and not hit(exclude)


def list_files(
    uri: str, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[ObjectInfo]:
    """Yield the files under a folder or S3 prefix, sorted by key, streaming page by page.

    `include`/`exclude` are glob patterns matched against the relative key and the file name.
    """
    if is_s3(uri):
        bucket, prefix = split_s3(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                rel = key[len(prefix) :]
                if not rel or key.endswith("/") or not _matches(rel, include, exclude):
                    continue
                yield ObjectInfo(
                    uri=f"s3://{bucket}/{key}",
                    key=rel,
                    size=obj["Size"],
                    version=obj.get("ETag", "").strip('"'),
                )
        return
    root = Path(uri)
    if root.is_file():
        st = root.stat()
        yield ObjectInfo(uri=str(root), key=root.name, size=st.st_size, version=str(st.st_mtime_ns))
        return
    if not root.is_dir():
        raise StorageError(f"no such folder: {uri}")
    yield from _walk_local(str(root), len(str(root)) + 1, include, exclude)


def _walk_local(
    folder: str, strip: int, include: Sequence[str], exclude: Sequence[str]
) -> Iterator[ObjectInfo]:
    """Depth-first, sorted by name; keys are paths relative to the root (`strip` characters)."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_local(entry.path, strip, include, exclude)
        elif entry.is_file():
            rel = entry.path[strip:].replace(os.sep, "/")
            if _matches(rel, include, exclude):
                st = entry.stat()
                yield ObjectInfo(
                    uri=entry.path, key=rel, size=st.st_size, version=str(st.st_mtime_ns)
                )


def list_dirs(uri: str) -> list[str]:
    """Names of the folders (S3: common prefixes) directly under a location, sorted.

    Unlike `list_files`, it does not walk what is inside them, so it stays cheap however many
    objects a run folder holds.
    """
    if is_s3(uri):
        bucket, prefix = split_s3(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        pages = (
            s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        )
        names = [
            common["Prefix"][len(prefix) :].rstrip("/")
            for page in pages
            for common in page.get("CommonPrefixes", [])
        ]
        return sorted(names)
    root = Path(uri)
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir())


def exists(uri: str) -> bool:
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True
    return Path(uri).exists()


@contextmanager
def open_read(uri: str) -> Iterator[IO[bytes]]:
    """Open a file or object for streaming reads."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        body: Any = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield body
        finally:
            body.close()
        return
    with open(uri, "rb") as fh:
        yield fh


def iter_lines(uri: str) -> Iterator[bytes]:
    """Stream the non-empty lines of a file or object (without their line endings)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        body: Any = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for line in body.iter_lines(chunk_size=1 << 20):
                if line.strip():
                    yield line
        finally:
            body.close()
        return
    with open(uri, "rb", buffering=1 << 20) as fh:
        for line in fh:
            if line.strip():
                yield line.rstrip(b"\r\n")


def read_bytes(uri: str) -> bytes:
    """Read a whole file or object."""
    with open_read(uri) as fh:
        return fh.read()


@contextmanager
def open_write(uri: str) -> Iterator[IO[bytes]]:
    """Open a file or object for writing; it appears whole on success and not at all on error."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        with tempfile.TemporaryFile(prefix="overnight-") as tmp:
            yield tmp
            tmp.flush()
            tmp.seek(0)
            # upload_fileobj uses one PUT or a multipart upload that is completed or aborted.
            s3_client().upload_fileobj(tmp, bucket, key)
        return
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file or object atomically."""
    with open_write(uri) as fh:
        fh.write(data)


def local_path(uri: str) -> Path | None:
    """The local path of a URI, or None for remote storage."""
    return None if is_s3(uri) else Path(uri)


def delete(uri: str) -> None:
    """Remove a file or object if it exists."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)
