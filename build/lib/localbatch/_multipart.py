"""Streaming multipart/form-data uploads: the file part goes straight to disk, bounded in size.

Starlette's own form parser would spool the file to a temporary file first and has no limit on
file parts; this one writes each chunk where it will live and stops keeping bytes once the
limit is passed (it still reads the body to the end, so the client gets a clean 413).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from localbatch._errors import APIError, bad_request

MAX_FIELD_BYTES = 64 * 1024


@dataclass(slots=True)
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None
    size: int = 0
    too_large: bool = False


class _Receiver:
    def __init__(self, dest: Path, max_bytes: int) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.upload = Upload()
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self._fh: IO[bytes] | None = None

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._name = None
        self._is_file = False
        self._value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise bad_request("A multipart part has no name in its Content-Disposition header.")
        self._name = name.decode("utf-8", "replace")
        if b"filename" in options:
            if self.upload.file_field is not None:
                raise bad_request("Only one file may be uploaded per request.", param="file")
            self._is_file = True
            self.upload.file_field = self._name
            self.upload.filename = options[b"filename"].decode("utf-8", "replace")
            self._fh = self.dest.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._is_file:
            self.upload.size += len(chunk)
            if self.upload.size > self.max_bytes:
                if not self.upload.too_large:
                    self.upload.too_large = True
                    self.close()
                return
            if self._fh is not None:
                self._fh.write(chunk)
        else:
            if len(self._value) + len(chunk) > MAX_FIELD_BYTES:
                raise bad_request(f"The form field '{self._name}' is too long.", param=self._name)
            self._value.extend(chunk)

    def on_part_end(self) -> None:
        if self._is_file:
            self.close()
        elif self._name is not None:
            self.upload.fields[self._name] = self._value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def receive_upload(
    content_type: str | None, body: AsyncIterator[bytes], dest: Path, max_bytes: int
) -> Upload:
    """Parse a multipart body; the file part (if any) is written to `dest`.

    Raises APIError(400) for a body that is not well-formed multipart/form-data. The caller
    removes `dest` on any failure or when `too_large` is set.
    """
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise bad_request("Content-Type must be multipart/form-data for file uploads.")
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad_request("The multipart/form-data Content-Type has no boundary.")
    receiver = _Receiver(dest, max_bytes)
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": receiver.on_part_begin,
                "on_part_data": receiver.on_part_data,
                "on_part_end": receiver.on_part_end,
                "on_header_field": receiver.on_header_field,
                "on_header_value": receiver.on_header_value,
                "on_header_end": receiver.on_header_end,
                "on_headers_finished": receiver.on_headers_finished,
                "on_end": receiver.on_end,
            },
        )
        async for chunk in body:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise bad_request(f"The multipart/form-data body is malformed: {exc}") from exc
    except APIError:
        raise
    finally:
        receiver.close()
    if not receiver.ended:
        raise bad_request("The multipart/form-data body is incomplete (no closing boundary).")
    return receiver.upload
