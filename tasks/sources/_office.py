"""Office documents and e-books: Word, PowerPoint, Excel, OpenDocument text, RTF, EPUB.

Read with kreuzberg (one wheel, no dependency tree, a Rust core): it keeps headings, table
cells, slide notes and every sheet of a workbook, in a few milliseconds a file. It is imported
on first use, so `overnight --help` does not pay for it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from schemas.documents import Document, RejectedDocument
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

OFFICE_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".rtf": "application/rtf",
    ".epub": "application/epub+zip",
}
"""The office formats overnight reads, by extension, with the MIME type kreuzberg is told."""
OFFICE_MIMES = {mime: suffix for suffix, mime in OFFICE_TYPES.items()}
"""The same formats by the MIME type `sniff` finds (for files without a known extension)."""
_RTF_ESCAPES = re.compile(rb"\\[\\{}]")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@cache
def extraction_config() -> Any:
    """kreuzberg's settings: no OCR (scans are for vision models), no on-disk cache."""
    import kreuzberg

    settings: dict[str, Any] = {"use_cache": False, "disable_ocr": True}  # not all in its stubs
    return kreuzberg.ExtractionConfig(**settings)


def is_extraction_failure(exc: BaseException) -> bool:
    """True for an error of kreuzberg on a bad file: any Exception, or its core panicking.

    A panic in the Rust core reaches Python as pyo3's `PanicException`, a `BaseException`
    (like `KeyboardInterrupt`), so `except Exception` alone would let one odd file stop a run.
    """
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def read_office(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str, *, suffix: str
) -> Document | RejectedDocument:
    """An office file's text → a document; one kreuzberg cannot read is `undecodable`."""
    import kreuzberg

    what = f"a {suffix[1:].upper()} file"
    if suffix != ".rtf" and data.startswith(_OLE_MAGIC):
        return out.reject(
            info,
            "undecodable",
            f"not {what}: an OLE container, so encrypted with a password or a legacy "
            "binary Office file (.doc, .ppt, .xls); save it unencrypted in the new format",
            sha256=sha,
        )
    if suffix == ".rtf" and not data.lstrip().startswith(b"{\\rtf"):
        return out.reject(
            info, "undecodable", f"not {what}: it does not start with {{\\rtf", sha256=sha
        )
    if suffix == ".rtf" and _unclosed_groups(data) > 0:
        return out.reject(
            info,
            "undecodable",
            f"{what} that ends early: {_unclosed_groups(data)} group(s) never closed",
            sha256=sha,
        )
    try:
        result = kreuzberg.extract_bytes_sync(data, OFFICE_TYPES[suffix], extraction_config())
    except BaseException as exc:  # its own errors, OSError, or a Rust panic (a BaseException)
        if not is_extraction_failure(exc):
            raise
        return out.reject(
            info,
            "undecodable",
            f"kreuzberg cannot read it as {what}: {_named(exc)}",
            sha256=sha,
        )
    meta = {"format": suffix[1:]}
    title = (result.metadata or {}).get("title")
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    return out.text_document(info, result.content, sha256=sha, size=len(data), metadata=meta)


def _unclosed_groups(rtf: bytes) -> int:
    """How many `{` groups of an RTF file are never closed (more than 0: it was cut short)."""
    plain = _RTF_ESCAPES.sub(b"", rtf)
    return plain.count(b"{") - plain.count(b"}")


def _named(exc: BaseException) -> str:
    """An error as `Type: message`, once (kreuzberg's messages already start with the type)."""
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(f"{name}:") else f"{name}: {text}"
