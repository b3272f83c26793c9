"""The storage seam: local folders and `s3://bucket/prefix` behind one small set of functions.

Every write is atomic: a local file is written beside its target and renamed over it; an S3
object is staged in a local temporary file and sent as one PUT or one completed multipart
upload, so readers see the whole object or nothing. S3 settings (endpoint, credentials,
region) come from the standard AWS environment and config files, e.g. `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from tasks.failpoints import failpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


class StorageError(Exception):
    """A storage location could not be read or written."""


EntryKind = Literal["file", "directory", "symlink_loop", "broken_symlink", "special", "unreadable"]
"""What a listed entry is: a file to read, a directory (listed so that one named like a file can
be reported), or something that cannot be read as a document, with the reason in `detail`."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One file or object found under a location (or, from `list_entries`, any entry)."""

    uri: str
    """Where it is, printable: a local name that is not valid UTF-8 is escaped (`escape_name`)."""
    key: str
    """Path relative to the listed location, with `/` separators, escaped like `uri`."""
    size: int
    version: str
    """ETag for S3 objects, `mtime_ns` for local files: changes when the content may have."""
    path: str | None = None
    """The local path to open when it differs from `uri` (a name that had to be escaped)."""
    kind: EntryKind = "file"
    detail: str = ""
    """Why an entry that is not a file cannot be read (for `list_entries`)."""

    @property
    def location(self) -> str:
        """What to open: the real local path, or the URI."""
        return self.path or self.uri


_SURROGATES = re.compile("[\ud800-\udfff]")


def escape_name(name: str) -> str:
    """A printable, valid UTF-8 form of a local path that keeps every byte of it.

    Linux file names are bytes; Python hands the ones that are not valid UTF-8 over with lone
    surrogates (`os.fsdecode`, surrogateescape), which cannot be written to JSON, parquet or a
    request body. Such a name is percent-encoded: each undecodable byte becomes `%XX` and a
    literal `%` becomes `%25`, so `urllib.parse.unquote_to_bytes` gives the exact bytes back.
    A valid name is returned unchanged.
    """
    if name.isascii() or not _SURROGATES.search(name):
        return name
    out = []
    for char in name:
        if char == "%":
            out.append("%25")
        elif "\udc80" <= char <= "\udcff":
            out.append(f"%{ord(char) - 0xDC00:02X}")
        elif "\ud800" <= char <= "\udfff":
            out.extend(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))
        else:
            out.append(char)
    return "".join(out)


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


def _hit(key: str, patterns: Sequence[str]) -> bool:
    if not patterns:  # most sources set none: nothing to split or match
        return False
    name = key.rstrip("/").rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _matches(key: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    return (
        (not include or _hit(key, include))
        and not _hit(key, exclude)
        and not _in_excluded(key, exclude)
    )


def excluded(key: str, exclude: Sequence[str]) -> bool:
    """True when the exclude patterns leave out `key`, or a folder above it."""
    return _hit(key, exclude) or _in_excluded(key, exclude)


def _in_excluded(key: str, exclude: Sequence[str]) -> bool:
    """True when a folder above `key` is excluded: `.*` leaves out `a/.git/config`, not only
    `.git/config` (whose key starts with the dot)."""
    if not exclude:
        return False
    folders = key.split("/")[:-1]
    return any(_hit("/".join(folders[: i + 1]), exclude) for i in range(len(folders)))


def _excluded(folder_key: str, exclude: Sequence[str]) -> bool:
    """True when the exclude patterns leave out a folder (`key/`) or whatever is in it."""
    return _hit(folder_key, exclude) or _hit(folder_key + "*", exclude)


def list_files(
    uri: str, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[ObjectInfo]:
    """Yield the files under a folder or S3 prefix, sorted by key, streaming page by page.

    `include`/`exclude` are glob patterns matched against the relative key and the file name;
    a file in a folder an exclude pattern matches (by its key or its name) is left out too.
    Symbolic links are followed as `list_entries` says; entries that are not readable files
    are left out (use `list_entries` to see them).
    """
    for info in list_entries(uri, include=include, exclude=exclude):
        if info.kind == "file":
            yield info


def list_entries(
    uri: str, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[ObjectInfo]:
    """Yield every entry under a folder or S3 prefix, sorted by key: files and everything else.

    Nothing found under the location stops the listing; each entry comes out with its `kind`:

    - `file`: a regular file, or an S3 object.
    - `directory`: a folder (an S3 key ending in `/`), listed before what is in it.
    - `symlink_loop`: a link that resolves to itself (ELOOP), or a link to a folder that is
      the listed root or one of the folders above the link (following it would never end).
    - `broken_symlink`: a link whose target does not exist.
    - `special`: a FIFO, socket or device: never opened (reading a FIFO would block forever).
    - `unreadable`: an entry, or a folder, whose metadata or listing the system refused.

    Following symbolic links: every file is listed once, so that no file is read (and paid
    for) twice. A link to a file, and a link to a folder whose files are then listed under the
    link's key, are followed, except that what a link reaches is left out when it is listed
    anyway: a file inside the root that the listing has under its own key (the link
    `current -> v5` adds nothing to `v5/`), or a file outside the root that an earlier link
    (in key order) already reached. A link to a folder that is already on the path from the
    root to the link is a loop. The root itself may be a link. Hard links are separate files.
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
                if not rel:
                    continue
                # A key ending in "/" is a folder marker, unless it holds bytes: then it is a
                # document like any other (named without its slash), never silently dropped.
                is_dir = key.endswith("/") and not obj["Size"]
                rel = rel.rstrip("/")
                if not _matches(rel, include, exclude):
                    continue
                yield ObjectInfo(
                    uri=f"s3://{bucket}/{key}",
                    key=rel,
                    size=obj["Size"],
                    version=obj.get("ETag", "").strip('"'),
                    kind="directory" if is_dir else "file",
                )
        return
    root = Path(uri)
    if root.is_file():
        st = root.stat()
        yield _local_info(str(root), root.name, st)
        return
    if not root.is_dir():
        if root.is_symlink():
            try:
                root.stat()
            except OSError as exc:
                what = "a symbolic link loop" if exc.errno == errno.ELOOP else "a broken link"
                raise StorageError(f"the source folder {uri} is {what}: {exc.strerror}") from None
        raise StorageError(f"no such folder: {uri}")
    st = root.stat()
    try:
        with os.scandir(root) as it:
            first = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise StorageError(f"cannot list {uri}: {exc}") from exc
    links = _Links(os.path.realpath(root))
    yield from _walk_local(
        first, str(root), len(str(root)) + 1, {(st.st_dev, st.st_ino): ""}, include, exclude, links
    )
    if links.left_out:
        log.info(
            "%d file(s) reached through symbolic links were left out: each is listed once, "
            "under its own path (or the first link to it)",
            links.left_out,
        )


def _local_info(path: str, rel: str, st: os.stat_result) -> ObjectInfo:
    uri = escape_name(path)
    return ObjectInfo(
        uri=uri,
        key=escape_name(rel),
        size=st.st_size,
        version=str(st.st_mtime_ns),
        path=path if uri != path else None,
    )


def _problem(path: str, rel: str, kind: EntryKind, detail: str) -> ObjectInfo:
    uri = escape_name(path)
    return ObjectInfo(
        uri=uri,
        key=escape_name(rel),
        size=0,
        version="",
        path=path if uri != path else None,
        kind=kind,
        detail=detail,
    )


_SPECIAL = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class _Links:
    """What the links of one local listing reached: the root's real path, the files outside
    it already listed through a link, and how many files were left out as listed anyway."""

    def __init__(self, root_real: str) -> None:
        self.root_prefix = root_real.rstrip(os.sep) + os.sep
        self.outside: set[str] = set()
        self.left_out = 0

    def inside_key(self, real: str) -> str | None:
        """The key a real path has in the listing, if it is inside the root."""
        if real.startswith(self.root_prefix):
            return real[len(self.root_prefix) :].replace(os.sep, "/")
        return None

    def listed_anyway(
        self, real: str, include: Sequence[str], exclude: Sequence[str], *, file: bool
    ) -> bool:
        """Whether the entry at `real`, reached through a link, is listed without it: inside
        the root under its own key, or (a file) outside it through an earlier link. A file
        left out so is counted."""
        key = self.inside_key(real)
        if key is not None:
            anyway = _matches(key, include, exclude)
        elif not file:
            return False
        else:
            anyway = real in self.outside
            self.outside.add(real)
        self.left_out += file and anyway
        return anyway


def _walk_local(
    entries: list[os.DirEntry[str]],
    folder: str,
    strip: int,
    ancestors: dict[tuple[int, int], str],
    include: Sequence[str],
    exclude: Sequence[str],
    links: _Links,
    real_folder: str | None = None,
) -> Iterator[ObjectInfo]:
    """Depth-first, sorted by name; keys are paths relative to the root (`strip` characters).

    `ancestors` maps the (device, inode) of each folder from the root down to `folder` to its
    key, so a link back up is recognised as a loop. `real_folder` is the real path of
    `folder` when a link led to it (None when the walk reached it through folders alone).
    """
    for entry in entries:
        path = entry.path
        rel = path[strip:].replace(os.sep, "/")
        # Where this entry itself is in the real tree, when a link led to its folder.
        here = os.path.join(real_folder, entry.name) if real_folder is not None else None
        try:
            is_link = entry.is_symlink()
            st = entry.stat()  # follows links
        except OSError as exc:
            if not _matches(rel, include, exclude):
                continue
            if here is not None and links.listed_anyway(here, include, exclude, file=False):
                continue  # the same entry, in the folder the link leads to
            if exc.errno == errno.ELOOP:
                yield _problem(path, rel, "symlink_loop", f"a symbolic link loop: {exc.strerror}")
            elif is_link and exc.errno == errno.ENOENT:
                target = _readlink(path)
                yield _problem(path, rel, "broken_symlink", f"its target {target} does not exist")
            else:
                yield _problem(path, rel, "unreadable", f"cannot stat it: {exc}")
            continue
        real = os.path.realpath(path) if is_link else here  # for what a link led to
        if stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                if here is not None and links.listed_anyway(here, include, exclude, file=False):
                    continue  # the same loop, in the folder the link leads to
                if _matches(rel, include, exclude):
                    above = ancestors[ident] or "the source root"
                    yield _problem(
                        path,
                        rel,
                        "symlink_loop",
                        f"links back to {escape_name(above)}, a folder above it "
                        f"(target {_readlink(path)})",
                    )
                continue
            if _matches(rel, include, exclude):
                # Walked whatever a link led to: each file in it is judged on its own.
                if real is None or not links.listed_anyway(real, include, exclude, file=False):
                    yield replace(_local_info(path, rel, st), kind="directory")
            elif excluded(rel, exclude):
                continue  # an excluded folder: nothing in it is listed, so it is not walked
            try:
                with os.scandir(path) as it:
                    children = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if not _excluded(f"{rel}/", exclude):
                    yield _problem(path, rel, "unreadable", f"cannot list the folder: {exc}")
                continue
            yield from _walk_local(
                children, path, strip, {**ancestors, ident: rel}, include, exclude, links, real
            )
        elif not _matches(rel, include, exclude) or (
            real is not None
            and links.listed_anyway(real, include, exclude, file=stat.S_ISREG(st.st_mode))
        ):
            continue  # filtered out, or listed anyway under its own key
        elif stat.S_ISREG(st.st_mode):
            yield _local_info(path, rel, st)
        else:
            what = _SPECIAL.get(stat.S_IFMT(st.st_mode), "not a regular file")
            yield _problem(path, rel, "special", f"{what}, not a regular file")


def _readlink(path: str) -> str:
    try:
        return repr(escape_name(os.readlink(path)))
    except OSError:
        return "(unknown)"


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
            line = line.rstrip(b"\r\n")
            if line and not line.isspace():
                yield line


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
    with open_write_path(uri) as path, path.open("wb") as fh:
        yield fh


_STAGED_SUFFIX = ".tmp"


def _staged_prefix(name: str) -> str:
    """How the staged copy of a file named `name` begins: `.<name>.<token>.tmp` beside it."""
    return f".{name}."


@contextmanager
def open_write_path(uri: str) -> Iterator[Path]:
    """A local path to write a file at, by name (a temporary one beside it): the file appears
    whole on success (synced) and not at all on error. `open_write`'s local files use it."""
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=_staged_prefix(target.name), suffix=_STAGED_SUFFIX, dir=target.parent
    )
    os.close(fd)
    try:
        yield Path(tmp_name)
        fd = os.open(tmp_name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        failpoint("file-staged")
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


def remove_temp_files(
    folder: str, *, stem: str | None = None, recursive: bool = False, idle_seconds: float = 0.0
) -> int:
    """Remove what killed writers left in a local folder; return how many files went.

    A file being written appears beside its target as `.<target name>.<token>.tmp`
    (`open_write_path`) and is renamed over the target when whole, so a writer killed before
    that leaves it behind. With `stem`, only those of
    targets named `stem` go. Call this only while holding the lease of whatever writes into
    the folder: a live writer would lose its file. Where a writer may not take that lease,
    `idle_seconds` spares files changed since then (a writer appends as it goes). S3 keeps
    none (objects appear whole).
    """
    root = local_path(folder)
    if root is None or not root.is_dir():
        return 0
    prefix = _staged_prefix(stem) if stem is not None else "."
    pattern = f".*{_STAGED_SUFFIX}"
    found = root.rglob(pattern) if recursive else root.glob(pattern)
    before = time.time() - idle_seconds
    removed = 0
    for path in found:
        if not path.name.startswith(prefix) or path.is_symlink():
            continue
        try:
            info = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mtime <= before:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def delete(uri: str) -> None:
    """Remove a file or object if it exists."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)
