"""PDF: the text layer, through pypdf."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from schemas.documents import Document, RejectedDocument
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes


def read_pdf(out: Outcomes, info: ObjectInfo, data: bytes, sha: str) -> Document | RejectedDocument:
    """A PDF's text layer → a document; a PDF without one is `empty` (a scan?)."""
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            return out.reject(
                info, "unreadable_pdf", "the PDF is encrypted with a password", sha256=sha
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except Exception as exc:  # pypdf raises many exception types on malformed files
        return out.reject(
            info,
            "unreadable_pdf",
            f"pypdf cannot read it: {type(exc).__name__}: {exc}",
            sha256=sha,
        )
    meta = {"format": "pdf", "pages": str(len(pages))}
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        return out.reject(
            info, "empty", f"no text layer in {len(pages)} page(s) (a scan?)", sha256=sha
        )
    return out.text_document(info, text, sha256=sha, size=len(data), metadata=meta)
