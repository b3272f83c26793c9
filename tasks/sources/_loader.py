"""Dispatch: one listed entry → its documents and rejects, by extension, else by content."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import IO

from schemas.documents import Document, RejectCode, RejectedDocument
from tasks import storage
from tasks.scratch import scratch_file
from tasks.sources._archive import ARCHIVE_SUFFIXES, is_tar_name, is_zip, read_tar, read_zip
from tasks.sources._email import (
    EMAIL_SUFFIXES,
    MHTML_SUFFIXES,
    is_mbox,
    looks_like_message,
    read_eml,
    read_emlx,
    read_mbox,
    read_mhtml,
    read_msg,
)
from tasks.sources._images import (
    CONVERTED_MIMES,
    IMAGE_MIMES,
    IMAGE_TYPES,
    read_converted_image,
    read_image,
)
from tasks.sources._office import (
    LEGACY_OFFICE,
    OFFICE_MIMES,
    OFFICE_TYPES,
    OLE_MAGIC,
    read_office,
)
from tasks.sources._outcomes import Outcomes
from tasks.sources._pdf import read_pdf
from tasks.sources._reading import (
    GZIP_ERRORS,
    READ_ERRORS,
    extension_phrase,
    file_kind,
    gunzip_limited,
    local_copy,
    read_bytes,
)
from tasks.sources._records import (
    JSONL_SUFFIXES,
    TABLE_SUFFIXES,
    read_json,
    read_jsonl,
    read_table,
)
from tasks.sources._sniffing import BINARY, SNIFF_BYTES, classify, looks_like_html, sniff
from tasks.sources._text import (
    HTML_SUFFIXES,
    TEXT_SUFFIXES,
    read_decoded,
    read_notebook,
    read_text,
)
from tasks.storage import ObjectInfo

_BINARY_FORMATS = frozenset({".pdf", ".msg", *IMAGE_TYPES, *OFFICE_TYPES}) - {".rtf"}
"""Formats whose files start with a signature: one with none, holding text, is read as text."""

_MORK = b"// <!-- <mdb:mork:z"
"""How a Mork file begins: Thunderbird's `.msf` summary of a mailbox file (and its address
books), text that is not a document."""

SUPPORTED_SUFFIXES = (
    frozenset(TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | TABLE_SUFFIXES)
    | {".json", ".pdf", ".ipynb"}
    | frozenset(IMAGE_TYPES)
    | frozenset(OFFICE_TYPES)
    | EMAIL_SUFFIXES
    | MHTML_SUFFIXES
)


_READ_BY_CONTENT = frozenset({"application/gzip", "application/pdf", *IMAGE_MIMES, *OFFICE_MIMES})
"""What a file named as text may hold instead and still be read (by its content)."""
_MAGIC = (b"\x1f\x8b", b"%PDF-", b"PK\x03\x04", b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"{\\rtf")
"""How those formats' files begin (gzip, PDF, ZIP-based office files, PNG, JPEG, WebP, RTF):
only a file named as text that begins so is sniffed, at ~60 µs, before it is decoded."""


class Loader(Outcomes):
    """Turns one listed file into documents and rejects, by format."""

    def reads_whole(self, info: ObjectInfo) -> bool:
        """True for a file `load` reads whole into memory (so it can be read ahead)."""
        suffix, gz = file_kind(info.key)
        return (
            info.kind == "file"
            and suffix not in JSONL_SUFFIXES
            and suffix not in TABLE_SUFFIXES
            and not is_tar_name(info.key, suffix)
            and info.size > 0
            and (gz or info.size <= self.max_bytes)
        )

    def entry(self, info: ObjectInfo) -> Iterator[RejectedDocument]:
        """The row of a listed entry that is not a file (none for an ordinary folder)."""
        if info.kind == "directory":
            suffix, gz = file_kind(info.key)
            if suffix in SUPPORTED_SUFFIXES or gz:
                yield self.reject(
                    info,
                    "not_a_file",
                    "a folder named like a file; the files inside it are read on their own",
                )
            return
        codes: dict[str, RejectCode] = {
            "symlink_loop": "symlink_loop",
            "broken_symlink": "broken_symlink",
            "special": "not_a_file",
            "unreadable": "unreadable",
        }
        yield self.reject(info, codes[info.kind], info.detail)

    def load(
        self, info: ObjectInfo, prefetched: Future[bytes] | None = None
    ) -> Iterator[Document | RejectedDocument]:
        if info.kind != "file":
            yield from self.entry(info)
            return
        suffix, gz = file_kind(info.key)
        if suffix in JSONL_SUFFIXES:
            yield from read_jsonl(self, info, gz)
            return
        if suffix in TABLE_SUFFIXES:
            yield from read_table(self, info, suffix, gz)
            return
        known = suffix in SUPPORTED_SUFFIXES
        if info.size == 0:
            yield self.reject(info, "empty", "the file is empty")
            return
        if is_tar_name(info.key, suffix):  # read from disk a member at a time, whatever its size
            yield from self._from_disk(
                info, lambda fh: read_tar(self, info, fh, self.attachment), gz=gz
            )
            return
        if not gz and info.size > self.max_bytes:
            yield from self.over_limit(info, suffix, known)
            return
        try:
            data = prefetched.result() if prefetched is not None else read_bytes(info.location)
        except READ_ERRORS as exc:
            yield self.reject(info, "unreadable", f"read failed: {exc}")
            return
        yield from self.contents(info, data)

    def contents(self, info: ObjectInfo, data: bytes) -> Iterator[Document | RejectedDocument]:
        """The rows of a file read whole (gunzipped first when its name ends in `.gz`)."""
        suffix, gz = file_kind(info.key)
        sha = hashlib.sha256(data).hexdigest()
        if gz:
            try:
                data = gunzip_limited(data, self.max_bytes + 1)
            except GZIP_ERRORS as exc:
                yield self.reject(info, "undecodable", f"not a valid gzip file: {exc}", sha256=sha)
                return
            if len(data) > self.max_bytes:
                yield self.reject(
                    info, "too_large", f"over {self.max_bytes} bytes after gunzip", sha256=sha
                )
                return
            if not data:
                yield self.reject(info, "empty", "empty after gunzip", sha256=sha)
                return
        if suffix in _BINARY_FORMATS:
            text = classify(data)[1]
            if text is not None:  # plain text under a binary format's name: read what it holds
                yield read_decoded(
                    self, info, text, sha, size=len(data), html=looks_like_html(text)
                )
                return
        if suffix == ".json":
            yield from read_json(self, info, data, sha)
        elif suffix == ".pdf":
            yield read_pdf(self, info, data, sha)
        elif suffix in IMAGE_TYPES:
            yield read_image(self, info, data, sha)
        elif (
            suffix in LEGACY_OFFICE
            and not data.startswith(OLE_MAGIC)
            and sniff(data) in _READ_BY_CONTENT
        ):
            # Word saves RTF as .doc, exports name a .xlsx .xls: read what the file holds.
            yield self.sniffed(info, data, sha)
        elif suffix in OFFICE_TYPES:
            yield read_office(self, info, data, sha, suffix=suffix)
        elif suffix == ".eml":
            yield from read_eml(self, info, data, sha, self.attachment)
        elif suffix in MHTML_SUFFIXES:
            yield read_mhtml(self, info, data, sha)
        elif suffix == ".emlx":
            yield from read_emlx(self, info, data, sha, self.attachment)
        elif suffix == ".msg":
            yield from read_msg(self, info, data, sha)
        elif suffix == ".mbox" and is_mbox(data):
            yield from read_mbox(self, info, io.BytesIO(data), self.attachment)
        elif suffix == ".ipynb":
            yield read_notebook(self, info, data, sha)
        elif suffix in SUPPORTED_SUFFIXES:
            if data.startswith(_MAGIC) and sniff(data) in _READ_BY_CONTENT:
                # A Word file or a gzip saved as .txt: read what it holds, as for no extension.
                yield self.sniffed(info, data, sha)
            else:
                yield read_text(self, info, data, sha, html=suffix in HTML_SUFFIXES)
        elif is_mbox(data):  # Thunderbird's and `mail`'s mailboxes have no extension: Inbox
            yield from read_mbox(self, info, io.BytesIO(data), self.attachment)
        elif is_tar_name(info.key, suffix):  # inside an archive or an e-mail
            yield from read_tar(self, info, io.BytesIO(data), self.attachment)
        elif suffix in ARCHIVE_SUFFIXES and is_zip(data):
            yield from read_zip(self, info, io.BytesIO(data), self.attachment, sha)
        elif looks_like_message(data):  # a Maildir's messages have no extension either
            yield from read_eml(self, info, data, sha, self.attachment)
        elif data.startswith(_MORK):
            yield self.reject(
                info,
                "unsupported_type",
                "a Thunderbird mail summary file (Mork): the index of the mailbox beside it, "
                "which is read as its messages, not a document",
                sha256=sha,
            )
        else:
            yield self.sniffed(info, data, sha)

    def attachment(self, info: ObjectInfo, data: bytes) -> Iterator[Document | RejectedDocument]:
        """The rows of an e-mail attachment, read by its name like a file of the source."""
        suffix, _ = file_kind(info.key)
        if not data:
            yield self.reject(info, "empty", "the attachment is empty")
        elif len(data) > self.max_bytes:
            yield self.reject(
                info,
                "too_large",
                f"{len(data)} bytes; limit {self.max_bytes} (source.max_document_bytes)",
                sha256=hashlib.sha256(data).hexdigest(),
            )
        elif suffix in JSONL_SUFFIXES or suffix in TABLE_SUFFIXES:
            with scratch_file("att") as tmp:
                tmp.write(data)
                tmp.flush()
                yield from self.load(dataclasses.replace(info, path=tmp.name))
        else:
            yield from self.contents(info, data)

    def over_limit(
        self, info: ObjectInfo, suffix: str, known: bool
    ) -> Iterator[Document | RejectedDocument]:
        """A file over the size limit of one document: a mailbox or ZIP archive is read from
        disk a message or member at a time (the limit is each one's); anything else is too
        large, or (unknown and not text) unsupported. Its opening is read once, to tell."""
        head = None
        if suffix == ".mbox" or not known:
            try:
                with storage.open_read(info.location) as fh:
                    head = fh.read(SNIFF_BYTES)
            except READ_ERRORS as exc:
                if not known:
                    yield self.reject(info, "unreadable", f"read failed: {exc}")
                    return
        if head is not None and is_mbox(head):
            yield from self._from_disk(info, lambda fh: read_mbox(self, info, fh, self.attachment))
        elif head is not None and suffix in ARCHIVE_SUFFIXES and is_zip(head):
            yield from self._from_disk(info, lambda fh: read_zip(self, info, fh, self.attachment))
        elif head is not None and not known and (kind := sniff(head)) != "text":
            yield self.unsupported(info, kind, None)
        else:
            yield self.reject(
                info,
                "too_large",
                f"{info.size} bytes; limit {self.max_bytes} (source.max_document_bytes)",
            )

    def _from_disk(
        self,
        info: ObjectInfo,
        read: Callable[[IO[bytes]], Iterator[Document | RejectedDocument]],
        *,
        gz: bool = False,
    ) -> Iterator[Document | RejectedDocument]:
        try:
            with local_copy(info, gz) as path, open(path, "rb") as fh:
                yield from read(fh)
        except READ_ERRORS as exc:
            yield self.reject(info, "unreadable", f"read failed: {exc}")

    def unsupported(self, info: ObjectInfo, kind: str, sha: str | None) -> RejectedDocument:
        what = "binary data of no type overnight recognises" if kind == BINARY else kind
        return self.reject(
            info,
            "unsupported_type",
            f"{extension_phrase(info.key)} holding {what}: overnight reads text, HTML, JSON, "
            "JSONL, CSV, TSV, Parquet, PDF, PNG/JPEG/WebP/TIFF/BMP/GIF/HEIC/AVIF images, Word, "
            "PowerPoint, Excel (also 97-2003), OpenDocument, RTF, EPUB, Jupyter notebooks, "
            "e-mail (.eml, .emlx, .msg), mailboxes, and ZIP or tar archives of these",
            sha256=sha,
        )

    def sniffed(self, info: ObjectInfo, data: bytes, sha: str) -> Document | RejectedDocument:
        """A file whose extension says nothing overnight reads: judged by its content.

        Gzip found inside (a gzip file without `.gz`, or one gzipped twice) is opened once.
        """
        kind, text = classify(data)
        if kind == "application/gzip":
            try:
                data = gunzip_limited(data, self.max_bytes + 1)
            except GZIP_ERRORS as exc:
                return self.reject(info, "undecodable", f"not a valid gzip file: {exc}", sha256=sha)
            if len(data) > self.max_bytes:
                return self.reject(
                    info, "too_large", f"over {self.max_bytes} bytes after gunzip", sha256=sha
                )
            if not data:
                return self.reject(info, "empty", "empty after gunzip", sha256=sha)
            kind, text = classify(data)
        if text is not None:
            return read_decoded(self, info, text, sha, size=len(data), html=looks_like_html(text))
        if kind == "application/pdf":
            return read_pdf(self, info, data, sha)
        if kind in IMAGE_MIMES:
            return read_image(self, info, data, sha)
        if kind in CONVERTED_MIMES:
            return read_converted_image(self, info, data, sha, kind)
        if kind in OFFICE_MIMES:
            return read_office(self, info, data, sha, suffix=OFFICE_MIMES[kind])
        return self.unsupported(info, kind, sha)
