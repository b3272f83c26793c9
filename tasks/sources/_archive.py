"""ZIP archives: each file inside is a document of its own, `<archive>#<path inside>`.

A partner's monthly drop (`invoices-2026-11.zip`) holds the documents; the archive itself is
none. Each member is read by its name like a file of the source (a PDF with pypdfium2, a CSV
one document a row, a nested ZIP as an archive...), with `parent_id` naming the archive and
its own content hash, so a new archive that repeats last month's files sends only the changed
ones. `source.max_document_bytes` limits each member, not the archive, which is read from
disk a member at a time. The archive's own clutter (`__MACOSX/`, `._` resource forks) is
left out, and so is whatever `source.exclude` leaves out.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
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
MAX_NESTING = 3
"""Archives inside archives are opened this deep; one deeper is refused (a ZIP bomb nests)."""
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError)


def is_zip(data: bytes) -> bool:
    """Whether bytes (or a file's opening) are a ZIP archive and not a format built on one
    (Word, Excel, OpenDocument, EPUB...), which `filetype` tells apart."""
    from tasks.sources._sniffing import sniff

    return data.startswith(ZIP_MAGIC) and sniff(data) == "application/zip"


def _clutter(path: str) -> bool:
    """An archiver's own files: macOS's `__MACOSX/` copies and `._name` resource forks."""
    return path.startswith("__MACOSX/") or path.rsplit("/", 1)[-1].startswith("._")


def read_zip(
    out: Outcomes,
    info: ObjectInfo,
    source: str | IO[bytes],
    read_member: ReadAttachment,
    sha: str | None = None,
) -> Iterator[Document | RejectedDocument]:
    """Every file of a ZIP archive (a local path, or bytes in memory) → its rows; `sha`, the
    archive's content hash when known, goes on a reject of the archive itself."""
    if info.key.count("#") >= MAX_NESTING:  # `a.zip#b.zip#c.zip#d.zip`
        yield out.reject(
            info,
            "unsupported_type",
            f"a ZIP archive nested more than {MAX_NESTING} deep",
            sha256=sha,
        )
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield out.reject(info, "undecodable", f"not a readable ZIP archive: {exc}", sha256=sha)
        return
    with archive:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not _clutter(m.filename)
            and not storage.excluded(m.filename, out.source.exclude)
        ]
        if not members:
            yield out.reject(info, "empty", "a ZIP archive with no files in it", sha256=sha)
            return
        for member in sorted(members, key=lambda m: m.filename):
            child = child_info(info, member.filename, member.file_size)
            for row in _member(out, archive, member, child, read_member):
                # a row of a nested archive or e-mail keeps the parent it has
                kept = isinstance(row, Document) and row.parent_id is not None
                yield row if kept else with_parent(row, info.key)


def _member(
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
        yield out.reject(
            child,
            "too_large",
            f"{member.file_size} bytes in the ZIP archive; limit {out.max_bytes} "
            "(source.max_document_bytes)",
        )
        return
    try:
        with archive.open(member) as fh:
            data = fh.read(out.max_bytes + 1)  # a size the header understates stops here
    except _MEMBER_ERRORS as exc:
        yield out.reject(
            child,
            "undecodable",
            f"cannot be read from the ZIP archive: {type(exc).__name__}: {exc}",
        )
        return
    if not data:
        yield out.reject(child, "empty", "the file is empty")
    elif len(data) > out.max_bytes:
        yield out.reject(child, "too_large", f"over {out.max_bytes} bytes unpacked")
    else:
        yield from read_member(child, data)
