"""Records: JSON (one or a list), JSONL line by line, CSV/TSV row by row, Parquet in batches.

Record files are text in any encoding `decode_text` reads: UTF-8 with or without a BOM, UTF-16
with a BOM, or a legacy 8-bit encoding (chosen from the lines holding non-ASCII bytes). CSV and
TSV are parsed with the standard `csv` module, strictly, one row at a time, so that a row that
cannot be parsed (a quote never closed, a character after a closing quote, bytes not in the
file's encoding) or that has more fields than the header is a reject of its own, and reading
goes on at the line after the one that row started on. polars reads Parquet; for CSV it would
stop a whole batch at a bad row, read only UTF-8, and cut a ragged row short without a word.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

import orjson

from schemas.documents import Document, RejectCode, RejectedDocument
from tasks.scratch import scratch_file
from tasks.sources._reading import GZIP_ERRORS, READ_ERRORS, is_read_failure, local_copy
from tasks.sources._sniffing import UTF16_BOMS, decode_text, text_encoding
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".parquet"})
SAMPLE_BYTES = 1 << 18
"""How much of a record file's lines holding non-ASCII bytes its encoding is chosen from."""
ROW_SLACK_BYTES = 1 << 20
"""How far past `max_document_bytes` one CSV row may run before it is cut off: a quote never
closed would otherwise read the rest of the file into that row."""
REREAD_FACTOR = 2
"""Bad CSV rows may make at most this many times the file's size be read again (each is read
again from its second line); past that, the rest of the file is one reject."""
NOT_TEXT = "not text in UTF-8, UTF-16 or a recognisable encoding"


def _batch_rows() -> int:
    """Rows per Parquet batch: `tasks.sources.TABLE_BATCH_ROWS`, read when a table is read."""
    from tasks import sources

    return sources.TABLE_BATCH_ROWS


@dataclass(frozen=True)
class TextFile:
    """A record file as local bytes whose lines split at b"\\n" and decode one by one."""

    path: str
    codec: str
    """The codec each line decodes with."""
    start: int
    """Where the text starts (after a byte order mark)."""
    encoding: str
    """The file's encoding, as messages name it."""
    problem: str | None = None
    """Why the end of the file could not be read (half a UTF-16 character)."""


@contextmanager
def text_file(info: ObjectInfo, gz: bool) -> Iterator[TextFile | None]:
    """The file (local, gunzipped) ready to read line by line; None when no encoding reads it.

    UTF-16 (with a BOM) is copied to a temporary UTF-8 file first; other files are read in
    place, in the encoding `record_encoding` finds. A file whose lines end in bare carriage
    returns is read from a copy whose lines end in line feeds.
    """
    with local_copy(info, gz) as path:
        with open(path, "rb") as fh:
            head = fh.read(3)
            fh.seek(0)
            if head.startswith(UTF16_BOMS):
                with scratch_file("utf8") as tmp:
                    problem = transcode_utf16(fh, tmp)
                    tmp.flush()
                    if only_carriage_returns(tmp.name):
                        carriage_returns_to_line_feeds(tmp.name, tmp.name)
                    yield TextFile(tmp.name, "utf-8", 0, "UTF-16", problem)
                return
        if not only_carriage_returns(path):
            yield _text_file_at(path)
            return
        with scratch_file("lf") as tmp:
            carriage_returns_to_line_feeds(path, tmp.name)
            yield _text_file_at(tmp.name)


def _text_file_at(path: str) -> TextFile | None:
    """A local file without a UTF-16 BOM, its lines ending in line feeds, as a TextFile."""
    with open(path, "rb") as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return TextFile(path, "utf-8", 3, "UTF-8")
        fh.seek(0)
        codec = record_encoding(fh)
    return None if codec is None else TextFile(path, codec, 0, codec)


def only_carriage_returns(path: str, sample: int = 1 << 16) -> bool:
    """Whether a file's lines end in a bare carriage return (classic Mac OS, and Excel's
    "CSV (Macintosh)" to this day): CRs and no line feed in its opening."""
    with open(path, "rb") as fh:
        head = fh.read(sample)
    return b"\r" in head and b"\n" not in head


def carriage_returns_to_line_feeds(src: str, dst: str) -> None:
    """Copy a file (or rewrite it in place, `dst` = `src`) with each CR byte a LF: the same
    length, so offsets and line numbers still point at the same rows. Only for UTF-8 and the
    one-byte encodings, where byte 13 is always a carriage return."""
    with open(src, "r+b" if dst == src else "rb") as fh, open(dst, "r+b") as out:
        while chunk := fh.read(1 << 20):
            out.write(chunk.replace(b"\r", b"\n"))


def record_encoding(fh: IO[bytes], limit: int = SAMPLE_BYTES) -> str | None:
    """The encoding of a record file without a BOM, judged on its lines holding non-ASCII bytes.

    UTF-8 when most such lines (up to about `limit` bytes of them) are UTF-8: a few lines in
    another encoding are then rows or lines rejected on their own, not a reason to read every
    row as cp1252. Otherwise the encoding `text_encoding` picks for the lines that are not UTF-8.
    """
    other = bytearray()
    utf8 = not_utf8 = seen = 0
    for line in fh:
        if line.isascii() or b"\x00" in line:
            continue
        try:
            line.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            not_utf8 += 1
            other += line
        seen += len(line)
        if seen >= limit:
            break
    if utf8 > not_utf8 or not other:
        return "utf-8"
    return text_encoding(bytes(other))


def transcode_utf16(src: IO[bytes], dst: IO[bytes]) -> str | None:
    """Copy UTF-16 text (BOM first) as UTF-8; say so if it ends in half a character.

    A lone surrogate is carried over (`surrogatepass`) as bytes UTF-8 refuses, so the row or
    line holding it is rejected when it is read, and only that one.
    """
    decoder = codecs.getincrementaldecoder("utf-16")("surrogatepass")
    while chunk := src.read(1 << 20):
        dst.write(decoder.decode(chunk).encode("utf-8", "surrogatepass"))
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "the file ends in the middle of a UTF-16 character"
    return None


def iter_lines(fh: IO[bytes], block: int = 1 << 20) -> Iterator[bytes]:
    """Split a binary stream into lines without reading it whole."""
    rest = b""
    while True:
        chunk = fh.read(block)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def read_record(
    out: Outcomes, info: ObjectInfo, obj: object, index: int | None
) -> Document | RejectedDocument:
    """One JSON record (a dict) → a document; `index` None for a single-record file."""
    src = out.source
    default_id = info.key if index is None else f"{info.key}#{index}"
    if not isinstance(obj, dict):
        return out.reject(
            info,
            "bad_record",
            f"a record must be a JSON object, not {type(obj).__name__}",
            document_id=default_id,
        )
    doc_id = default_id
    if src.id_field is not None:
        value = obj.get(src.id_field)
        if value is None or isinstance(value, dict | list) or value == "":
            return out.reject(
                info,
                "bad_record",
                f"record has no usable id field {src.id_field!r}",
                document_id=default_id,
            )
        doc_id = str(value)
    meta = {name: str(obj[name]) for name in src.metadata_fields if obj.get(name) is not None}
    return read_record_text(out, info, obj.get(src.text_field), doc_id, index, meta, fields=obj)


def read_record_text(
    out: Outcomes,
    info: ObjectInfo,
    text: object,
    doc_id: str,
    index: int | None,
    meta: dict[str, str],
    *,
    fields: Iterable[str] = (),
) -> Document | RejectedDocument:
    src = out.source
    if text is None:
        names = list(islice(fields, 21))
        found = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return out.reject(
            info,
            "missing_text_field",
            f"record has no text field {src.text_field!r}"
            + (f" (its fields: {found})" if found else "")
            + "; source.text_field names the field that holds the text",
            document_id=doc_id,
        )
    if not isinstance(text, str):
        return out.reject(
            info,
            "bad_record",
            f"text field {src.text_field!r} holds {type(text).__name__}, not a string",
            document_id=doc_id,
        )
    raw = text.encode("utf-8", "surrogatepass")
    sha = hashlib.sha256(raw).hexdigest()
    if len(raw) > out.max_bytes:
        return out.reject(
            info,
            "too_large",
            f"record text is {len(raw)} bytes; limit {out.max_bytes}",
            document_id=doc_id,
            sha256=sha,
        )
    return out.text_document(
        info,
        text,
        sha256=sha,
        size=len(raw),
        metadata=meta,
        document_id=doc_id,
        record_index=index,
    )


def read_json(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Iterator[Document | RejectedDocument]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # Not UTF-8 JSON: it may be JSON in another encoding (a BOM, UTF-16, cp1252...).
        text = decode_text(data)
        try:
            if text is None:
                raise exc
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as again:
            yield out.reject(info, "bad_record", f"not valid JSON: {again}", sha256=sha)
            return
    if isinstance(obj, list):
        if not obj:
            yield out.reject(info, "empty", "an empty JSON list", sha256=sha)
        for i, item in enumerate(obj):
            yield read_record(out, info, item, i)
    else:
        yield read_record(out, info, obj, None)


def read_jsonl(out: Outcomes, info: ObjectInfo, gz: bool) -> Iterator[Document | RejectedDocument]:
    index = -1
    records = 0
    try:
        with text_file(info, gz) as text:
            if text is None:
                yield out.reject(info, "undecodable", NOT_TEXT)
                return
            with open(text.path, "rb") as fh:
                fh.seek(text.start)
                for index, line in enumerate(iter_lines(fh)):
                    if not line.strip():
                        continue
                    records += 1
                    doc_id = f"{info.key}#{index}"
                    if len(line) > out.max_bytes + 1024:
                        yield out.reject(
                            info,
                            "too_large",
                            f"line of {len(line)} bytes; limit {out.max_bytes}",
                            document_id=doc_id,
                        )
                        continue
                    try:
                        data = line if text.codec == "utf-8" else line.decode(text.codec)
                        obj = orjson.loads(data)
                    except UnicodeDecodeError:
                        yield out.reject(
                            info,
                            "undecodable",
                            f"line {index + 1} holds bytes that are not {text.encoding}",
                            document_id=doc_id,
                        )
                        continue
                    except orjson.JSONDecodeError as exc:
                        yield out.reject(
                            info,
                            "bad_record",
                            f"line {index + 1} is not valid JSON: {exc}",
                            document_id=doc_id,
                        )
                        continue
                    yield read_record(out, info, obj, index)
            if text.problem is not None:
                yield out.reject(
                    info, "undecodable", text.problem, document_id=f"{info.key}#{index + 1}"
                )
    except GZIP_ERRORS + READ_ERRORS as exc:
        code: RejectCode = "unreadable" if is_read_failure(exc) else "undecodable"
        yield out.reject(
            info,
            code,
            f"reading stopped after line {index + 1}: {exc}",
            document_id=f"{info.key}#{index + 1}",
        )
        return
    if records == 0:
        yield out.reject(info, "empty", "no records in the file")


def read_table(
    out: Outcomes, info: ObjectInfo, suffix: str, gz: bool
) -> Iterator[Document | RejectedDocument]:
    """The rows of a CSV, TSV or Parquet file: one document or reject each."""
    if info.size == 0:
        yield out.reject(info, "empty", "the file is empty")
        return
    rows = Progress()
    try:
        if suffix == ".parquet":
            yield from read_parquet(out, info, gz, rows)
        else:
            with text_file(info, gz) as text:
                if text is None:
                    yield out.reject(info, "undecodable", NOT_TEXT)
                    return
                yield from read_csv(out, info, text, "\t" if suffix == ".tsv" else ",", rows)
    except GZIP_ERRORS + READ_ERRORS as exc:
        yield out.reject(
            info,
            "unreadable" if is_read_failure(exc) else "undecodable",
            f"reading stopped after row {rows.n}: {type(exc).__name__}: {exc}",
            document_id=f"{info.key}#{rows.n}",
        )
        return
    if rows.n == 0 and not rows.header_rejected:
        yield out.reject(info, "empty", "no rows in the table")


class Progress:
    """How far a table was read: rows seen, and whether the file was rejected as a whole."""

    def __init__(self) -> None:
        self.n = 0
        self.header_rejected = False


def missing_columns(out: Outcomes, info: ObjectInfo, columns: list[str]) -> RejectedDocument | None:
    """The reject of a table without the columns the source names, else None."""
    src = out.source
    if src.text_field not in columns:
        return out.reject(
            info,
            "missing_text_field",
            f"no column {src.text_field!r} (columns: {', '.join(columns[:20])})",
        )
    if src.id_field is not None and src.id_field not in columns:
        return out.reject(info, "bad_record", f"no id column {src.id_field!r}")
    return None


def read_parquet(
    out: Outcomes, info: ObjectInfo, gz: bool, rows: Progress
) -> Iterator[Document | RejectedDocument]:
    import polars as pl

    src = out.source
    try:
        with local_copy(info, gz) as path:
            frame = pl.scan_parquet(path)
            columns = frame.collect_schema().names()
            missing = missing_columns(out, info, columns)
            if missing is not None:
                rows.header_rejected = True
                yield missing
                return
            meta_cols = [c for c in src.metadata_fields if c in columns]
            wanted = [src.text_field, *([src.id_field] if src.id_field else []), *meta_cols]
            selected = frame.select(pl.col(c).cast(pl.String) for c in dict.fromkeys(wanted))
            for batch in selected.collect_batches(chunk_size=_batch_rows()):
                cols: dict[str, list[Any]] = batch.to_dict(as_series=False)
                texts = cols[src.text_field]
                ids = cols[src.id_field] if src.id_field else None
                for i, text in enumerate(texts):
                    meta = {c: cols[c][i] for c in meta_cols if cols[c][i] is not None}
                    yield read_row(
                        out, info, rows.n + i, text, None if ids is None else ids[i], meta
                    )
                rows.n += batch.height
    except pl.exceptions.PolarsError as exc:
        yield out.reject(
            info,
            "undecodable",
            f"reading stopped after row {rows.n}: {type(exc).__name__}: {exc}",
            document_id=f"{info.key}#{rows.n}",
        )
        rows.header_rejected = True


class RowTooLong(Exception):
    """A CSV row ran past its byte limit: a quote never closed, or a row too large to keep."""


class RowLines:
    """The decoded lines of a CSV file for `csv.reader`, each row bounded in bytes.

    `csv.reader` takes a line only when it needs one, so the offset and line number kept here
    say exactly where the row being read began, and reading can start again after its first line.
    """

    def __init__(self, fh: IO[bytes], codec: str, limit: int) -> None:
        self.fh = fh
        self.codec = codec
        self.limit = limit
        self.offset = fh.tell()
        self.line = 0
        self.row_offset = self.offset
        self.row_line = 1
        self.undecodable = False

    def start_row(self) -> None:
        self.row_offset = self.offset
        self.row_line = self.line + 1
        self.undecodable = False

    def __iter__(self) -> RowLines:
        return self

    def __next__(self) -> str:
        raw = self.fh.readline(self.limit - (self.offset - self.row_offset) + 1)
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.line += 1
        if self.offset - self.row_offset > self.limit:
            raise RowTooLong(f"the row runs over {self.limit} bytes")
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            self.undecodable = True
            return raw.decode(self.codec, "replace")

    def restart_after_row_line(self) -> int:
        """Read on from the line after the one the current row began on; bytes read again."""
        read_again = self.offset - self.row_offset
        self.fh.seek(self.row_offset)
        self.offset = self.row_offset
        while chunk := self.fh.readline(1 << 20):
            self.offset += len(chunk)
            if chunk.endswith(b"\n"):
                break
        self.line = self.row_line
        return read_again - (self.offset - self.row_offset)


def read_csv(
    out: Outcomes, info: ObjectInfo, text: TextFile, sep: str, rows: Progress
) -> Iterator[Document | RejectedDocument]:
    """The rows of a CSV or TSV file, each a document or a reject of its own."""
    src = out.source
    limit = out.max_bytes + ROW_SLACK_BYTES
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)  # process-wide, and only ever raised: rows are bounded here
    with open(text.path, "rb") as fh:
        budget = REREAD_FACTOR * fh.seek(0, 2) + limit
        fh.seek(text.start)
        lines = RowLines(fh, text.codec, limit)
        reader = csv.reader(lines, delimiter=sep, strict=True)
        try:
            header = next(reader, None)
        except (csv.Error, RowTooLong) as exc:
            rows.header_rejected = True
            yield out.reject(info, "bad_record", f"the header line cannot be read: {exc}")
            return
        if header is None:
            rows.header_rejected = True
            yield out.reject(info, "empty", "no header line: the file holds no text")
            return
        if src.text_field not in header and (other := _other_separator(header)):
            sep = other  # a CSV separated by semicolons (Excel's export where ',' is decimal)
            fh.seek(text.start)
            lines = RowLines(fh, text.codec, limit)
            reader = csv.reader(lines, delimiter=sep, strict=True)
            try:
                header = next(reader)
            except (csv.Error, RowTooLong) as exc:
                rows.header_rejected = True
                yield out.reject(info, "bad_record", f"the header line cannot be read: {exc}")
                return
        missing = missing_columns(out, info, header)
        if missing is not None:
            rows.header_rejected = True
            yield missing
            return
        where = {name: i for i, name in reversed(list(enumerate(header)))}
        text_at = where[src.text_field]
        id_at = None if src.id_field is None else where[src.id_field]
        meta_at = [(c, where[c]) for c in src.metadata_fields if c in where]
        while True:
            index = rows.n
            lines.start_row()
            try:
                row = next(reader, None)
            except (csv.Error, RowTooLong) as exc:
                yield bad_row(out, info, lines, index, exc)
                rows.n += 1
                budget -= lines.restart_after_row_line()
                if budget < 0:
                    yield out.reject(
                        info,
                        "bad_record",
                        f"reading stopped at row {rows.n} (line {lines.row_line + 1}): too many "
                        "rows whose quotes do not close made the file be read again",
                        document_id=f"{info.key}#{rows.n}",
                    )
                    return
                reader = csv.reader(lines, delimiter=sep, strict=True)
                continue
            if row is None:
                break
            rows.n += 1
            if not row:  # a blank line: no record (as csv readers skip them), no reject
                continue
            yield csv_row(out, info, text, lines, header, row, index, text_at, id_at, meta_at)
    if text.problem is not None:
        yield out.reject(info, "undecodable", text.problem, document_id=f"{info.key}#{rows.n}")


SEPARATORS = (",", ";", "\t", "|")
"""The field separators a CSV may use: commas, semicolons (Excel's CSV where the decimal mark is
a comma: most of Europe), tabs and pipes."""


def _other_separator(header: list[str]) -> str | None:
    """The separator most found in a header line that the one its file's name implies left
    one column: `;` in `id;text;amount` read from a `.csv`. None if it holds none."""
    if len(header) != 1:
        return None
    counts = {sep: header[0].count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else None


def bad_row(
    out: Outcomes, info: ObjectInfo, lines: RowLines, index: int, exc: Exception
) -> RejectedDocument:
    """The reject of a CSV row the parser refused, saying where it began and why."""
    where = f"row {index} (line {lines.row_line})"
    then = f"reading went on at line {lines.row_line + 1}"
    if isinstance(exc, RowTooLong):
        return out.reject(
            info,
            "too_large",
            f"{where} runs over {lines.limit} bytes (source.max_document_bytes + "
            f"{ROW_SLACK_BYTES}) without ending: a quote never closed, or a row too large to "
            f"read; {then}",
            document_id=f"{info.key}#{index}",
        )
    reason = str(exc)
    if reason == "unexpected end of data":
        reason = "a quoted field is never closed (the file ends inside it)"
    elif lines.line > lines.row_line:
        reason += f" on line {lines.line} (a quote left open on line {lines.row_line}?)"
    return out.reject(
        info,
        "bad_record",
        f"{where} cannot be read: {reason}; {then}",
        document_id=f"{info.key}#{index}",
    )


def csv_row(
    out: Outcomes,
    info: ObjectInfo,
    text: TextFile,
    lines: RowLines,
    header: list[str],
    row: list[str],
    index: int,
    text_at: int,
    id_at: int | None,
    meta_at: list[tuple[str, int]],
) -> Document | RejectedDocument:
    """One parsed CSV row → a document, or a reject naming the row and its line."""
    doc_id = f"{info.key}#{index}"
    if lines.undecodable:
        return out.reject(
            info,
            "undecodable",
            f"row {index} (line {lines.row_line}) holds bytes that are not {text.encoding}",
            document_id=doc_id,
        )
    if len(row) > len(header) and any(row[len(header) :]):
        return out.reject(
            info,
            "bad_record",
            f"row {index} (line {lines.row_line}) has {len(row)} fields where the header has "
            f"{len(header)}",
            document_id=doc_id,
        )

    def cell(i: int) -> str | None:
        return row[i] if i < len(row) and row[i] else None

    meta = {name: value for name, i in meta_at if (value := cell(i)) is not None}
    return read_row(out, info, index, cell(text_at), None if id_at is None else cell(id_at), meta)


def read_row(
    out: Outcomes,
    info: ObjectInfo,
    index: int,
    text: str | None,
    id_value: str | None,
    meta: dict[str, str],
) -> Document | RejectedDocument:
    """One table row's cells (text, id, metadata; None where empty) → a document or a reject."""
    src = out.source
    doc_id = f"{info.key}#{index}"
    if src.id_field is not None:
        if id_value is None or id_value == "":
            return out.reject(
                info,
                "bad_record",
                f"row has no id in column {src.id_field!r}",
                document_id=doc_id,
            )
        doc_id = id_value
    if text is None:
        return out.reject(
            info, "empty", f"no value in column {src.text_field!r}", document_id=doc_id
        )
    return read_record_text(out, info, text, doc_id, index, meta)
