"""Office documents and e-books: Word, PowerPoint, Excel (and their binary 97-2003 formats,
`.doc`, `.ppt`, `.xls`), OpenDocument text, spreadsheets and presentations, RTF, EPUB.

Read with kreuzberg (one wheel, no dependency tree, a Rust core): it keeps headings, table
cells, slide notes and every sheet of a workbook, in a few milliseconds a file. It is imported
on first use, so `overnight --help` does not pay for it.
"""

from __future__ import annotations

import io
import re
import zipfile
from functools import cache
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from schemas.documents import Document, RejectedDocument
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

OFFICE_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".rtf": "application/rtf",
    ".epub": "application/epub+zip",
    ".doc": "application/msword",
    ".ppt": "application/vnd.ms-powerpoint",
    ".xls": "application/vnd.ms-excel",
}
"""The office formats overnight reads, by extension, with the MIME type kreuzberg is told."""
OFFICE_MIMES = {mime: suffix for suffix, mime in OFFICE_TYPES.items()}
"""The same formats by the MIME type `sniff` finds (for files without a known extension)."""
LEGACY_OFFICE = (".doc", ".ppt", ".xls")
"""Office 97-2003's binary formats: OLE containers, as is a password-protected new-format file."""
_RTF_ESCAPES = re.compile(rb"\\[\\{}]")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
"""The stream a password-protected .docx/.xlsx/.pptx keeps its content in (its name, as an OLE
directory entry spells it)."""


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
    if suffix == ".odp":
        return _read_odp(out, info, data, sha)
    if suffix != ".rtf" and data.startswith(OLE_MAGIC):
        return _read_ole(out, info, data, sha, suffix=suffix)
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


_ODF = {
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_TEXT = f"{{{_ODF['text']}}}"
_NOTES = f"{{{_ODF['presentation']}}}notes"
_PAGE = f"{{{_ODF['draw']}}}page"
_PARAGRAPHS = (_TEXT + "p", _TEXT + "h")
_XML_LIMIT = 200_000_000
"""An OpenDocument's content.xml is read when it unpacks to at most this many bytes."""


def _read_odp(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Document | RejectedDocument:
    """An OpenDocument presentation (LibreOffice Impress's own format, which kreuzberg does not
    read): each slide's paragraphs in order, then its speaker notes, as kreuzberg gives a
    `.pptx`. Read from the file's content.xml with the standard library."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as odf:
            if odf.getinfo("content.xml").file_size > _XML_LIMIT:
                return out.reject(
                    info, "too_large", "an ODP whose content unpacks past 200 MB", sha256=sha
                )
            content = ElementTree.fromstring(odf.read("content.xml"))
            meta = (
                ElementTree.fromstring(odf.read("meta.xml"))
                if "meta.xml" in odf.namelist()
                else None
            )
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError, ValueError) as exc:
        return out.reject(
            info, "undecodable", f"not a readable ODP file: {type(exc).__name__}: {exc}", sha256=sha
        )
    blocks: list[str] = []
    for page in content.iter(_PAGE):
        notes = [n for note in page.iter(_NOTES) for n in note.iter() if n.tag in _PARAGRAPHS]
        skip = {id(n) for n in notes}
        blocks += [
            t
            for p in page.iter()
            if p.tag in _PARAGRAPHS and id(p) not in skip
            if (t := _odf_text(p).strip())
        ]
        said = [t for n in notes if (t := _odf_text(n).strip())]
        if said:
            blocks += ["Notes:", *said]
    found = {"format": "odp"}
    title = meta.findtext(".//dc:title", namespaces=_ODF) if meta is not None else None
    if title and title.strip():
        found["title"] = title.strip()
    return out.text_document(info, "\n\n".join(blocks), sha256=sha, size=len(data), metadata=found)


def _odf_text(element: ElementTree.Element) -> str:
    """A paragraph's text, its `text:s` spaces, tabs and line breaks written out."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == _TEXT + "s":
            parts.append(" " * int(child.get(_TEXT + "c", "1")))
        elif child.tag == _TEXT + "tab":
            parts.append("\t")
        elif child.tag == _TEXT + "line-break":
            parts.append("\n")
        elif child.tag == _TEXT + "page-number":
            pass  # a notes page's "<number>" placeholder
        else:
            parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _read_ole(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str, *, suffix: str
) -> Document | RejectedDocument:
    """An OLE container: a Word, PowerPoint or Excel 97-2003 file, whatever its name says (a
    `.doc` saved as `.docx` is common), or a password-protected new-format file.

    kreuzberg is asked for the format the name gives first, then the others: a container that
    is not one fails at once (`No such stream: /WordDocument`).
    """
    import kreuzberg

    order = [suffix] if suffix in LEGACY_OFFICE else []
    order += [legacy for legacy in LEGACY_OFFICE if legacy != suffix]
    first_error: BaseException | None = None
    for legacy in order:
        try:
            result = kreuzberg.extract_bytes_sync(data, OFFICE_TYPES[legacy], extraction_config())
        except BaseException as exc:  # as in read_office: a Rust panic is a BaseException
            if not is_extraction_failure(exc):
                raise
            first_error = first_error or exc
            continue
        meta = {"format": legacy[1:]}
        title = (result.metadata or {}).get("title")
        if isinstance(title, str) and title.strip():
            meta["title"] = title.strip()
        return out.text_document(info, result.content, sha256=sha, size=len(data), metadata=meta)
    what = f"a {suffix[1:].upper()} file"
    if _ENCRYPTED_PACKAGE in data:
        message = (
            f"{what} encrypted with a password (an OLE container holding EncryptedPackage): "
            "save it without a password"
        )
    else:
        reason = "" if first_error is None else f": {_named(first_error)}"
        message = (
            f"{what} that is an OLE container kreuzberg cannot read as a Word, PowerPoint or "
            f"Excel 97-2003 file (encrypted with a password, or damaged){reason}"
        )
    return out.reject(info, "undecodable", message, sha256=sha)


def _unclosed_groups(rtf: bytes) -> int:
    """How many `{` groups of an RTF file are never closed (more than 0: it was cut short)."""
    plain = _RTF_ESCAPES.sub(b"", rtf)
    return plain.count(b"{") - plain.count(b"}")


def _named(exc: BaseException) -> str:
    """An error as `Type: message`, once (kreuzberg's messages already start with the type)."""
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(f"{name}:") else f"{name}: {text}"
