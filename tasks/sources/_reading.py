"""Reading a listed file's bytes: whole, streamed, or gunzipped, and naming its format."""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, cast

from botocore.exceptions import BotoCoreError, ClientError

from tasks import storage
from tasks.scratch import scratch_file
from tasks.storage import ObjectInfo, StorageError

READ_ERRORS = (OSError, StorageError, BotoCoreError, ClientError)
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def read_bytes(uri: str) -> bytes:
    """The whole content of a local file or an S3 object."""
    if storage.is_s3(uri):
        return storage.read_bytes(uri)
    fd = os.open(uri, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def file_kind(key: str) -> tuple[str, bool]:
    """The lower-case format suffix of a key (`.gz` removed) and whether it was gzipped."""
    name = key.rsplit("/", 1)[-1].lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    dot = name.rfind(".")
    return (name[dot:] if dot > 0 else ""), gz


def extension_phrase(key: str) -> str:
    """How a message names a file by its extension: "a '.bin' file (gzipped)"."""
    suffix, gz = file_kind(key)
    what = f"a '{suffix}' file" if suffix else "a file without an extension"
    return f"{what} (gzipped)" if gz else what


def is_read_failure(exc: BaseException) -> bool:
    """True when the storage refused a read (not when the bytes read were bad)."""
    if isinstance(exc, StorageError | BotoCoreError | ClientError):
        return True
    return isinstance(exc, OSError) and exc.errno is not None


def gunzip_limited(data: bytes, limit: int) -> bytes:
    """Decompress gzip data (all members), stopping after `limit` bytes of output.

    Raises EOFError for a truncated stream and zlib.error for a corrupt one.
    """
    out = bytearray()
    while data and len(out) < limit:
        inflater = zlib.decompressobj(wbits=31)
        out += inflater.decompress(data, limit - len(out))
        if len(out) >= limit:
            break
        if not inflater.eof:
            raise EOFError("the gzip stream ends early (truncated file)")
        data = inflater.unused_data
    return bytes(out)


def gunzipped(raw: IO[bytes]) -> IO[bytes]:
    """A stream of the decompressed bytes of a gzip stream."""
    return cast("IO[bytes]", gzip.GzipFile(fileobj=raw))


@contextmanager
def local_copy(info: ObjectInfo, gz: bool) -> Iterator[str]:
    """A local path holding the file's (decompressed) bytes: the file itself when possible."""
    if not gz and not storage.is_s3(info.uri) and info.path is None:
        yield info.uri
        return
    with scratch_file("src") as tmp:
        with storage.open_read(info.location) as raw:
            src = gunzipped(raw) if gz else raw
            shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.flush()
        yield tmp.name
