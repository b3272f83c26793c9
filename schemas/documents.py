"""Documents as loaded from a source, and documents that could not become requests.

Every input ends as exactly one of these per document (or per record of a multi-record
file): a `Document` goes on to become one or more requests; a `RejectedDocument` is written
to the run's `rejected.jsonl` with the stage and the reason. Nothing disappears silently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RejectStage = Literal["load", "build"]
RejectCode = Literal[
    "empty",  # no bytes, or nothing but whitespace after decoding / extraction
    "undecodable",  # not text in any recognised encoding, or a corrupt gzip/image
    "unsupported_type",  # binary content overnight does not read (the message names its type)
    "unreadable",  # the storage refused a read or a listing (permissions, vanished object...)
    "not_a_file",  # a FIFO, socket or device, or a folder named like a file (`x.txt/`)
    "symlink_loop",  # a symbolic link that loops, or leads back to a folder above it
    "broken_symlink",  # a symbolic link whose target does not exist
    "unreadable_pdf",  # encrypted, corrupt, or otherwise not parseable by pypdfium2
    "too_many_pages",  # a scanned PDF (read as page images) over source.max_pages
    # (a corrupt or encrypted office file or e-mail is `undecodable`, with the reason)
    "missing_text_field",  # a record (or a whole table) without the configured text field
    "bad_record",  # a record that is not a JSON object, not JSON, or without its id field
    "too_large",  # larger than source.max_document_bytes
    "too_many_tokens",  # needs more than chunking.max_chunks requests, or exceeds a shard alone
    "duplicate_id",  # a second document with the same custom_id in one run
    "template_error",  # the user template could not be rendered for this document
    "context_length_exceeded",  # a request that cannot fit the model's context window
    "vision_unsupported",  # images for a model without image input
]


class Document(BaseModel):
    """One document ready for request building."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    document_id: str
    """Stable id: the key relative to the source root, `key#n` for record n of a multi-record
    file, the record's `id_field` value, or `key#name` for attachment `name` of an e-mail."""
    source_uri: str
    content_sha256: str
    """sha256 of the stored file bytes; for records, of the record text (UTF-8)."""
    size_bytes: int
    text: str | None = None
    images: tuple[str, ...] = ()
    """Images as `data:` URLs, for vision jobs: an image file, or the pages of a scanned PDF."""
    image_sizes: tuple[tuple[int, int], ...] = ()
    """(width, height) in pixels of each of `images`, read when the document was loaded, so
    that image tokens are estimated by the model's own rule (`tasks.imagetokens`)."""
    metadata: dict[str, str] = Field(default_factory=dict)
    record_index: int | None = None
    parent_id: str | None = None
    """For an e-mail attachment, the `document_id` of the message it came in (which is also
    the start of its own id, `<message id>#<attachment name>`); None for everything else."""


class RejectedDocument(BaseModel):
    """A document (or record, or file) that produced no request, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    document_id: str
    source_uri: str
    content_sha256: str | None = None
    stage: RejectStage
    code: RejectCode
    message: str
