"""Archives: each file inside a ZIP or tar archive is a document of its own,
`<archive>#<path inside>`.

A partner's monthly drop (`invoices-2026-11.zip`) or a dataset's package (`batch-07.tar.gz`)
holds the documents; the archive itself is none. Each member is read by its name like a file
of the source (a PDF with pypdfium2, a CSV one document a row, a nested archive as an
archive...), with `parent_id` naming the archive and its own content hash, so a new archive
that repeats last month's files sends only the changed ones. `source.max_document_bytes`
limits each member, not the archive, which is read from disk a member at a time. The
archive's own clutter (`__MACOSX/`, `._` resource forks) is left out, and so is whatever
`source.exclude` leaves out.
"""

from __future__ import annotations

import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

from schemas.documents import Document, RejectedDocument
from tasks import storage
from tasks.sources._email import ReadAttachment, child_info, with_parent
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""How a ZIP archive begins: its first file's header, or the end record of an empty one."""
ARCHIVE_SUFFIXES = (".zip", "")
"""A ZIP archive is opened under these names only (none: a file without an extension): a
`.jar`, `.apk` or `.whl` is a ZIP too, but a program, not a folder of documents."""
TAR_SUFFIXES = (".tar", ".tgz", ".tbz2", ".txz")
"""A tar archive (`.tar.gz` is a `.tar` gunzipped first), or a compressed one."""
_COMPRESSED_TARS = (".tar.bz2", ".tar.xz")


def is_tar_name(key: str, suffix: str) -> bool:
    """Whether a key (its format suffix given, `.gz` removed) names a tar archive."""
    return suffix in TAR_SUFFIXES or key.lower().endswith(_COMPRESSED_TARS)


MAX_NESTING = 3
"""Archives inside archives are opened this deep; one deeper is refused (a ZIP bomb nests)."""
_ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError)
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


def is_zip(data: bytes) -> bool:
    """Whether bytes (or a file's opening) are a ZIP archive and not a format built on one
    (Word, Excel, OpenDocument, EPUB...), which `filetype` tells apart."""
    from tasks.sources._sniffing import sniff

    return data.startswith(ZIP_MAGIC) and sniff(data) == "application/zip"


def _clutter(path: str) -> bool:
    """An archiver's own files: macOS's `__MACOSX/` copies and `._name` resource forks."""
    return path.startswith("__MACOSX/") or path.rsplit("/", 1)[-1].startswith("._")


def _wanted(out: Outcomes, path: str) -> bool:
    return not _clutter(path) and not storage.excluded(path, out.source.exclude)


def _too_deep(out: Outcomes, info: ObjectInfo, sha: str | None) -> RejectedDocument | None:
    if info.key.count("#") < MAX_NESTING:  # `a.zip#b.zip#c.zip#d.zip`
        return None
    message = f"an archive nested more than {MAX_NESTING} deep"
    return out.reject(info, "unsupported_type", message, sha256=sha)


def _parented(
    rows: Iterable[Document | RejectedDocument], parent: str
) -> Iterator[Document | RejectedDocument]:
    """A member's rows, each marked with the archive; a row of a nested archive or e-mail
    keeps the parent it has."""
    for row in rows:
        kept = isinstance(row, Document) and row.parent_id is not None
        yield row if kept else with_parent(row, parent)


def _too_large(out: Outcomes, child: ObjectInfo, size: int) -> RejectedDocument:
    return out.reject(
        child,
        "too_large",
        f"{size} bytes in the archive; limit {out.max_bytes} (source.max_document_bytes)",
    )


def _member_rows(
    out: Outcomes, child: ObjectInfo, data: bytes, read_member: ReadAttachment
) -> Iterator[Document | RejectedDocument]:
    if not data:
        yield out.reject(child, "empty", "the file is empty")
    elif len(data) > out.max_bytes:
        yield out.reject(child, "too_large", f"over {out.max_bytes} bytes unpacked")
    else:
        yield from read_member(child, data)


def read_zip(
    out: Outcomes,
    info: ObjectInfo,
    source: str | IO[bytes],
    read_member: ReadAttachment,
    sha: str | None = None,
) -> Iterator[Document | RejectedDocument]:
    """Every file of a ZIP archive (a local path, or bytes in memory) → its rows, by path;
    `sha`, the archive's content hash when known, goes on a reject of the archive itself."""
    refused = _too_deep(out, info, sha)
    if refused is not None:
        yield refused
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield out.reject(info, "undecodable", f"not a readable ZIP archive: {exc}", sha256=sha)
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and _wanted(out, m.filename)]
        if not members:
            yield out.reject(info, "empty", "a ZIP archive with no files in it", sha256=sha)
            return
        for member in sorted(members, key=lambda m: m.filename):
            child = child_info(info, member.filename, member.file_size)
            yield from _parented(_zip_member(out, archive, member, child, read_member), info.key)


def _zip_member(
    out: Outcomes,
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    child: ObjectInfo,
    read_member: ReadAttachment,
) -> Iterator[Document | RejectedDocument]:
    if member.flag_bits & 0x1:
        yield out.reject(
            child, "undecodable", "a file of the ZIP archive encrypted with a password"
        )
        return
    if member.file_size > out.max_bytes:
        yield _too_large(out, child, member.file_size)
        return
    try:
        with archive.open(member) as fh:
            data = fh.read(out.max_bytes + 1)  # a size the header understates stops here
    except _ZIP_MEMBER_ERRORS as exc:
        yield out.reject(
            child,
            "undecodable",
            f"cannot be read from the ZIP archive: {type(exc).__name__}: {exc}",
        )
        return
    yield from _member_rows(out, child, data, read_member)


def read_tar(
    out: Outcomes, info: ObjectInfo, stream: IO[bytes], read_member: ReadAttachment
) -> Iterator[Document | RejectedDocument]:
    """Every regular file of a tar archive (plain or compressed), in the archive's order, as
    `read_zip` reads a ZIP's; links, folders and devices are no documents."""
    refused = _too_deep(out, info, None)
    if refused is not None:
        yield refused
        return
    files = 0
    try:
        with tarfile.open(fileobj=stream, mode="r:*") as archive:
            for member in archive:
                path = member.name.removeprefix("./")
                if not member.isfile() or not _wanted(out, path):
                    continue
                files += 1
                child = child_info(info, path, member.size)
                if member.size > out.max_bytes:
                    yield _too_large(out, child, member.size)
                    continue
                handle = archive.extractfile(member)
                data = handle.read() if handle is not None else b""
                yield from _parented(_member_rows(out, child, data, read_member), info.key)
    except _TAR_ERRORS as exc:
        where = f" after {files} file(s)" if files else ""
        yield out.reject(
            info, "undecodable", f"not a readable tar archive{where}: {type(exc).__name__}: {exc}"
        )
        return
    if not files:
        yield out.reject(info, "empty", "a tar archive with no files in it")
