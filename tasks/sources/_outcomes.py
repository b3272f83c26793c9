"""What one listed file can become: a `Document`, or a `RejectedDocument` saying why not."""

from __future__ import annotations

from schemas.documents import Document, RejectCode, RejectedDocument
from schemas.job import SourceSpec
from tasks.sources._sniffing import too_many_nuls
from tasks.sources._text import normalize_text, strip_terminal_codes
from tasks.storage import ObjectInfo


class Outcomes:
    """Builds the documents and rejects of one source, under its settings."""

    def __init__(self, source: SourceSpec) -> None:
        self.source = source
        self.max_bytes = source.max_document_bytes

    def reject(
        self,
        info: ObjectInfo,
        code: RejectCode,
        message: str,
        *,
        document_id: str | None = None,
        sha256: str | None = None,
    ) -> RejectedDocument:
        return RejectedDocument(
            document_id=document_id or info.key,
            source_uri=info.uri,
            content_sha256=sha256,
            stage="load",
            code=code,
            message=message,
        )

    def text_document(
        self,
        info: ObjectInfo,
        text: str,
        *,
        sha256: str,
        size: int,
        metadata: dict[str, str],
        document_id: str | None = None,
        record_index: int | None = None,
    ) -> Document | RejectedDocument:
        doc_id = document_id or info.key
        if "\x00" in text:
            if too_many_nuls(text):
                return self.reject(
                    info,
                    "undecodable",
                    "contains NUL characters: binary data, not text",
                    document_id=doc_id,
                    sha256=sha256,
                )
            text = text.replace("\x00", "")  # a stray one in text (a GNU Info index marker)
        text = normalize_text(strip_terminal_codes(text))
        if not text:
            return self.reject(
                info, "empty", "no text after decoding", document_id=doc_id, sha256=sha256
            )
        return Document.model_construct(
            document_id=doc_id,
            source_uri=info.uri,
            content_sha256=sha256,
            size_bytes=size,
            text=text,
            images=(),
            metadata=metadata,
            record_index=record_index,
        )

    def image_document(
        self,
        info: ObjectInfo,
        images: tuple[str, ...],
        sizes: tuple[tuple[int, int], ...],
        *,
        sha256: str,
        size: int,
        metadata: dict[str, str],
    ) -> Document:
        """A document of images (`data:` URLs) for vision models: a picture, a scan's pages."""
        return Document(
            document_id=info.key,
            source_uri=info.uri,
            content_sha256=sha256,
            size_bytes=size,
            text=None,
            images=images,
            image_sizes=sizes,
            metadata=metadata,
        )
