"""E-mail: `.eml` (MIME, the stdlib `email` parser) and `.msg` (Outlook, through kreuzberg).

A message's text is its subject, sender and date, then its body: the plain-text part when
there is one, else the HTML part reduced to its visible text like an `.html` file. Each
attachment becomes a document of its own, `<message id>#<attachment name>`, read by its name
like a file of the source (a PDF with pypdfium2, an image for vision models, a nested `.eml` as
an e-mail...), with `parent_id` (and `metadata["parent_id"]`) naming the message.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import IO, TYPE_CHECKING

from schemas.documents import Document, RejectedDocument
from tasks.sources._office import extraction_config, is_extraction_failure
from tasks.sources._sniffing import decode_text
from tasks.sources._text import html_to_text
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

EMAIL_SUFFIXES = frozenset({".eml", ".emlx", ".msg", ".mbox"})
MSG_MIME = "application/vnd.ms-outlook"
_HEADERS = ("Subject", "From", "Date")
_TEXT_HEADERS = ("Subject", "From", "To", "Cc", "Date")
"""The headers a message's text opens with: who wrote to whom matters to a summary."""
_RECIPIENTS_SHOWN = 300
"""A To or Cc line is cut after this many characters (a list of 200 recipients says little)."""
_IDENTIFYING = ("subject", "from", "date", "to", "message-id", "received", "mime-version")

Attachment = tuple[str, bytes]
"""An attachment's name (unique within its message) and its bytes."""
ReadAttachment = Callable[[ObjectInfo, bytes], Iterator[Document | RejectedDocument]]
"""Reads an attachment's bytes, given as a file of the source (the loader's dispatch)."""


def attachment_id(parent_id: str, name: str) -> str:
    """The document id of a message's attachment: `<message id>#<name>`."""
    return f"{parent_id}#{name}"


def read_eml(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str, read_attachment: ReadAttachment
) -> Iterator[Document | RejectedDocument]:
    """A MIME message → its document, then one document (or reject) per attachment."""
    message = BytesParser(policy=policy.default).parsebytes(_headers_as_utf8(data))
    if not any(name in message for name in _IDENTIFYING):
        yield out.reject(
            info,
            "undecodable",
            "not an e-mail message: no Subject, From, Date or other message header",
            sha256=sha,
        )
        return
    assert isinstance(message, EmailMessage)  # the parser builds these under policy.default
    attachments = _attachments(message)
    lines = [f"{name}: {_shown(name, message[name])}" for name in _TEXT_HEADERS if message[name]]
    if attachments:
        lines.append("Attachments: " + ", ".join(name for name, _ in attachments))
    body = _body(message)
    meta = {"format": "email", "attachments": str(len(attachments))}
    for name in _HEADERS:
        if message[name]:
            meta[name.lower()] = str(message[name])
    if message["Subject"]:
        meta["title"] = str(message["Subject"])
    text = "\n".join(lines) + "\n\n" + body
    if not body.strip() and not attachments:
        yield out.reject(info, "empty", "an e-mail without a body or attachments", sha256=sha)
        return
    yield out.text_document(info, text, sha256=sha, size=len(data), metadata=meta)
    for name, content in attachments:
        yield from _child_rows(info, name, content, read_attachment)


MHTML_SUFFIXES = frozenset({".mht", ".mhtml"})
"""A web page saved whole ("Web page, single file"): a MIME message of the page and its parts."""


def read_mhtml(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Document | RejectedDocument:
    """A saved web page (MHTML) → the visible text of its page, as an `.html` file gives. Its
    other parts (styles, scripts, pictures the page shows) are no documents of their own."""
    from tasks.sources._text import read_decoded

    message = BytesParser(policy=policy.default).parsebytes(_headers_as_utf8(data))
    assert isinstance(message, EmailMessage)  # the parser builds these under policy.default
    part = message.get_body(preferencelist=("html", "plain"))
    if part is None:
        return out.reject(
            info, "undecodable", "not a saved web page (MHTML): no HTML or text part", sha256=sha
        )
    html = part.get_content_subtype() == "html"
    return read_decoded(out, info, _part_text(part), sha, size=len(data), html=html)


def _shown(name: str, value: object) -> str:
    text = str(value)
    if name in ("To", "Cc") and len(text) > _RECIPIENTS_SHOWN:
        kept = text[:_RECIPIENTS_SHOWN].rsplit(",", 1)[0]
        return f"{kept}, … ({text.count(',') + 1} in all)"
    return text


def _headers_as_utf8(data: bytes) -> bytes:
    """The message with its header block re-encoded as UTF-8 when it holds raw 8-bit bytes
    of another encoding: headers should be ASCII (RFC 2047 for the rest), but some mailers
    write Windows-1252 bytes straight in, which the parser turned into "Caf\ufffd cr\ufffdme".
    UTF-8 headers (RFC 6532) are parsed as they are."""
    end = _header_end(data)
    head = data[:end]
    if head.isascii():
        return data
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        text = decode_text(head)
        if text is not None:
            return text.encode("utf-8") + data[end:]
    return data


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _header_end(data: bytes) -> int:
    """Where a message's header block ends: at the blank line before its body."""
    blank = _BLANK_LINE.search(data)
    return blank.start() if blank else len(data)


def read_emlx(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str, read_attachment: ReadAttachment
) -> Iterator[Document | RejectedDocument]:
    """An Apple Mail message (`.emlx`): a line giving the message's length in bytes, the
    message, then Mail's own property list (flags, dates), which is left out."""
    first, newline, rest = data.partition(b"\n")
    length = first.strip()
    if not newline or not length.isdigit():
        yield out.reject(
            info,
            "undecodable",
            "not an Apple Mail message: its first line is not the message's length in bytes",
            sha256=sha,
        )
        return
    yield from read_eml(out, info, rest[: int(length)], sha, read_attachment)


def read_msg(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Iterator[Document | RejectedDocument]:
    """An Outlook message → its document, then one document per attachment (its text)."""
    import kreuzberg

    try:
        result = kreuzberg.extract_bytes_sync(data, MSG_MIME, extraction_config())
    except BaseException as exc:  # its own errors, OSError, or a Rust panic (a BaseException)
        if not is_extraction_failure(exc):
            raise
        yield out.reject(
            info,
            "undecodable",
            f"kreuzberg cannot read it as an Outlook message: {type(exc).__name__}: {exc}",
            sha256=sha,
        )
        return
    found = result.metadata or {}
    children = list(result.children or [])
    names = _unique_names([str(child.get("path") or "") for child in children])
    meta = {"format": "email", "attachments": str(len(children))}
    for key, field in (("subject", "subject"), ("from_email", "from"), ("created_at", "date")):
        value = found.get(key)
        if isinstance(value, str) and value:
            meta[field] = value
    if "subject" in meta:
        meta["title"] = meta["subject"]
    text = result.content
    if names:
        text += "\n\nAttachments: " + ", ".join(names)
    yield out.text_document(info, text, sha256=sha, size=len(data), metadata=meta)
    for name, child in zip(names, children, strict=True):
        doc_id = attachment_id(info.key, name)
        content = getattr(child.get("result"), "content", "") or ""
        raw = content.encode("utf-8", "surrogatepass")
        row = out.text_document(
            info,
            content,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            metadata={"format": "attachment", "mime_type": str(child.get("mime_type") or "")},
            document_id=doc_id,
        )
        yield with_parent(row, info.key)


def with_parent(row: Document | RejectedDocument, parent_id: str) -> Document | RejectedDocument:
    """An attachment's row, its document marked with the message it came in."""
    if isinstance(row, RejectedDocument):
        return row
    return row.model_copy(
        update={"parent_id": parent_id, "metadata": {**row.metadata, "parent_id": parent_id}}
    )


def child_info(info: ObjectInfo, name: str, size: int) -> ObjectInfo:
    """What a part of a file (an attachment, a mailbox's message) is read as: `<file>#<name>`."""
    return ObjectInfo(
        uri=info.uri,
        key=attachment_id(info.key, name),
        size=size,
        version=info.version,
        path=info.path,
    )


def _child_rows(
    info: ObjectInfo, name: str, content: bytes, read_attachment: ReadAttachment
) -> Iterator[Document | RejectedDocument]:
    child = child_info(info, name, len(content))
    for row in read_attachment(child, content):
        yield with_parent(row, info.key)


def _body(message: EmailMessage) -> str:
    """The plain-text body, else the HTML body as visible text, else nothing."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _part_text(part)
    if part.get_content_subtype() == "html":
        text, _ = html_to_text(text)
    return text


def _part_text(part: Message) -> str:
    """A text part decoded by its charset, or by `decode_text` when that charset fails.

    The charset is tried strictly: `get_content()` decodes with errors="replace", so a body
    declared UTF-8 (or declaring nothing, which means ASCII) but written in Windows-1252, as
    some mailers do, came out as "Caf\ufffd cr\ufffdme".
    """
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    try:
        return raw.decode(part.get_content_charset("us-ascii"))
    except (LookupError, UnicodeError):  # an unknown charset, or bytes it does not hold
        return decode_text(raw) or raw.decode("utf-8", "replace")


def _attachments(message: EmailMessage) -> list[Attachment]:
    """Every attachment of a message (inline parts that are not the body included)."""
    found: list[tuple[str, bytes]] = []
    for n, part in enumerate(message.iter_attachments(), start=1):
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload(0)
            content = inner.as_bytes() if isinstance(inner, Message) else b""
            default = f"message-{n}.eml"
        else:
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            ext = mimetypes.guess_extension(part.get_content_type()) or ""
            default = f"attachment-{n}{ext}"
        name = (part.get_filename() or default).replace("/", "_").replace("\\", "_")
        found.append((name, content))
    names = _unique_names([name for name, _ in found])
    return [(name, content) for name, (_, content) in zip(names, found, strict=True)]


def _unique_names(names: list[str]) -> list[str]:
    """Names made unique within one message: a repeated `a.pdf` becomes `a (2).pdf`."""
    seen: set[str] = set()
    out: list[str] = []
    for n, name in enumerate(names, start=1):
        name = name or f"attachment-{n}"
        candidate, count = name, 1
        while candidate in seen:
            count += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem} ({count}).{ext}" if dot and stem else f"{name} ({count})"
        seen.add(candidate)
        out.append(candidate)
    return out


_ENVELOPE = re.compile(rb"From \S+ [^\n]*\d:\d\d")
"""The line that opens each message of an mbox file: `From sender date` (`From - Mon Dec  7
07:00:00 2026`, as Thunderbird writes it), at the start of the file or after a blank line. A
body's own line starting "From " is escaped as `>From ` by mailbox writers; one that is not
(some writers do not) rarely has a time of day and a blank line before it."""
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
"""A body line beginning `From ` is written `>From ` in a mailbox (mboxrd): undone."""
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<?([^>\r\n]+)>?", re.MULTILINE | re.IGNORECASE)
_LINE_PIECE = 1 << 20
"""Lines are read at most this long at a time, so one without an end costs no more memory."""


_HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:")
_MESSAGE_HEADERS = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"message-id",
        b"received",
        b"return-path",
        b"delivered-to",
        b"mime-version",
        b"in-reply-to",
        b"references",
        b"reply-to",
        b"x-mailer",
    }
)


def looks_like_message(data: bytes) -> bool:
    """Whether bytes are one e-mail message (a Maildir's files, `1702...M1P2.host:2,S`, have
    no extension): a block of header lines up to a blank line, naming at least three of
    a message's usual headers, `From`, `Date` or `Received` among them."""
    opening = data[:65_536]
    head = opening[: _header_end(opening)]
    names: set[bytes] = set()
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t"):
            continue  # a folded header's next line
        found = _HEADER_LINE.match(line)
        if found is None:
            return False
        names.add(found.group()[:-1].lower())
    known = names & _MESSAGE_HEADERS
    return len(known) >= 3 and bool(known & {b"from", b"date", b"received"})


def is_mbox(data: bytes) -> bool:
    """Whether bytes (a file's opening) are a mailbox: a `From sender date` line, then a
    message header."""
    opening = _ENVELOPE.match(data)
    if opening is None:
        return False
    rest = data.find(b"\n", opening.end())
    return rest >= 0 and re.match(rb"[\w-]+:", data[rest + 1 :]) is not None


def _messages(stream: IO[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
    """Each message of a mailbox, without its `From ` line, and its size in bytes; read a line
    at a time, so a mailbox of any size costs one message of memory. A message over `limit`
    bytes comes back cut at its first `limit` bytes (its headers, to name it by)."""
    pieces: list[bytes] = []
    size = kept = 0
    started = False
    line_start = blank_before = True
    while piece := stream.readline(_LINE_PIECE):
        if line_start and blank_before and _ENVELOPE.match(piece):
            if started:
                yield b"".join(pieces), size
            pieces, size, kept, started = [], 0, 0, True
        elif started:
            size += len(piece)
            if kept < limit:
                pieces.append(piece)
                kept += len(piece)
        ended = piece.endswith(b"\n")
        blank_before = (line_start and piece in (b"\n", b"\r\n")) if ended else False
        line_start = ended
    if started:
        yield b"".join(pieces), size


def read_mbox(
    out: Outcomes, info: ObjectInfo, stream: IO[bytes], read_attachment: ReadAttachment
) -> Iterator[Document | RejectedDocument]:
    """A mailbox file (mbox: Thunderbird's folders, `mail`, exports) → one e-mail per message.

    Each message is `<file>#<Message-ID>.eml` (else `#message-<n>.eml`), read as an `.eml`
    with its attachments, `parent_id` naming the file, and its own content hash: a mailbox
    that grows leaves its earlier messages' ids and hashes as they were, so they are skipped.
    `source.max_document_bytes` limits each message, not the mailbox, which is streamed.
    """
    seen: set[str] = set()
    for n, (raw, size) in enumerate(_messages(stream, out.max_bytes + 1), 1):
        message = _QUOTED_FROM.sub(rb"\1", raw)
        found = _MESSAGE_ID.search(message[: _header_end(message)])
        name = f"message-{n}.eml"
        if found is not None:
            ident = found.group(1).decode("ascii", "replace").strip().replace("/", "_")
            name = f"{ident}.eml" if ident and f"{ident}.eml" not in seen else name
        seen.add(name)
        child = child_info(info, name, size)
        if size > out.max_bytes:
            yield out.reject(
                child,
                "too_large",
                f"message {n} of the mailbox is {size} bytes; limit {out.max_bytes} "
                "(source.max_document_bytes)",
            )
            continue
        sha = hashlib.sha256(message).hexdigest()
        for row in read_eml(out, child, message, sha, read_attachment):
            yield with_parent(row, info.key) if row.document_id == child.key else row
